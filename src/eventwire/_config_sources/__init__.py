"""Configuration from outside the code: ``EVENTWIRE_*`` environment variables, and the
librdkafka- or Java-style properties files (``client.properties``) that Confluent Cloud hands
out and ``kafka-console-producer --producer.config`` reads.

Both are read into librdkafka-style keys with where each came from (a variable, a file's
line: ``settings``), by ``environment`` and ``properties``; then turned into
``PublisherConfig`` keyword arguments by one builder (``arguments``, with ``jaas`` for the
Java login line), whose errors name that origin. Nothing here imports ``_config``: it builds
the arguments, ``_config`` the config.
"""

from eventwire._config_sources.arguments import config_kwargs
from eventwire._config_sources.environment import env_missing, env_settings
from eventwire._config_sources.properties import properties_settings

__all__ = ["config_kwargs", "env_missing", "env_settings", "properties_settings"]
