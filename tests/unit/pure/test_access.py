"""What a refusal by the cluster means, read from librdkafka's own words
(``eventwire._core.access``).

The reasons below are the texts Apache Kafka 4.4.0 and librdkafka 2.16 gave in
``tests/security`` (copied from their ``error_cb`` reports). No librdkafka is imported:
``test_pure_modules`` runs these with confluent-kafka made unimportable.
"""

from __future__ import annotations

import pytest

from eventwire._core.access import Connection, TlsFinding, denial_of, tls_denial

SCRAM = Connection(
    servers="127.0.0.1:9093", tls=True, mechanism="SCRAM-SHA-512", username="orders-api"
)
PLAIN = Connection(servers="127.0.0.1:9092", mechanism="PLAIN", username="key")
MTLS = Connection(servers="127.0.0.1:9094", tls=True, client_certificate=True)
OAUTH = Connection(servers="127.0.0.1:9095", tls=True, mechanism="OAUTHBEARER")


def test_refused_scram_credentials_name_the_user_and_what_to_check() -> None:
    reason = (
        "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed"
        " during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        " (after 315ms in state AUTH_REQ)"
    )
    denial = denial_of("_AUTHENTICATION", reason, SCRAM)
    assert denial is not None
    assert denial.summary == (
        "authentication failed: the cluster refused the credentials of user 'orders-api'"
        " (SASL authentication error: Authentication failed during authentication due to"
        " invalid credentials with SASL mechanism SCRAM-SHA-512); check the username and"
        " password (SCRAM: that the user has SCRAM-SHA-512 credentials)"
    )
    assert denial.kind == "authentication"


def test_refused_plain_credentials() -> None:
    reason = (
        "sasl_plaintext://127.0.0.1:9092/bootstrap: SASL authentication error: Authentication"
        " failed: Invalid username or password (after 301ms in state AUTH_REQ)"
    )
    denial = denial_of("_AUTHENTICATION", reason, PLAIN)
    assert denial is not None
    assert denial.problem == (
        "the cluster refused the credentials of user 'key' (SASL authentication error:"
        " Authentication failed: Invalid username or password)"
    )
    assert denial.check == "the username and password"


def test_a_mechanism_the_listener_does_not_offer() -> None:
    reason = (
        "sasl_plaintext://127.0.0.1:9092/bootstrap: SASL SCRAM-SHA-256 mechanism handshake"
        " failed: Broker: Unsupported SASL mechanism: broker's supported mechanisms: PLAIN"
        " (after 307ms in state AUTH_HANDSHAKE)"
    )
    connection = Connection(servers="127.0.0.1:9092", mechanism="SCRAM-SHA-256")
    denial = denial_of("_AUTHENTICATION", reason, connection)
    assert denial is not None
    assert denial.problem == (
        "the listener at 127.0.0.1:9092 does not offer SASL mechanism SCRAM-SHA-256"
        " (it offers PLAIN)"
    )


def test_a_token_that_could_not_be_obtained_and_one_that_was_refused() -> None:
    failed = denial_of(
        "_AUTHENTICATION",
        'Failed to acquire SASL OAUTHBEARER token: {"error": "invalid_client"}',
        OAUTH,
    )
    assert failed is not None
    assert failed.problem == (
        'no OAUTHBEARER token could be obtained ({"error": "invalid_client"})'
    )
    assert "token provider" in failed.check
    refused = denial_of(
        "_AUTHENTICATION",
        'sasl_ssl://127.0.0.1:9095/bootstrap: SASL authentication error: {"status":'
        '"invalid_token"} (after 303ms in state AUTH_REQ)',
        OAUTH,
    )
    assert refused is not None
    assert refused.problem.startswith("the cluster refused the OAUTHBEARER token")


def test_a_re_authentication_race_is_not_a_refusal() -> None:
    # librdkafka re-authenticating as the broker's session ends reconnects at once.
    reason = (
        "sasl_ssl://127.0.0.1:9095/1: SASL OAUTHBEARER mechanism handshake failed: Broker:"
        " Request not valid in current SASL state: broker's supported mechanisms:  (after"
        " 1ms in state AUTH_HANDSHAKE)"
    )
    assert denial_of("_AUTHENTICATION", reason, OAUTH) is None


