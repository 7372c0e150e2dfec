"""Mutual TLS against Apache Kafka: a round trip with an encrypted client key, and the TLS
refusals (a client certificate the broker refuses, none at all, an expired broker certificate,
TLS to a plaintext listener) as typed errors that say what to check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import eventwire
from eventwire.security import TLS, Secret
from eventwire.testing import KafkaCluster
from tests.security.conftest import (
    ROUND_TRIP,
    assert_round_trip,
    module_cluster,
    orders,
    publish_async,
    refusal,
    run,
    scan_publishing,
)

PROMPT = 15.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    with module_cluster("SSL") as cluster:
        yield cluster


def config(cluster: KafkaCluster, topic: str, **changes: object) -> eventwire.PublisherConfig:
    settings: dict[str, object] = {**cluster.client_config(), "topic_map": {"orders": topic}}
    settings.update(changes)
    return eventwire.PublisherConfig(**settings)  # type: ignore[arg-type]


def test_10000_events_round_trip_over_mutual_tls_with_an_encrypted_key(
    cluster: KafkaCluster,
) -> None:
    topic = cluster.unique_topic("orders")
    security = cluster.client_config()["security"]
    assert isinstance(security, TLS)
    assert security.key_password is not None  # the user's key is encrypted with its password
    outcomes = run(publish_async(config(cluster, topic), orders(ROUND_TRIP)))
    assert_round_trip(cluster, topic, outcomes)


def test_an_expired_client_certificate_is_refused_by_the_broker(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    certificate, key = cluster.issue_certificate("client", expired=True)
    security = TLS(
        ca_location=str(cluster.ca_location),
        certificate_location=str(certificate),
        key_location=str(key),
    )
    refused = refusal(config(cluster, topic, security=security))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        "authentication failed: the broker refused this client's TLS certificate (alert:"
        " certificate unknown); check that the client certificate is signed by a CA the broker"
        " trusts, has not expired, and matches its key"
    )
    assert refused.seconds < PROMPT
    assert refused.health.reasons[0].startswith("authentication failed: the broker refused")


def test_a_client_without_a_certificate_is_told_the_listener_wants_one(
    cluster: KafkaCluster,
) -> None:
    topic = cluster.unique_topic("orders")
    refused = refusal(config(cluster, topic, security=TLS(ca_location=str(cluster.ca_location))))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        "authentication failed: the broker refused the TLS connection (alert: bad certificate):"
        " the listener requires a client certificate (mTLS) and this client has none; check"
        " TLS.certificate_location and TLS.key_location"
    )
    assert refused.seconds < PROMPT


def test_a_wrong_key_password_is_refused_when_the_publisher_is_built(
    cluster: KafkaCluster,
) -> None:
    security = cluster.client_config()["security"]
    wrong = TLS(
        ca_location=security.ca_location,
        certificate_location=security.certificate_location,
        key_location=security.key_location,
        key_password=Secret("not-the-passphrase"),
    )
    settings = config(cluster, "orders", security=wrong)
    with pytest.raises(eventwire.ConfigError) as raised:
        eventwire.Publisher(settings)
    assert str(raised.value).endswith(
        "ssl.key.location failed: error:0A080009:SSL routines::PEM lib (the client's private"
        " key could not be read: check TLS.key_location and, for an encrypted key,"
        " TLS.key_password (its passphrase))"
    )
    assert "not-the-passphrase" not in str(raised.value)


def test_tls_to_a_plaintext_listener_is_refused(kafka_broker: KafkaCluster) -> None:
    topic = kafka_broker.unique_topic("orders")
    settings = eventwire.PublisherConfig(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        security=TLS(),
        topic_map={"orders": topic},
    )
    refused = refusal(settings)
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        f"authentication failed: this client speaks TLS but the listener at"
        f" {kafka_broker.bootstrap_servers} does not; check security_protocol (PLAINTEXT or"
        " SASL_PLAINTEXT for this listener), or the port of the cluster's TLS listener"
    )
    assert refused.seconds < PROMPT


def test_an_expired_broker_certificate_is_named_as_such() -> None:
    with KafkaCluster(brokers=1, security="SSL", certificate_expired=True) as expired:
        topic = expired.unique_topic("orders")
        refused = refusal(
            eventwire.PublisherConfig(**expired.client_config(), topic_map={"orders": topic})
        )
        servers = expired.bootstrap_servers
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        f"authentication failed: the certificate of the broker at {servers} has expired; check"
        " the broker's certificate (it must be renewed), and this machine's clock"
    )
    assert refused.seconds < PROMPT


def test_no_secret_shows_in_any_signal_with_an_encrypted_client_key(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    passphrase = cluster.users["client"]
    outcomes = scan_publishing(config(cluster, topic), passphrase)
    assert isinstance(outcomes[0], eventwire.DeliveryReceipt)
