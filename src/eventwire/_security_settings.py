"""The security variants as librdkafka settings, and the checks of how a ``PublisherConfig``
gives them (the variant, or the flat short form of earlier releases).

Beside the variants (``_security``, a leaf) so that they stay values: ``_config`` renders
them with ``librdkafka_settings`` and scrubs what ``secret_values`` lists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from eventwire._errors import ConfigError
from eventwire._librdkafka import LibrdkafkaValue, is_secret_key
from eventwire._security import (
    SECURITY_VARIANTS,
    TLS,
    OAuthBearer,
    OidcClientCredentials,
    SaslPlain,
    SaslScram,
    Secret,
    Security,
)


def tls_of(security: Security) -> TLS | None:
    """The TLS settings a variant connects with (``None``: plaintext)."""
    return security if isinstance(security, TLS) else security.tls


def protocol_of(security: Security) -> str:
    """librdkafka's ``security.protocol`` for a variant."""
    if isinstance(security, TLS):
        return "SSL"
    return "SASL_SSL" if security.tls is not None else "SASL_PLAINTEXT"


def secret_values(security: Security | None) -> tuple[str, ...]:
    """Every secret a variant holds, revealed (what the scrubber removes from messages)."""
    if security is None:
        return ()
    found: list[Secret | None] = []
    tls = tls_of(security)
    if tls is not None:
        found.append(tls.key_password)
    if isinstance(security, SaslPlain | SaslScram):
        found.append(security.password)
    elif isinstance(security, OidcClientCredentials):
        found.append(security.client_secret)
    return tuple(secret.reveal() for secret in found if secret is not None)


def revealed(password: str | Secret) -> str:
    """A flat ``sasl_password`` (a ``str`` or a ``Secret``) in clear, for librdkafka."""
    return password.reveal() if isinstance(password, Secret) else password


def config_secrets(
    security: Security | None,
    sasl_password: str | Secret | None,
    overrides: Mapping[str, LibrdkafkaValue],
) -> list[str]:
    """Every secret value a config holds: those its types declare (``sasl_password``, the
    ``Secret`` fields of ``security``), and overrides whose key names a secret."""
    found = list(secret_values(security))
    if sasl_password is not None:
        found.append(revealed(sasl_password))
    found.extend(
        value
        for key, value in overrides.items()
        if is_secret_key(key) and isinstance(value, str) and value
    )
    return found


def librdkafka_settings(security: Security) -> dict[str, LibrdkafkaValue]:
    """The librdkafka settings of a variant, secrets in clear (``oauth_cb`` excepted: the
    producer core adds it for an `OAuthBearer`)."""
    settings: dict[str, LibrdkafkaValue] = {"security.protocol": protocol_of(security)}
    tls = tls_of(security)
    if tls is not None:
        if tls.ca_location is not None:
            settings["ssl.ca.location"] = os.fspath(tls.ca_location)
        if tls.certificate_location is not None:
            settings["ssl.certificate.location"] = os.fspath(tls.certificate_location)
        if tls.key_location is not None:
            settings["ssl.key.location"] = os.fspath(tls.key_location)
        if tls.key_password is not None:
            settings["ssl.key.password"] = tls.key_password.reveal()
        settings["ssl.endpoint.identification.algorithm"] = (
            "https" if tls.verify_hostname else "none"
        )
    if isinstance(security, SaslPlain | SaslScram):
        settings["sasl.mechanism"] = security.mechanism
        settings["sasl.username"] = security.username
        settings["sasl.password"] = security.password.reveal()
    elif isinstance(security, OAuthBearer):
        settings["sasl.mechanism"] = "OAUTHBEARER"
    elif isinstance(security, OidcClientCredentials):
        settings["sasl.mechanism"] = "OAUTHBEARER"
        settings["sasl.oauthbearer.method"] = "oidc"
        settings["sasl.oauthbearer.token.endpoint.url"] = security.token_endpoint_url
        settings["sasl.oauthbearer.client.id"] = security.client_id
        settings["sasl.oauthbearer.client.secret"] = security.client_secret.reveal()
        if security.scope is not None:
            settings["sasl.oauthbearer.scope"] = security.scope
        if security.extensions:
            settings["sasl.oauthbearer.extensions"] = ",".join(
                f"{key}={value}" for key, value in security.extensions.items()
            )
    return settings


SECURITY_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_PROTOCOLS: Final = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_SSL_PROTOCOLS: Final = frozenset({"SSL", "SASL_SSL"})
_SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
# GSSAPI authenticates with Kerberos, OAUTHBEARER with tokens: neither takes a username/password.
_SASL_PASSWORD_MECHANISMS: Final = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})


