"""The secured client listener of a `KafkaCluster`: its CA and certificates (made with
``cryptography``), its users, the broker settings of each security mode, a local OIDC token
endpoint, and what a client needs to connect.

Only the client listener is secured. Replication and the controller stay on plaintext
listeners whose principal (``ANONYMOUS``) is a super user, and the kit's own clients (topic
creation, read-back, users and ACLs) use the replication listener, so they need no
credentials; it is never advertised to clients.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import http.server
import ipaddress
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from eventwire.security import (
    TLS,
    OAuthBearer,
    OAuthToken,
    OidcClientCredentials,
    SaslPlain,
    SaslScram,
    Secret,
    Security,
)

SecurityMode: TypeAlias = Literal[
    "PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT", "SASL_OAUTHBEARER"
]
SECURITY_MODES: Final = ("PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT", "SASL_OAUTHBEARER")
#: The client listener's ``security.protocol`` in each mode.
LISTENER_PROTOCOLS: Final[Mapping[str, str]] = {
    "PLAINTEXT": "PLAINTEXT",
    "SSL": "SSL",
    "SASL_SSL": "SASL_SSL",
    "SASL_PLAINTEXT": "SASL_PLAINTEXT",
    "SASL_OAUTHBEARER": "SASL_SSL",
}
#: The super user every secured cluster has on its client listener (a random password).
ADMIN_USER: Final = "admin"
#: The user `KafkaCluster.client_config` connects as by default.
CLIENT_USER: Final = "client"
#: Principal of the plaintext replication and controller listeners (a super user).
INTERNAL_PRINCIPAL: Final = "User:ANONYMOUS"

_AUTHORIZER: Final = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_SCRAM_MODULE: Final = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN_MODULE: Final = "org.apache.kafka.common.security.plain.PlainLoginModule"
_OAUTH_MODULE: Final = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
SCRAM_MECHANISMS: Final = ("SCRAM-SHA-512", "SCRAM-SHA-256")


def _need_cryptography() -> Any:
    try:
        import cryptography  # noqa: F401 - only checks that it is there
    except ModuleNotFoundError:  # pragma: no cover - the testing extra brings it
        raise ModuleNotFoundError(
            "a secured KafkaCluster makes its certificates with cryptography: "
            "pip install 'eventwire[testing]'"
        ) from None
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


class CertificateAuthority:
    """A throw-away CA (ECDSA P-256) that issues broker and client certificates as PEM files."""

    def __init__(self, name: str, folder: Path) -> None:
        x509, hashes, serialization, ec, _, name_oid = _need_cryptography()
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(name_oid.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.pem = self._certificate.public_bytes(serialization.Encoding.PEM)
        self.location = folder / f"{name.replace(' ', '-')}.pem"
        self.location.write_bytes(self.pem)
        self._issued = 0

    def issue(
        self,
        common_name: str,
        *,
        hosts: tuple[str, ...] = (),
        expired: bool = False,
        password: str | None = None,
    ) -> tuple[Path, Path]:
        """A certificate and its PKCS#8 key, written as ``{common_name}.pem`` and ``.key``.

        Args:
            common_name: the subject's CN (a client's principal, a broker's name).
            hosts: subject alternative names (IP addresses or DNS names).
            expired: valid from 10 days ago until yesterday.
            password: encrypt the key with it.
        """
        x509, hashes, serialization, ec, eku, name_oid = _need_cryptography()
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        start, end = (
            (now - dt.timedelta(days=10), now - dt.timedelta(days=1))
            if expired
            else (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(name_oid.COMMON_NAME, common_name)]))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([eku.SERVER_AUTH, eku.CLIENT_AUTH]), critical=False
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_alternative_name(x509, host) for host in hosts]),
                critical=False,
            )
        certificate = builder.sign(self._key, hashes.SHA256())
        encryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        # A file of its own per certificate: another one for the same name must not replace it.
        self._issued += 1
        stem = self.folder / f"{common_name.replace('/', '_')}-{self._issued}"
        certificate_path = stem.with_suffix(".pem")
        key_path = stem.with_suffix(".key")
        certificate_path.write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM) + self.pem
        )
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )
        return certificate_path, key_path


def _alternative_name(x509: Any, host: str) -> Any:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def unsecured_token(subject: str, lifetime: float) -> OAuthToken:
    """An unsecured JWS (``alg: none``) for ``subject``, as Kafka's default OAUTHBEARER
    validator accepts: for tests only, anyone can forge one."""
    now = time.time()
    header = _b64({"alg": "none"})
    claims = _b64({"sub": subject, "iat": int(now), "exp": now + lifetime, "scope": "kafka"})
    return OAuthToken(value=Secret(f"{header}.{claims}."), expires_at=now + lifetime)


def _b64(document: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@dataclass
class TokenEndpoint:
    """A local OIDC token endpoint (client-credentials grant) on 127.0.0.1 that issues
    unsecured JWS tokens for the clients it knows (client id = the Kafka user)."""

    clients: dict[str, str]
    lifetime: float
    host: str = "127.0.0.1"
    #: Tokens issued, and requests refused, so far.
    issued: int = 0
    refused: int = 0

    def start(self) -> None:
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                client, secret = _client_credentials(self.headers.get("Authorization"), form)
                known = endpoint.clients.get(client or "")
                if (
                    form.get("grant_type") != ["client_credentials"]
                    or known is None
                    or not secrets.compare_digest(known, secret or "")
                ):
                    endpoint.refused += 1
                    self._answer(401, {"error": "invalid_client"})
                    return
                endpoint.issued += 1
                token = unsecured_token(client or "", endpoint.lifetime)
                self._answer(
                    200,
                    {
                        "access_token": token.value.reveal(),
                        "token_type": "bearer",
                        "expires_in": int(endpoint.lifetime),
                    },
                )

            def _answer(self, status: int, body: Mapping[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="eventwire-oidc-endpoint", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_port}/token"

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(5.0)
            del self._server


def _client_credentials(
    authorization: str | None, form: Mapping[str, list[str]]
) -> tuple[str | None, str | None]:
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        client, _, secret = decoded.partition(":")
        return urllib.parse.unquote(client), urllib.parse.unquote(secret)
    ids = form.get("client_id") or [""]
    secrets_given = form.get("client_secret") or [""]
    return ids[0] or None, secrets_given[0] or None


class ClusterSecurity:
    """Everything a secured mode adds to a cluster (see the module docstring)."""

    def __init__(
        self,
        mode: SecurityMode,
        *,
        host: str,
        users: Mapping[str, str],
        authorizer: bool,
        certificate_expired: bool,
        token_lifetime: float,
    ) -> None:
        self.mode = mode
        self.protocol = LISTENER_PROTOCOLS[mode]
        self.host = host
        self.users = {ADMIN_USER: secrets.token_hex(12), **users}
        self.authorizer = authorizer
        self.certificate_expired = certificate_expired
        self.token_lifetime = token_lifetime
        self.folder: Path | None = None
        self.ca: CertificateAuthority | None = None
        self.untrusted_ca: CertificateAuthority | None = None
        self.endpoint: TokenEndpoint | None = None
        self._certificates: dict[str, tuple[Path, Path]] = {}

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    # -- before the brokers start ------------------------------------------------------------

    def prepare(self, folder: Path) -> None:
        """Write the CA, the brokers' key store and the users' certificates; start the token
        endpoint."""
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._certificates = {}
        if self.tls:
            self.ca = CertificateAuthority("eventwire test CA", folder)
            self.untrusted_ca = CertificateAuthority("untrusted test CA", folder)
            certificate, key = self.ca.issue(
                "broker", hosts=(self.host,), expired=self.certificate_expired
            )
            # Kafka's PEM key store: the private key, then the certificate chain.
            keystore = folder / "broker-keystore.pem"
            keystore.write_bytes(key.read_bytes() + certificate.read_bytes())
        if self.mode == "SSL":
            for user, password in self.users.items():
                self._certificates[user] = self.ca_issue(user, password)
        if self.mode == "SASL_OAUTHBEARER":
            self.endpoint = TokenEndpoint(dict(self.users), self.token_lifetime)
            self.endpoint.start()

    def ca_issue(
        self, user: str, password: str | None, *, expired: bool = False, trusted: bool = True
    ) -> tuple[Path, Path]:
        authority = self.ca if trusted else self.untrusted_ca
        if authority is None:
            raise ValueError("the cluster has no TLS listener: certificates need SSL modes")
        return authority.issue(user, expired=expired, password=password)

    def server_properties(self) -> dict[str, str]:
        """The brokers' settings of the client listener (``listener.name.client.*``) and the
        authorizer."""
        assert self.folder is not None  # noqa: S101 - prepare() first
        settings: dict[str, str] = {}
        prefix = "listener.name.client."
        if self.tls:
            assert self.ca is not None  # noqa: S101 - made by prepare()
            settings.update(
                {
                    f"{prefix}ssl.keystore.type": "PEM",
                    f"{prefix}ssl.keystore.location": str(self.folder / "broker-keystore.pem"),
                    f"{prefix}ssl.truststore.type": "PEM",
                    f"{prefix}ssl.truststore.location": str(self.ca.location),
                }
            )
        if self.mode == "SSL":
            settings[f"{prefix}ssl.client.auth"] = "required"
            # User:CN=client would be the principal: the CN alone is the user's name.
            settings["ssl.principal.mapping.rules"] = "RULE:^CN=([^,]*).*$/$1/,DEFAULT"
        elif self.mode == "SASL_SSL":
            settings[f"{prefix}sasl.enabled.mechanisms"] = ",".join(SCRAM_MECHANISMS)
            for mechanism in SCRAM_MECHANISMS:
                settings[f"{prefix}{mechanism.lower()}.sasl.jaas.config"] = (
                    f"{_SCRAM_MODULE} required;"
                )
        elif self.mode == "SASL_PLAINTEXT":
            settings[f"{prefix}sasl.enabled.mechanisms"] = "PLAIN"
            accounts = " ".join(
                f'user_{user}="{password}"' for user, password in self.users.items()
            )
            settings[f"{prefix}plain.sasl.jaas.config"] = f"{_PLAIN_MODULE} required {accounts};"
        elif self.mode == "SASL_OAUTHBEARER":
            # No callback handler: Kafka's unsecured JWS validator (alg "none" tokens). The
            # session ends when the token expires, so a client must re-authenticate in time.
            settings[f"{prefix}sasl.enabled.mechanisms"] = "OAUTHBEARER"
            settings[f"{prefix}oauthbearer.sasl.jaas.config"] = f"{_OAUTH_MODULE} required;"
            settings[f"{prefix}oauthbearer.connections.max.reauth.ms"] = "3600000"
        if self.authorizer:
            settings["authorizer.class.name"] = _AUTHORIZER
            settings["super.users"] = f"{INTERNAL_PRINCIPAL};User:{ADMIN_USER}"
            settings["allow.everyone.if.no.acl.found"] = "false"
        return settings

    # -- what a client needs -----------------------------------------------------------------

    def client_security(
        self,
        user: str,
        *,
        password: str | None = None,
        oauth: Literal["token", "oidc"] = "token",
    ) -> Security:
        """The ``PublisherConfig(security=...)`` that connects as ``user`` (``password``
        replaces its own, e.g. a wrong one)."""
        secret = password if password is not None else self.users.get(user)
        if secret is None:
            raise ValueError(
                f"no user {user!r} on this cluster (users: {', '.join(sorted(self.users))});"
                " give it in users= or add_user()"
            )
        tls = TLS(ca_location=str(self.ca.location)) if self.ca is not None else None
        if self.mode == "SSL":
            assert self.ca is not None  # noqa: S101 - SSL has one
            certificate, key = self._certificates[user]
            return TLS(
                ca_location=str(self.ca.location),
                certificate_location=str(certificate),
                key_location=str(key),
                key_password=Secret(secret),
            )
        if self.mode == "SASL_SSL":
            return SaslScram(username=user, password=Secret(secret), tls=tls)
        if self.mode == "SASL_PLAINTEXT":
            return SaslPlain(username=user, password=Secret(secret), tls=None)
        if self.mode == "SASL_OAUTHBEARER":
            assert self.endpoint is not None  # noqa: S101 - started by prepare()
            if oauth == "oidc":
                return OidcClientCredentials(
                    token_endpoint_url=self.endpoint.url,
                    client_id=user,
                    client_secret=Secret(secret),
                    scope="kafka",
                    tls=tls,
                )
            return OAuthBearer(token_provider=self.token_provider(user), tls=tls)
        raise ValueError("a PLAINTEXT cluster has no security settings")

    def token_provider(self, user: str, lifetime: float | None = None) -> Any:
        """A token provider of unsecured tokens for ``user``."""
        seconds = self.token_lifetime if lifetime is None else lifetime

        def provide() -> OAuthToken:
            return unsecured_token(user, seconds)

        return provide

    def librdkafka(self, user: str) -> dict[str, Any]:
        """A confluent-kafka client's settings (no bootstrap) to connect as ``user``; an
        OAUTHBEARER one gets an ``oauth_cb`` of unsecured tokens."""
        secret = self.users.get(user)
        if secret is None:
            raise ValueError(f"no user {user!r} on this cluster")
        settings: dict[str, Any] = {"security.protocol": self.protocol}
        if self.ca is not None:
            settings["ssl.ca.location"] = str(self.ca.location)
        if self.mode == "SSL":
            certificate, key = self._certificates[user]
            settings.update(
                {
                    "ssl.certificate.location": str(certificate),
                    "ssl.key.location": str(key),
                    "ssl.key.password": secret,
                }
            )
        elif self.mode == "SASL_SSL":
            settings.update(
                {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": secret}
            )
        elif self.mode == "SASL_PLAINTEXT":
            settings.update(
                {"sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": secret}
            )
        elif self.mode == "SASL_OAUTHBEARER":
            provide = self.token_provider(user)

            def oauth_cb(_: str) -> tuple[str, float]:
                token = provide()
                return token.value.reveal(), token.expires_at

            settings.update({"sasl.mechanism": "OAUTHBEARER", "oauth_cb": oauth_cb})
        return settings

    def add_certificate(self, user: str, password: str) -> None:
        self._certificates[user] = self.ca_issue(user, password)

    def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
