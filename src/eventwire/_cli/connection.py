"""How a connecting command reaches the cluster: ``--config FILE`` (a librdkafka- or Java-style
properties file), the ``EVENTWIRE_*`` environment, and ``--bootstrap-servers``; and the check
that fails with one line, before any work, when the cluster cannot be reached or refuses this
client.

Precedence: ``--bootstrap-servers`` over the environment over the file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from eventwire._cli.errors import CliError
from eventwire._cli.parser import DEFAULT_BOOTSTRAP
from eventwire._config_sources import (
    config_kwargs,
    env_missing,
    env_settings,
    properties_settings,
)
from eventwire._core.denials import Denials, connection_of
from eventwire._core.tokens import TokenSource
from eventwire._errors import ConfigError
from eventwire._security import OAuthBearer

#: The settings a connection check needs of a publisher's (no producer settings: an
#: idempotent admin client would ask for a producer id).
_CONNECTION_PREFIXES: Final = (
    "bootstrap.",
    "client.",
    "security.",
    "sasl.",
    "ssl.",
    "https.",
    "enable.ssl.",
    "enable.sasl.",
    "socket.",
    "broker.",
)


def connection_kwargs(
    config_file: str | None, bootstrap_servers: str | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """``PublisherConfig`` keyword arguments from the file, the environment and the flag.

    Raises:
        CliError: the file or a variable is refused (the message names which, never a secret).
    """
    try:
        settings = properties_settings(config_file) if config_file is not None else {}
        settings.update(env_settings(environ))
        kwargs = config_kwargs(settings, missing=lambda key: _missing(key, config_file))
    except ConfigError as exc:
        raise CliError(f"invalid configuration: {exc}") from None
    if bootstrap_servers is not None:
        kwargs["bootstrap_servers"] = bootstrap_servers
    kwargs.setdefault("bootstrap_servers", DEFAULT_BOOTSTRAP)
    return kwargs


def _missing(key: str, config_file: str | None) -> str:
    variable = env_missing(key)
    return variable if config_file is None else f"{key} (in {config_file}, or {variable})"


def check_connection(config: Any, timeout: float) -> None:
    """Fail with one line when no broker answers a metadata request within ``timeout``:
    why the cluster refuses this client if it does (credentials, TLS, ACLs), as soon as it
    says so, else that it cannot be reached.

    Raises:
        CliError: the cluster cannot be reached or refuses this client.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("eventwire.cli.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    settings: dict[str, Any] = {
        key: value
        for key, value in config._to_librdkafka().items()
        if key.startswith(_CONNECTION_PREFIXES)
    }
    denials = Denials(connection_of(settings), settings, config._scrub, log=False)

    def on_error(err: Any) -> None:
        denials.observe(err.name(), err.str())
        if err.name() == "_ALL_BROKERS_DOWN":
            denials.all_brokers_down(reached=False)

    admin_settings: dict[str, Any] = {**settings, "logger": quiet, "error_cb": on_error}
    tokens = None
    if isinstance(config.security, OAuthBearer):
        tokens = TokenSource(config.security.token_provider, config._scrub)
        admin_settings["oauth_cb"] = tokens
    servers = config.bootstrap_servers
    try:
        try:
            admin = AdminClient(admin_settings)
        except KafkaException as exc:
            raise CliError(
                f"invalid configuration: librdkafka refused it: {config._scrub(exc.args[0].str())}"
            ) from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                # No topic named: listing one would create it.
                admin.list_topics(timeout=max(0.01, min(1.0, deadline - time.monotonic())))
            except KafkaException as exc:
                admin.poll(0.05)  # serves the error callbacks list_topics left queued
                # A failed metadata request confirms what the client reported.
                denials.confirm(False, min(timeout, 2.0))
                if denials.current is not None:
                    raise CliError(
                        f"cannot connect to Kafka at {servers}: {denials.current.summary}"
                    ) from None
                if time.monotonic() < deadline:
                    continue
                detail = exc.args[0].str() if exc.args else str(exc)
                raise CliError(
                    f"cannot reach Kafka at {servers} within {timeout:g} s"
                    f" ({config._scrub(detail)})"
                ) from None
            return
    finally:
        if tokens is not None:
            tokens.close()
