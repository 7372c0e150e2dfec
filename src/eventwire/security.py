"""How a publisher connects to a secured cluster: ``PublisherConfig(security=...)`` takes one of
these (see the guide, docs/security.md).

``TLS`` (``SSL``; mTLS with a client certificate), ``SaslPlain``, ``SaslScram``,
``OAuthBearer`` (tokens from your code, ``OAuthToken``) and ``OidcClientCredentials``
(librdkafka's OIDC client). Every secret is a ``Secret``: never shown in a ``repr``, a log, a
span, a metric or an error.
"""

from eventwire._security import (
    TLS,
    OAuthBearer,
    OAuthToken,
    OidcClientCredentials,
    SaslPlain,
    SaslScram,
    ScramMechanism,
    Secret,
    Security,
    TokenProvider,
)

__all__ = [
    "TLS",
    "OAuthBearer",
    "OAuthToken",
    "OidcClientCredentials",
    "SaslPlain",
    "SaslScram",
    "ScramMechanism",
    "Secret",
    "Security",
    "TokenProvider",
]
