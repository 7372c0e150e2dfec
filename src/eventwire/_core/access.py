"""What a refusal by the cluster means: which client errors say this client is not let in
(authentication) or not allowed (authorization), what is wrong, and what to check.

Pure: librdkafka's codes are compared by name and its texts as strings (the ones Apache Kafka
4.4 and librdkafka 2.16 give, pinned by ``tests/unit/pure/test_access.py``), so the module and
its tests run without confluent-kafka. Where librdkafka's text says too little (a broker
certificate it could not verify says neither why nor which), ``_core.tls_check`` asks the
listener itself and ``tls_denial`` words what it found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["authentication", "authorization"]
#: Whether a TLS check of the listener can say more: ``"verify"`` (why the broker's
#: certificate failed), ``"plaintext"`` (does the listener speak TLS to a plaintext client).
Diagnosis = Literal["none", "verify"]


@dataclass(frozen=True, slots=True)
class Denial:
    """The cluster refuses this client.

    Attributes:
        kind: ``"authentication"`` (not let in) or ``"authorization"`` (not allowed).
        code: the librdkafka code name it came with.
        problem: what is wrong, one clause.
        check: what to check or change, one clause.
        diagnose: whether ``_core.tls_check`` can tell more.
    """

    kind: Kind
    code: str
    problem: str
    check: str
    diagnose: Diagnosis = "none"

    @property
    def headline(self) -> str:
        """``"authentication failed"`` or ``"not authorized"``: what ``health()`` says."""
        return "authentication failed" if self.kind == "authentication" else "not authorized"

    @property
    def summary(self) -> str:
        """One sentence: what is wrong, then what to check."""
        return f"{self.headline}: {self.problem}; check {self.check}"


@dataclass(frozen=True, slots=True)
class Connection:
    """What the client was configured with, for the wording."""

    servers: str
    tls: bool = False
    mechanism: str | None = None
    username: str | None = None
    client_certificate: bool = False


_AUTHENTICATION_CODES: Final = frozenset({"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED"})
_MECHANISMS: Final = re.compile(r"broker's supported mechanisms:\s*(?P<list>[\w, -]*)")
_AFTER: Final = re.compile(r"\s*\(after \d+ms in state \w+\)\s*$")
_BROKER_PREFIX: Final = re.compile(r"^\w+://[^ ]+/(?:\w+|bootstrap): ")


def _detail(reason: str) -> str:
    """librdkafka's text without the broker prefix and the timing suffix."""
    return _AFTER.sub("", _BROKER_PREFIX.sub("", reason)).strip()


def denial_of(code: str, reason: str, connection: Connection) -> Denial | None:
    """The denial a client error (``error_cb``, or a fatal error) reports, or ``None`` when it
    says nothing about this client's access (a broker down, a timeout...)."""
    if code == "CLUSTER_AUTHORIZATION_FAILED":
        return Denial(
            "authorization",
            code,
            "the cluster refuses this client an idempotent producer id "
            "(CLUSTER_AUTHORIZATION_FAILED)",
            "that its principal has the IdempotentWrite ACL on the cluster, or WRITE on the "
            "topics it publishes to (either is enough since Kafka 3.0)",
        )
    if code == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED":
        return Denial(
            "authorization",
            code,
            "the cluster refuses this client its transactional id "
            "(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)",
            "that its principal has WRITE and DESCRIBE on the transactional id",
        )
    if code in _AUTHENTICATION_CODES:
        return _sasl_denial(code, reason, connection)
    if code == "_SSL":
        return _tls_denial(code, reason, connection)
    if code == "_TRANSPORT":
        return _transport_denial(code, reason, connection)
    return None