def test_an_unverified_broker_certificate_asks_for_a_tls_check() -> None:
    reason = (
        "sasl_ssl://localhost:9093/bootstrap: SSL handshake failed: error:0A000086:SSL"
        " routines::certificate verify failed: broker certificate could not be verified,"
        " verify that ssl.ca.location is correctly configured or root CA certificates are"
        " installed (install ca-certificates package) (after 4ms in state SSL_HANDSHAKE)"
    )
    denial = denial_of("_SSL", reason, SCRAM)
    assert denial is not None
    assert (denial.kind, denial.diagnose) == ("authentication", "verify")


def test_tls_to_a_plaintext_listener() -> None:
    reason = (
        "ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: Disconnected: SSL connection"
        " closed by peer: connecting to a PLAINTEXT broker listener? (after 2ms in state"
        " SSL_HANDSHAKE)"
    )
    denial = denial_of("_TRANSPORT", reason, MTLS)
    assert denial is not None
    assert denial.summary == (
        "authentication failed: this client speaks TLS but the listener at 127.0.0.1:9094"
        " does not; check security_protocol (PLAINTEXT or SASL_PLAINTEXT for this listener),"
        " or the port of the cluster's TLS listener"
    )


@pytest.mark.parametrize(
    ("alert", "certificate", "expected"),
    [
        (
            "ssl/tls alert certificate unknown: SSL alert number 46",
            True,
            "the broker refused this client's TLS certificate (alert: certificate unknown)",
        ),
        (
            "ssl/tls alert bad certificate: SSL alert number 42",
            False,
            "the broker refused the TLS connection (alert: bad certificate): the listener"
            " requires a client certificate (mTLS) and this client has none",
        ),
    ],
)
def test_a_client_certificate_the_broker_refused(
    alert: str, certificate: bool, expected: str
) -> None:
    reason = (
        f"ssl://127.0.0.1:9094/bootstrap: Receive failed: error:0A000416:SSL routines::{alert}"
        " (after 6ms in state APIVERSION_QUERY)"
    )
    connection = Connection(servers="127.0.0.1:9094", tls=True, client_certificate=certificate)
    denial = denial_of("_TRANSPORT", reason, connection)
    assert denial is not None
    assert denial.problem == expected


def test_a_producer_id_refused_is_an_authorization_failure() -> None:
    reason = (
        "Failed to acquire idempotence PID from broker sasl_ssl://127.0.0.1:9093/1: Broker:"
        " Cluster authorization failed"
    )
    denial = denial_of("CLUSTER_AUTHORIZATION_FAILED", reason, SCRAM)
    assert denial is not None
    assert denial.headline == "not authorized"
    assert "IdempotentWrite" in denial.check


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("_ALL_BROKERS_DOWN", "1/1 brokers are down"),
        ("_TRANSPORT", "127.0.0.1:9092/1: Connection refused (after 0ms in state CONNECT)"),
        ("_MSG_TIMED_OUT", "Local: Message timed out"),
    ],
)
def test_what_says_nothing_about_access(code: str, reason: str) -> None:
    assert denial_of(code, reason, SCRAM) is None


@pytest.mark.parametrize(
    ("code", "message", "problem"),
    [
        (
            10,
            "certificate has expired",
            "the certificate of the broker at 127.0.0.1:9093 has expired",
        ),
        (
            62,
            "Hostname mismatch, certificate is not valid for 'localhost'.",
            "the certificate of the broker at localhost:9093 is not valid for the host"
            " 'localhost' (hostname verification)",
        ),
        (
            19,
            "self-signed certificate in certificate chain",
            "the certificate of the broker at 127.0.0.1:9093 is not signed by a CA in the CA"
            " bundle '/etc/ca.pem' (self-signed certificate in certificate chain)",
        ),
    ],
)
def test_what_a_tls_check_found_is_worded_for_what_it_is(
    code: int, message: str, problem: str
) -> None:
    host = "localhost" if code == 62 else "127.0.0.1"
    denial = tls_denial(TlsFinding("verify", host, 9093, code, message), "/etc/ca.pem")
    assert denial.problem == problem


def test_a_plaintext_client_at_a_tls_listener() -> None:
    denial = tls_denial(TlsFinding("speaks_tls", "127.0.0.1", 9093), None)
    assert denial.summary == (
        "authentication failed: the listener at 127.0.0.1:9093 speaks TLS but this client"
        " connects without it; check security_protocol: SSL (or SASL_SSL) for this listener,"
        " e.g. security=TLS() or a SASL variant with its default tls=TLS()"
    )