def check_short_form(fields: Mapping[str, object]) -> None:
    """Check the short form of earlier releases: ``security_protocol``, ``sasl_mechanism``,
    ``sasl_username``, ``sasl_password`` and ``ssl_ca_location`` (``fields``: their values).

    Raises:
        ConfigError: a field is invalid or contradicts another; never shows the password.
    """
    protocol = fields["security_protocol"]
    if protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(
            f"security_protocol must be one of {', '.join(map(repr, SECURITY_PROTOCOLS))}, "
            f"got {protocol!r}"
        )
    for name in ("sasl_mechanism", "sasl_username", "ssl_ca_location"):
        value = fields[name]
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{name} must be a non-empty str or None, got {value!r}")
    password = fields["sasl_password"]
    if password is not None and (
        not isinstance(password, str | Secret) or (isinstance(password, str) and not password)
    ):
        kind = type(password).__name__ if not isinstance(password, str) else "empty str"
        raise ConfigError(f"sasl_password must be a non-empty str, a Secret or None, got {kind}")
    if protocol in _SASL_PROTOCOLS:
        mechanism = fields["sasl_mechanism"]
        if mechanism is None:
            raise ConfigError(
                f"security_protocol {protocol!r} needs sasl_mechanism "
                f"(one of {', '.join(_SASL_MECHANISMS)})"
            )
        if mechanism not in _SASL_MECHANISMS:
            raise ConfigError(
                f"sasl_mechanism must be one of {', '.join(_SASL_MECHANISMS)}, got {mechanism!r}"
            )
        if mechanism in _SASL_PASSWORD_MECHANISMS:
            for name in ("sasl_username", "sasl_password"):
                if fields[name] is None:
                    raise ConfigError(
                        f"sasl_mechanism {mechanism!r} (security_protocol {protocol!r}) "
                        f"needs {name}"
                    )
    else:
        for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
            if fields[name] is not None:
                raise ConfigError(
                    f"{name} is set but security_protocol is {protocol!r}, which does not "
                    "use SASL; use 'SASL_SSL' (or 'SASL_PLAINTEXT')"
                )
    if fields["ssl_ca_location"] is not None and protocol not in _SSL_PROTOCOLS:
        raise ConfigError(
            f"ssl_ca_location is set but security_protocol is {protocol!r}, which does not "
            "use TLS; use 'SSL' or 'SASL_SSL'"
        )


def check_variant(security: object, flat: Mapping[str, object]) -> None:
    """Refuse a ``security`` that is no variant, or that comes with the flat fields of the
    short form (``flat``: their values; ``security_protocol`` set when not ``PLAINTEXT``).

    Raises:
        ConfigError: the message names the fields.
    """
    if not isinstance(security, SECURITY_VARIANTS):
        raise ConfigError(
            "security must be TLS, SaslPlain, SaslScram, OAuthBearer or "
            f"OidcClientCredentials (from eventwire.security) or None, got "
            f"{type(security).__name__}"
        )
    given = [
        name
        for name, value in flat.items()
        if value is not None and not (name == "security_protocol" and value == "PLAINTEXT")
    ]
    if given:
        raise ConfigError(
            f"security is set, and so is {', '.join(given)}: give one or the other "
            f"(security={type(security).__name__}(...) holds them all)"
        )


def check_security(
    security: Security | None, short_form: Mapping[str, object], bootstrap_servers: str
) -> None:
    """Check ``security`` (alone: no flat field beside it) or else the short form, and that
    the ``PROTOCOL://`` prefixes of ``bootstrap_servers`` agree with the protocol in effect.

    Raises:
        ConfigError: the message names the fields, never a secret.
    """
    if security is not None:
        check_variant(security, short_form)
        problem = scheme_problem(bootstrap_servers, protocol_of(security), "security")
    else:
        check_short_form(short_form)
        protocol = str(short_form["security_protocol"])
        problem = scheme_problem(bootstrap_servers, protocol, "security_protocol")
    if problem is not None:
        raise ConfigError(problem)


def scheme_problem(bootstrap_servers: str, protocol: str, field_name: str) -> str | None:
    """Why a ``PROTOCOL://`` prefix of a bootstrap entry contradicts ``protocol`` (librdkafka
    refuses an address whose protocol is not the configured one), or ``None``."""
    for entry in bootstrap_servers.split(","):
        scheme, sep, _ = entry.strip().partition("://")
        if sep and scheme.upper() != protocol:
            flat = field_name == "security_protocol"
            given = f"security_protocol is {protocol!r}" if flat else f"security gives {protocol!r}"
            fix = f"set security_protocol={scheme.upper()!r}" if flat else f"use {protocol}://"
            return (
                f"bootstrap_servers entry {entry.strip()!r} says {scheme.upper()}:// but "
                f"{given}; they must agree (drop the prefix, or {fix})"
            )
    return None


#: Every key a variant renders: with ``security=``, an override of one is refused (the
#: variant's fields say it); compared lower-cased.
RENDERED_KEYS: Final = frozenset(
    {
        "security.protocol",
        "ssl.ca.location",
        "ssl.certificate.location",
        "ssl.key.location",
        "ssl.key.password",
        "ssl.endpoint.identification.algorithm",
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.username",
        "sasl.password",
        "sasl.oauthbearer.method",
        "sasl.oauthbearer.token.endpoint.url",
        "sasl.oauthbearer.client.id",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.scope",
        "sasl.oauthbearer.extensions",
        "oauth_cb",
        "enable.sasl.oauthbearer.unsecure.jwt",
    }
)