def _sasl_denial(code: str, reason: str, connection: Connection) -> Denial | None:
    detail = _detail(reason)
    if "Request not valid in current SASL state" in reason:
        # librdkafka's re-authentication raced the broker's session expiry: it reconnects and
        # authenticates again at once (seen with tokens living under ~6 s). Not a refusal.
        return None
    if "Failed to acquire SASL OAUTHBEARER token" in reason:
        cause = detail.partition("Failed to acquire SASL OAUTHBEARER token:")[2].strip()
        return Denial(
            "authentication",
            code,
            f"no OAUTHBEARER token could be obtained ({cause or detail})",
            "the token provider, or the OIDC token endpoint, client id and secret",
        )
    if "Unsupported SASL mechanism" in reason:
        offered = _MECHANISMS.search(reason)
        listed = offered["list"].strip(" ,") if offered else ""
        mechanism = connection.mechanism or "(none)"
        if mechanism in (name.strip() for name in listed.split(",")):
            # A broker that names the mechanism it refuses (seen with Tansu on a plaintext
            # listener): "does not offer PLAIN (it offers PLAIN)" would contradict itself.
            said = f"refused the SASL {mechanism} handshake although it lists {listed}"
        else:
            said = f"does not offer SASL mechanism {mechanism}" + (
                f" (it offers {listed})" if listed else " (it offers none: no SASL there?)"
            )
        return Denial(
            "authentication",
            code,
            f"the listener at {connection.servers} {said}",
            "the SASL mechanism, and that bootstrap_servers names the listener you meant",
        )
    if connection.mechanism == "OAUTHBEARER" or "invalid_token" in reason:
        return Denial(
            "authentication",
            code,
            f"the cluster refused the OAUTHBEARER token ({detail})",
            "the token's expiry, issuer, audience and scope, and what the cluster's "
            "validator expects",
        )
    who = f"user {connection.username!r}" if connection.username else "this client"
    scram = (
        f" (SCRAM: that the user has {connection.mechanism} credentials)"
        if connection.mechanism and connection.mechanism.startswith("SCRAM")
        else ""
    )
    return Denial(
        "authentication",
        code,
        f"the cluster refused the credentials of {who} ({detail})",
        f"the username and password{scram}",
    )


def _tls_denial(code: str, reason: str, connection: Connection) -> Denial:
    if "certificate verify failed" in reason:
        return Denial(
            "authentication",
            code,
            "the broker's TLS certificate could not be verified",
            "the CA bundle (ssl_ca_location, TLS.ca_location), that the certificate has not "
            "expired, and that it names the host in bootstrap_servers",
            diagnose="verify",
        )
    return Denial(
        "authentication",
        code,
        f"the TLS handshake failed ({_detail(reason)})",
        "the TLS settings (CA bundle, client certificate and key, key password)",
    )


def _transport_denial(code: str, reason: str, connection: Connection) -> Denial | None:
    if "connecting to a PLAINTEXT broker listener" in reason:
        return Denial(
            "authentication",
            code,
            f"this client speaks TLS but the listener at {connection.servers} does not",
            "security_protocol (PLAINTEXT or SASL_PLAINTEXT for this listener), or the port "
            "of the cluster's TLS listener",
        )
    alert = re.search(r"alert ([a-z ]*certificate[a-z ]*)", reason)
    if alert is not None:
        if not connection.client_certificate:
            return Denial(
                "authentication",
                code,
                f"the broker refused the TLS connection (alert: {alert[1].strip()}): the "
                "listener requires a client certificate (mTLS) and this client has none",
                "TLS.certificate_location and TLS.key_location",
            )
        return Denial(
            "authentication",
            code,
            f"the broker refused this client's TLS certificate (alert: {alert[1].strip()})",
            "that the client certificate is signed by a CA the broker trusts, has not expired, "
            "and matches its key",
        )
    return None


@dataclass(frozen=True, slots=True)
class TlsFinding:
    """What a TLS check of a listener found (``_core.tls_check``).

    Attributes:
        what: ``"verify"`` (the certificate failed verification), ``"speaks_tls"`` (a
            plaintext client reached a TLS listener) or ``"handshake"`` (another failure).
        host: the host the check connected to (as in bootstrap_servers).
        port: its port.
        verify_code: OpenSSL's verification error code (``"verify"`` only).
        message: OpenSSL's words for it.
    """

    what: Literal["verify", "speaks_tls", "handshake"]
    host: str
    port: int
    verify_code: int = 0
    message: str = ""


