"""``EVENTWIRE_*`` environment variables: ``EVENTWIRE_`` + the librdkafka key, upper-cased,
dots as underscores (documented in docs/security.md)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from eventwire._config_sources.settings import Setting, Settings
from eventwire._errors import ConfigError

ENV_PREFIX: Final = "EVENTWIRE_"

#: ``EVENTWIRE_`` + the librdkafka key, upper-cased, dots as underscores; and three fields.
ENV_VARIABLES: Final[Mapping[str, str]] = MappingProxyType(
    {
        f"{ENV_PREFIX}{key.upper().replace('.', '_')}": key
        for key in (
            "bootstrap.servers",
            "client.id",
            "security.protocol",
            "sasl.mechanism",
            "sasl.username",
            "sasl.password",
            "ssl.ca.location",
            "ssl.certificate.location",
            "ssl.key.location",
            "ssl.key.password",
            "ssl.endpoint.identification.algorithm",
            "sasl.oauthbearer.method",
            "sasl.oauthbearer.token.endpoint.url",
            "sasl.oauthbearer.client.id",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.scope",
            "sasl.oauthbearer.extensions",
        )
    }
    | {f"{ENV_PREFIX}PRESET": "preset", f"{ENV_PREFIX}TOPIC_PREFIX": "topic_prefix"}
)
#: Variables under these prefixes must be known ones: a typo there would silently drop a
#: credential.
_CHECKED_ENV_PREFIXES: Final = (f"{ENV_PREFIX}SASL_", f"{ENV_PREFIX}SSL_", f"{ENV_PREFIX}SECURITY_")


def env_settings(environ: Mapping[str, str]) -> Settings:
    """The ``EVENTWIRE_*`` variables of ``environ`` (empty ones are unset).

    Raises:
        ConfigError: an ``EVENTWIRE_SASL_*``, ``EVENTWIRE_SSL_*`` or ``EVENTWIRE_SECURITY_*``
            variable is not one eventwire knows (a typo would drop a credential).
    """
    settings: Settings = {}
    for name, value in sorted(environ.items()):
        key = ENV_VARIABLES.get(name)
        if key is None:
            if name.startswith(_CHECKED_ENV_PREFIXES):
                known = sorted(n for n in ENV_VARIABLES if n.startswith(_CHECKED_ENV_PREFIXES))
                raise ConfigError(
                    f"{name} is not a variable eventwire reads; the security variables are "
                    f"{', '.join(known)}"
                )
            continue
        if value.strip():
            settings[key] = Setting(value.strip(), name)
    return settings


def env_missing(key: str) -> str:
    """How ``from_env`` names a key it did not get: the variable."""
    for name, known in ENV_VARIABLES.items():
        if known == key:
            return name
    return f"{ENV_PREFIX}{key.upper().replace('.', '_')}"
