"""Settings read from outside the code, turned into ``PublisherConfig`` keyword arguments: the
fields, the security variant, and librdkafka overrides for the rest."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from eventwire._config_sources.jaas import read_jaas
from eventwire._config_sources.settings import Setting, Settings
from eventwire._errors import ConfigError
from eventwire._librdkafka import check_override
from eventwire._security import (
    TLS,
    OidcClientCredentials,
    SaslPlain,
    SaslScram,
    Secret,
    Security,
)

#: Keys of a properties file that do not apply to a producer, skipped (consumer settings and
#: Schema Registry's, which Confluent Cloud's client.properties carries).
IGNORED_KEYS: Final = frozenset(
    {
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "group.id",
        "group.instance.id",
        "group.protocol",
        "auto.offset.reset",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "isolation.level",
        "max.poll.interval.ms",
        "max.poll.records",
        "partition.assignment.strategy",
    }
)
IGNORED_PREFIXES: Final = ("schema.registry.", "basic.auth.", "bearer.auth.")

#: Java client settings librdkafka has no equivalent of, and what to do instead.
JAVA_ONLY_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "key.serializer": "eventwire encodes events itself: remove it",
        "value.serializer": "eventwire encodes events itself: remove it",
        "key.deserializer": "a consumer setting: remove it",
        "value.deserializer": "a consumer setting: remove it",
        "interceptor.classes": "Java interceptors do not run here: remove it",
        "sasl.client.callback.handler.class": (
            "Java callback handlers do not run here: give security= in code"
        ),
        "sasl.login.class": "Java login classes do not run here: give security= in code",
        "ssl.protocol": "librdkafka negotiates the TLS version itself: remove it",
        "ssl.enabled.protocols": "librdkafka negotiates the TLS version itself: remove it",
        "ssl.keymanager.algorithm": "a JVM setting: remove it",
        "ssl.trustmanager.algorithm": "a JVM setting: remove it",
        "ssl.secure.random.implementation": "a JVM setting: remove it",
        "security.providers": "a JVM setting: remove it",
    }
)
#: Values already guaranteed by every preset: accepted when they agree, refused if not.
_GUARANTEED: Final = ("acks", "enable.idempotence")


def config_kwargs(settings: Settings, *, missing: Callable[[str], str]) -> dict[str, Any]:
    """``PublisherConfig`` keyword arguments from librdkafka-style settings.

    Args:
        settings: the settings and their origins.
        missing: how to name a key the source did not give (``EVENTWIRE_SASL_USERNAME``, or
            ``sasl.username in client.properties``).

    Raises:
        ConfigError: a setting is missing, contradicts another, names a file that does not
            exist, or has no equivalent here; the message names its origin.
    """
    builder = _Builder(dict(settings), missing)
    return builder.build()


class _Builder:
    def __init__(self, settings: Settings, missing: Callable[[str], str]) -> None:
        self._settings = settings
        self._missing = missing

    def _take(self, key: str) -> Setting | None:
        return self._settings.pop(key, None)

    def _required(self, key: str, why: str) -> Setting:
        found = self._take(key)
        if found is None:
            raise ConfigError(f"{self._missing(key)} is required {why}")
        return found

    def build(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        servers = self._take("bootstrap.servers")
        if servers is not None:
            kwargs["bootstrap_servers"] = servers.value
        for key, field_name in (
            ("client.id", "client_id"),
            ("preset", "preset"),
            ("topic_prefix", "topic_prefix"),
            ("compression.type", "compression"),
        ):
            found = self._take(key)
            if found is not None:
                kwargs[field_name] = found.value
        linger = self._take("linger.ms")
        if linger is not None:
            kwargs["linger_ms"] = _number(linger)
        timeout = self._take("delivery.timeout.ms") or self._take("message.timeout.ms")
        if timeout is not None:
            kwargs["delivery_timeout"] = _number(timeout) / 1000
        read_jaas(self._settings)
        security = self._security()
        if security is not None:
            kwargs["security"] = security
        overrides = self._overrides()
        if overrides:
            kwargs["librdkafka_overrides"] = overrides
        return kwargs

    def _security(self) -> Security | None:
        protocol_setting = self._take("security.protocol")
        protocol = "PLAINTEXT" if protocol_setting is None else protocol_setting.value.upper()
        where = (
            f"security.protocol={protocol} ({protocol_setting.origin})"
            if protocol_setting is not None
            else f"{self._missing('security.protocol')} is not set (PLAINTEXT)"
        )
        if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            assert protocol_setting is not None  # noqa: S101 - PLAINTEXT when missing
            raise ConfigError(
                f"{protocol_setting.origin}: security.protocol must be PLAINTEXT, SSL, "
                f"SASL_PLAINTEXT or SASL_SSL, got {protocol_setting.value!r}"
            )
        tls = self._tls() if protocol in ("SSL", "SASL_SSL") else None
        if protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
            self._refuse_present(_TLS_KEYS, f"but {where}, which does not use TLS")
        if protocol in ("PLAINTEXT", "SSL"):
            self._refuse_present(_SASL_KEYS, f"but {where}, which does not use SASL")
            return tls
        return self._sasl(tls, where)

    def _refuse_present(self, keys: tuple[str, ...], why: str) -> None:
        for key in keys:
            found = self._settings.get(key)
            if found is not None:
                raise ConfigError(f"{found.origin}: {key} is set {why}")

    def _tls(self) -> TLS:
        ca = self._path("ssl.ca.location", directory_ok=True)
        store = self._take("ssl.truststore.location")
        store_type = self._take("ssl.truststore.type")
        self._take("ssl.truststore.password")  # a PEM truststore has none to check
        if store is not None:
            kind = (store_type.value if store_type else "JKS").upper()
            if kind != "PEM":
                raise ConfigError(
                    f"{store.origin}: ssl.truststore.location is a {kind} store, which librdkafka "
                    "cannot read: export the CA certificate as PEM (keytool -exportcert -rfc "
                    "-keystore STORE -alias ALIAS) and set ssl.ca.location to it"
                )
            if ca is not None:
                raise ConfigError(
                    f"{store.origin}: ssl.truststore.location and ssl.ca.location both name "
                    "the CA; give one"
                )
            ca = self._existing(store, directory_ok=False)
        certificate = self._path("ssl.certificate.location")
        key = self._path("ssl.key.location")
        password = self._take("ssl.key.password")
        keystore = self._take("ssl.keystore.location")
        keystore_type = self._take("ssl.keystore.type")
        if keystore is not None:
            kind = (keystore_type.value if keystore_type else "JKS").upper()
            if kind == "PEM":  # the key and its certificate chain in one file
                certificate = key = self._existing(keystore, directory_ok=False)
                self._take("ssl.keystore.password")
            elif kind == "PKCS12":  # librdkafka reads PKCS#12 itself
                self._settings["ssl.keystore.location"] = keystore
            else:
                raise ConfigError(
                    f"{keystore.origin}: ssl.keystore.location is a {kind} store, which "
                    "librdkafka cannot read: convert it to PKCS#12 (keytool -importkeystore "
                    "-deststoretype PKCS12) or to PEM files (ssl.certificate.location and "
                    "ssl.key.location)"
                )
        algorithm = self._take("ssl.endpoint.identification.algorithm")
        verify = True
        if algorithm is not None:
            value = algorithm.value.strip().lower()
            if value not in ("", "none", "https"):
                raise ConfigError(
                    f"{algorithm.origin}: ssl.endpoint.identification.algorithm must be "
                    f"'https' or 'none', got {algorithm.value!r}"
                )
            verify = value == "https"
        try:
            return TLS(
                ca_location=ca,
                certificate_location=certificate,
                key_location=key,
                key_password=Secret(password.value) if password is not None else None,
                verify_hostname=verify,
            )
        except ConfigError as exc:
            origin = (password or keystore or algorithm or Setting("", "TLS")).origin
            raise ConfigError(f"{origin}: {exc}") from None

    def _path(self, key: str, *, directory_ok: bool = False) -> str | None:
        found = self._take(key)
        return None if found is None else self._existing(found, directory_ok=directory_ok)

    def _existing(self, found: Setting, *, directory_ok: bool) -> str:
        path = os.path.expanduser(found.value)
        if os.path.isfile(path) or (directory_ok and os.path.isdir(path)):
            return path
        problem = "is a directory" if os.path.isdir(path) else "does not exist"
        raise ConfigError(f"{found.origin}: {found.value!r} {problem}")

    def _sasl(self, tls: TLS | None, where: str) -> Security:
        mechanism_setting = self._take("sasl.mechanism") or self._take("sasl.mechanisms")
        if mechanism_setting is None:
            raise ConfigError(
                f"{self._missing('sasl.mechanism')} is required: {where} "
                "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)"
            )
        mechanism = mechanism_setting.value.upper()
        why = f"with sasl.mechanism={mechanism} ({mechanism_setting.origin})"
        if mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            self._refuse_present(_OAUTH_KEYS, why + ", which does not use OAUTHBEARER settings")
            username = self._required("sasl.username", why).value
            password = Secret(self._required("sasl.password", why).value)
            if mechanism == "PLAIN":
                return SaslPlain(username=username, password=password, tls=tls)
            return SaslScram(
                username=username,
                password=password,
                mechanism=mechanism,  # type: ignore[arg-type]  # one of the two, checked above
                tls=tls,
            )
        if mechanism == "OAUTHBEARER":
            self._refuse_present(("sasl.username", "sasl.password"), why + " (tokens, no password)")
            method = self._take("sasl.oauthbearer.method")
            if method is None or method.value.lower() != "oidc":
                origin = method.origin if method is not None else mechanism_setting.origin
                raise ConfigError(
                    f"{origin}: OAUTHBEARER from a file needs sasl.oauthbearer.method=oidc with "
                    "its token endpoint, client id and secret; a token provider of your own is "
                    "code: give security=OAuthBearer(token_provider=...)"
                )
            why = f"with sasl.oauthbearer.method=oidc ({method.origin})"
            scope = self._take("sasl.oauthbearer.scope")
            extensions = self._take("sasl.oauthbearer.extensions")
            try:
                return OidcClientCredentials(
                    token_endpoint_url=self._required(
                        "sasl.oauthbearer.token.endpoint.url", why
                    ).value,
                    client_id=self._required("sasl.oauthbearer.client.id", why).value,
                    client_secret=Secret(
                        self._required("sasl.oauthbearer.client.secret", why).value
                    ),
                    scope=scope.value if scope is not None else None,
                    extensions=_pairs(extensions) if extensions is not None else {},
                    tls=tls,
                )
            except ConfigError as exc:
                raise ConfigError(f"{method.origin}: {exc}") from None
        raise ConfigError(
            f"{mechanism_setting.origin}: sasl.mechanism {mechanism_setting.value!r} cannot be "
            "configured from outside the code (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and "
            "OAUTHBEARER with OIDC can); give it in code"
        )

    # -- the rest ----------------------------------------------------------------------------

    def _overrides(self) -> dict[str, str]:
        overrides: dict[str, str] = {}
        for key, found in sorted(self._settings.items()):
            if key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES):
                continue
            hint = JAVA_ONLY_KEYS.get(key)
            if hint is not None:
                raise ConfigError(
                    f"{found.origin}: {key} is a Java client setting librdkafka does not have; "
                    f"{hint}"
                )
            try:
                check_override(key, found.value)
            except ConfigError as exc:
                raise ConfigError(f"{found.origin}: {exc}") from None
            if key in _GUARANTEED:
                continue  # every preset sets it so (check_override refused any other value)
            overrides[key] = found.value
        return overrides


_TLS_KEYS: Final = (
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.truststore.location",
    "ssl.keystore.location",
)
_OAUTH_KEYS: Final = (
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
)
_SASL_KEYS: Final = (
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    *_OAUTH_KEYS,
)


def _number(found: Setting) -> float:
    try:
        return float(found.value)
    except ValueError:
        raise ConfigError(f"{found.origin}: {found.value!r} is not a number") from None


def _pairs(found: Setting) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in found.value.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not name:
            raise ConfigError(f"{found.origin}: expected key=value[,key=value...], got {item!r}")
        pairs[name] = value
    return pairs