# OpenSSL's X509_V_ERR_* codes a misconfiguration gives.
_EXPIRED: Final = 10
_NOT_YET_VALID: Final = 9
_HOST_MISMATCH: Final = frozenset({62, 64})
_UNKNOWN_ISSUER: Final = frozenset({2, 18, 19, 20, 21})


def tls_denial(finding: TlsFinding, ca_location: str | None) -> Denial:
    """The denial a TLS check found, worded for what it is."""
    where = f"{finding.host}:{finding.port}"
    if finding.what == "speaks_tls":
        return Denial(
            "authentication",
            "_TRANSPORT",
            f"the listener at {where} speaks TLS but this client connects without it",
            "security_protocol: SSL (or SASL_SSL) for this listener, e.g. security=TLS() "
            "or a SASL variant with its default tls=TLS()",
        )
    if finding.what == "handshake":
        return Denial(
            "authentication",
            "_SSL",
            f"the TLS handshake with {where} failed ({finding.message})",
            "the TLS settings (CA bundle, client certificate and key, key password)",
        )
    bundle = f"the CA bundle {ca_location!r}" if ca_location else "the system's CA store"
    code = finding.verify_code
    if code == _EXPIRED:
        return Denial(
            "authentication",
            "_SSL",
            f"the certificate of the broker at {where} has expired",
            "the broker's certificate (it must be renewed), and this machine's clock",
        )
    if code == _NOT_YET_VALID:
        return Denial(
            "authentication",
            "_SSL",
            f"the certificate of the broker at {where} is not valid yet",
            "this machine's clock, and the broker's certificate",
        )
    if code in _HOST_MISMATCH:
        return Denial(
            "authentication",
            "_SSL",
            f"the certificate of the broker at {where} is not valid for the host "
            f"{finding.host!r} (hostname verification)",
            "that bootstrap_servers names the brokers as their certificates do (or the "
            "certificates' subject alternative names); TLS(verify_hostname=False) only for a "
            "cluster whose certificates cannot name their hosts",
        )
    if code in _UNKNOWN_ISSUER:
        return Denial(
            "authentication",
            "_SSL",
            f"the certificate of the broker at {where} is not signed by a CA in {bundle} "
            f"({finding.message})",
            "the CA bundle: it must hold the CA that issued the brokers' certificates",
        )
    return Denial(
        "authentication",
        "_SSL",
        f"the certificate of the broker at {where} failed verification ({finding.message})",
        f"the broker's certificate and {bundle}",
    )


#: What to grant, for the authorization codes of delivery reports (by code name).
AUTHORIZATION_HINTS: Final = {
    "TOPIC_AUTHORIZATION_FAILED": (
        "the cluster does not let this client write to topic {topic!r}: grant its principal "
        "WRITE (and DESCRIBE) on the topic, e.g. kafka-acls --add --allow-principal "
        "User:NAME --operation Write --operation Describe --topic {topic}"
    ),
    "CLUSTER_AUTHORIZATION_FAILED": (
        "the cluster refuses this client an idempotent producer id: grant its principal "
        "IdempotentWrite on the cluster, or WRITE on the topics it publishes to"
    ),
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": (
        "the cluster refuses this client its transactional id: grant its principal WRITE "
        "and DESCRIBE on the transactional id"
    ),
}


#: What to check when librdkafka refuses TLS files while the producer is built.
_FILE_HINTS: Final = (
    (
        "ssl.key.location failed",
        "the client's private key could not be read: check TLS.key_location and, for an "
        "encrypted key, TLS.key_password (its passphrase)",
    ),
    (
        "ssl.certificate.location failed",
        "the client certificate could not be read: check TLS.certificate_location (PEM)",
    ),
    (
        "ssl.ca.location failed",
        "the CA bundle could not be read: check TLS.ca_location (PEM)",
    ),
)


def construction_hint(message: str) -> str | None:
    """What to check, for librdkafka's refusal of the TLS files when a producer is built."""
    for marker, hint in _FILE_HINTS:
        if marker in message:
            return hint
    return None
