"""How a publisher proves who it is to a secured cluster: TLS, SASL and OAUTHBEARER settings.

A leaf module like ``_options``: frozen, keyword-only values checked when built. Each variant
declares its own secrets (``Secret`` fields), so redaction never guesses from a key's name;
``_security_settings`` renders a variant for ``_config`` and lists its secrets.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Final, Literal, TypeAlias

from eventwire._errors import ConfigError

#: What ``repr()``, ``str()`` and the logs show of a secret.
MASK: Final = "***"


class Secret:
    """A secret value (password, passphrase, client secret, token) that never shows itself.

    ``repr()``, ``str()`` and ``format()`` give ``'***'``; the value comes out only through
    ``reveal()``, where it is handed to librdkafka. Two secrets are equal when their values are.

    Args:
        value: the secret, a non-empty ``str``.

    Raises:
        ConfigError: ``value`` is not a non-empty ``str``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str) or not value:
            kind = "an empty str" if isinstance(value, str) else type(value).__name__
            raise ConfigError(f"a Secret must be a non-empty str, got {kind}")
        self._value = value

    def reveal(self) -> str:
        """The secret itself: give it only to what needs it (librdkafka), never to a log."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


def _secret(owner: str, name: str, value: object, *, optional: bool = False) -> Secret | None:
    """``value`` as a ``Secret`` (a ``str`` is wrapped); the message never shows the value."""
    if value is None and optional:
        return None
    if isinstance(value, Secret):
        return value
    if isinstance(value, str) and value:
        return Secret(value)
    kind = "an empty str" if isinstance(value, str) else type(value).__name__
    allowed = "a non-empty str, a Secret or None" if optional else "a non-empty str or a Secret"
    raise ConfigError(f"{owner}.{name} must be {allowed}, got {kind}")


def _text(owner: str, name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        allowed = "a non-empty str or None" if optional else "a non-empty str"
        raise ConfigError(f"{owner}.{name} must be {allowed}, got {value!r}")


def _path(owner: str, name: str, value: object, *, directory_ok: bool = False) -> None:
    """A file librdkafka will read: refused now if it is missing, not at the first connect."""
    if value is None:
        return
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigError(f"{owner}.{name} must be a path (str) or None, got {value!r}")
    path = os.fspath(value)
    if os.path.isfile(path) or (directory_ok and os.path.isdir(path)):
        return
    problem = "is a directory" if os.path.isdir(path) else "does not exist"
    raise ConfigError(f"{owner}.{name} {path!r} {problem}")


@dataclass(frozen=True, kw_only=True, slots=True)
class TLS:
    """Encryption and, with a client certificate, mutual TLS (mTLS) to the brokers.

    Alone as ``PublisherConfig(security=TLS(...))`` it is the ``SSL`` protocol; as the ``tls=``
    of a SASL variant it makes that ``SASL_SSL``.

    Args:
        ca_location: the CA bundle (PEM file, or a folder of them) that signed the brokers'
            certificates; ``None`` uses the system's CA store (what managed clusters need).
        certificate_location: this client's certificate (PEM), for mTLS; needs
            ``key_location``.
        key_location: the private key of ``certificate_location`` (PEM).
        key_password: the passphrase of an encrypted ``key_location`` (secret, never shown).
        verify_hostname: check that a broker's certificate names the host it was reached at
            (``ssl.endpoint.identification.algorithm=https``). Turn it off only explicitly,
            for a cluster whose certificates cannot name their hosts: anyone holding a
            certificate from the same CA could then pose as a broker.

    Raises:
        ConfigError: a file does not exist, or the certificate and key do not come together.
    """

    ca_location: str | None = None
    certificate_location: str | None = None
    key_location: str | None = None
    key_password: Secret | None = None
    verify_hostname: bool = True

    def __post_init__(self) -> None:
        _path("TLS", "ca_location", self.ca_location, directory_ok=True)
        _path("TLS", "certificate_location", self.certificate_location)
        _path("TLS", "key_location", self.key_location)
        if (self.certificate_location is None) != (self.key_location is None):
            raise ConfigError(
                "TLS.certificate_location and TLS.key_location come together (mTLS needs the "
                "client certificate and its private key)"
            )
        password = _secret("TLS", "key_password", self.key_password, optional=True)
        if password is not None and self.key_location is None:
            raise ConfigError("TLS.key_password is set but TLS.key_location is not")
        object.__setattr__(self, "key_password", password)
        if not isinstance(self.verify_hostname, bool):
            raise ConfigError(f"TLS.verify_hostname must be a bool, got {self.verify_hostname!r}")


def _check_tls(owner: str, tls: object) -> None:
    if tls is not None and not isinstance(tls, TLS):
        raise ConfigError(
            f"{owner}.tls must be a TLS (TLS() for the system's CAs) or None for a plaintext "
            f"connection, got {type(tls).__name__}"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class SaslPlain:
    """SASL/PLAIN: a username and password (Confluent Cloud API keys, Aiven, Event Hubs).

    Args:
        username: the user (an API key).
        password: its password (an API secret; secret, never shown).
        tls: the TLS the credentials travel in (``SASL_SSL``); default ``TLS()`` with the
            system's CAs. ``None`` sends them in clear (``SASL_PLAINTEXT``): only on a
            network you trust.

    Raises:
        ConfigError: a field is empty or of the wrong type.
    """

    username: str
    password: Secret
    tls: TLS | None = TLS()

    mechanism: ClassVar[str] = "PLAIN"

    def __post_init__(self) -> None:
        _text("SaslPlain", "username", self.username)
        object.__setattr__(self, "password", _secret("SaslPlain", "password", self.password))
        _check_tls("SaslPlain", self.tls)


ScramMechanism: TypeAlias = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]
_SCRAM: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, kw_only=True, slots=True)
class SaslScram:
    """SASL/SCRAM: a username and password the password never crosses the wire in (Amazon MSK
    SCRAM, self-managed Kafka).

    Args:
        username: the user.
        password: its password (secret, never shown).
        mechanism: ``"SCRAM-SHA-512"`` (default) or ``"SCRAM-SHA-256"``; the user needs
            credentials for that one.
        tls: as for `SaslPlain`; default ``TLS()``.

    Raises:
        ConfigError: a field is empty, of the wrong type, or an unknown mechanism.
    """

    username: str
    password: Secret
    mechanism: ScramMechanism = "SCRAM-SHA-512"
    tls: TLS | None = TLS()

    def __post_init__(self) -> None:
        _text("SaslScram", "username", self.username)
        object.__setattr__(self, "password", _secret("SaslScram", "password", self.password))
        if self.mechanism not in _SCRAM:
            raise ConfigError(
                f"SaslScram.mechanism must be one of {', '.join(map(repr, _SCRAM))}, "
                f"got {self.mechanism!r}"
            )
        _check_tls("SaslScram", self.tls)


@dataclass(frozen=True, kw_only=True, slots=True)
class OAuthToken:
    """One OAUTHBEARER token, as a token provider returns it.

    Args:
        value: the token (a JWT, compact form; secret, never shown).
        expires_at: when it expires, seconds since the Unix epoch (e.g. ``time.time() +
            expires_in``). librdkafka asks for the next one at 80 % of its lifetime.
        principal: the principal the token is for (shown in librdkafka's logs only).
        extensions: SASL extensions sent with it (e.g. Confluent Cloud's ``logicalCluster``
            and ``identityPoolId``).

    Raises:
        ConfigError: a field is empty or of the wrong type.
    """

    value: Secret
    expires_at: float
    principal: str = "eventwire"
    extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _secret("OAuthToken", "value", self.value))
        at = self.expires_at
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise ConfigError(f"OAuthToken.expires_at must be seconds since the epoch, got {at!r}")
        _text("OAuthToken", "principal", self.principal)
        object.__setattr__(self, "extensions", _extensions("OAuthToken", self.extensions))


#: What an `OAuthBearer` calls for a token: a function, or a coroutine function.
TokenProvider: TypeAlias = Callable[[], "OAuthToken | Awaitable[OAuthToken]"]


@dataclass(frozen=True, kw_only=True, slots=True)
class OAuthBearer:
    """SASL/OAUTHBEARER with tokens from your code (an identity provider's SDK, Amazon MSK
    IAM's signer, a token file a sidecar refreshes).

    librdkafka asks for a token when the publisher is built (which waits up to 10 s for it),
    then again at 80 % of each token's lifetime, while the current one still works, so events
    go on flowing through a refresh. A provider that fails is asked again 10 s later; the
    failure is logged (``eventwire.token_failed``) and, once the token has expired, events
    fail with ``AuthenticationError``.

    Args:
        token_provider: called with no argument, returns an `OAuthToken`; a coroutine
            function works too. librdkafka calls it from a thread of its own, so a coroutine
            runs on an event loop eventwire keeps for it (not yours): create what it needs,
            such as an HTTP client, inside it.
        tls: as for `SaslPlain`; default ``TLS()``.

    Raises:
        ConfigError: ``token_provider`` is not callable.
    """

    token_provider: TokenProvider
    tls: TLS | None = TLS()

    mechanism: ClassVar[str] = "OAUTHBEARER"

    def __post_init__(self) -> None:
        if not callable(self.token_provider):
            raise ConfigError(
                f"OAuthBearer.token_provider must be callable (returning an OAuthToken), got "
                f"{type(self.token_provider).__name__}"
            )
        _check_tls("OAuthBearer", self.tls)


@dataclass(frozen=True, kw_only=True, slots=True)
class OidcClientCredentials:
    """SASL/OAUTHBEARER with librdkafka's own OIDC client: it fetches tokens from the token
    endpoint with the client-credentials grant and refreshes them before they expire.

    Args:
        token_endpoint_url: the identity provider's token endpoint.
        client_id: the client (application) id.
        client_secret: its secret (secret, never shown).
        scope: the scope to ask for, if the provider wants one.
        extensions: SASL extensions sent with the token (e.g. Confluent Cloud's
            ``logicalCluster`` and ``identityPoolId``).
        tls: as for `SaslPlain`; default ``TLS()``. (The token endpoint's own HTTPS uses the
            system's CAs; librdkafka's ``https.ca.location`` override changes that.)

    Raises:
        ConfigError: a field is empty or of the wrong type.
    """

    token_endpoint_url: str
    client_id: str
    client_secret: Secret
    scope: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)
    tls: TLS | None = TLS()

    mechanism: ClassVar[str] = "OAUTHBEARER"

    def __post_init__(self) -> None:
        owner = "OidcClientCredentials"
        _text(owner, "token_endpoint_url", self.token_endpoint_url)
        if not self.token_endpoint_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"{owner}.token_endpoint_url must be an http(s) URL, got "
                f"{self.token_endpoint_url!r}"
            )
        _text(owner, "client_id", self.client_id)
        object.__setattr__(
            self, "client_secret", _secret(owner, "client_secret", self.client_secret)
        )
        _text(owner, "scope", self.scope, optional=True)
        object.__setattr__(self, "extensions", _extensions(owner, self.extensions))
        _check_tls(owner, self.tls)


def _extensions(owner: str, extensions: object) -> Mapping[str, str]:
    if not isinstance(extensions, Mapping):
        raise ConfigError(f"{owner}.extensions must be a mapping of str to str")
    checked = dict(extensions)
    for key, value in checked.items():
        if not isinstance(key, str) or not key or not key.isalpha() or not isinstance(value, str):
            raise ConfigError(
                f"{owner}.extensions must map letters-only names to str values, got {key!r}"
            )
        if "," in value or "=" in value:
            raise ConfigError(f"{owner}.extensions[{key!r}] must not hold ',' or '='")
    return MappingProxyType(checked)


#: What ``PublisherConfig(security=...)`` takes.
Security: TypeAlias = TLS | SaslPlain | SaslScram | OAuthBearer | OidcClientCredentials
SECURITY_VARIANTS: Final = (TLS, SaslPlain, SaslScram, OAuthBearer, OidcClientCredentials)
