"""SASL/PLAIN over a plaintext listener against Apache Kafka: a round trip, refused
credentials, a mechanism the listener does not offer, and no password in any signal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import eventwire
from eventwire.security import SaslPlain, SaslScram, Secret
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
    with module_cluster("SASL_PLAINTEXT") as cluster:
        yield cluster


def config(cluster: KafkaCluster, topic: str, **changes: object) -> eventwire.PublisherConfig:
    settings: dict[str, object] = {**cluster.client_config(), "topic_map": {"orders": topic}}
    settings.update(changes)
    return eventwire.PublisherConfig(**settings)  # type: ignore[arg-type]


def test_10000_events_round_trip_with_plain(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    outcomes = run(publish_async(config(cluster, topic), orders(ROUND_TRIP)))
    assert_round_trip(cluster, topic, outcomes)


def test_the_flat_fields_still_connect(cluster: KafkaCluster) -> None:
    # security_protocol / sasl_* of earlier releases: the short form of security=SaslPlain.
    topic = cluster.unique_topic("orders")
    settings = eventwire.PublisherConfig(
        bootstrap_servers=cluster.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="client",
        sasl_password=cluster.users["client"],
        topic_map={"orders": topic},
    )
    with eventwire.Publisher(settings) as publisher:
        receipt = publisher.publish(orders(1)[0])
    assert [r.header("ce_id") for r in cluster.consume(topic, count=1)] == [
        receipt.event_id.encode()
    ]


def test_a_wrong_password_is_an_authentication_error_at_once(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    security = SaslPlain(username="client", password=Secret("wrong-password"), tls=None)
    refused = refusal(config(cluster, topic, security=security))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        "authentication failed: the cluster refused the credentials of user 'client' (SASL"
        " authentication error: Authentication failed: Invalid username or password); check"
        " the username and password"
    )
    assert refused.seconds < PROMPT
    assert isinstance(refused.next_error, eventwire.AuthenticationError)
    assert not any("unreachable" in reason for reason in refused.health.reasons)


def test_a_mechanism_the_listener_does_not_offer_is_named(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    security = SaslScram(
        username="client", password=Secret("x"), mechanism="SCRAM-SHA-256", tls=None
    )
    refused = refusal(config(cluster, topic, security=security))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        f"authentication failed: the listener at {cluster.bootstrap_servers} does not offer SASL"
        " mechanism SCRAM-SHA-256 (it offers PLAIN); check the SASL mechanism, and that"
        " bootstrap_servers names the listener you meant"
    )
    assert refused.seconds < PROMPT


def test_without_a_breaker_refused_credentials_fail_events_at_once_too(
    cluster: KafkaCluster,
) -> None:
    topic = cluster.unique_topic("orders")
    security = SaslPlain(username="client", password=Secret("wrong-password"), tls=None)
    refused = refusal(config(cluster, topic, security=security, breaker=None))
    for error, seconds in (
        (refused.error, refused.seconds),
        (refused.next_error, refused.next_seconds),
    ):
        assert isinstance(error, eventwire.AuthenticationError)
        assert "authentication failed: the cluster refused the credentials" in str(error)
        assert seconds < PROMPT  # not delivery_timeout (120 s) and retries
    assert refused.health.reasons[0].startswith("authentication failed:")


def test_no_plain_password_shows_in_any_signal_whether_taken_or_refused(
    cluster: KafkaCluster,
) -> None:
    topic = cluster.unique_topic("orders")
    password = cluster.users["client"]
    taken = config(cluster, topic)
    assert isinstance(taken.security, SaslPlain)  # the variant's field, not the flat one
    outcomes = scan_publishing(taken, password)
    assert isinstance(outcomes[0], eventwire.DeliveryReceipt)
    wrong = "Wr0ng-plain-pa55word-31"
    security = SaslPlain(username="client", password=Secret(wrong), tls=None)
    outcomes = scan_publishing(config(cluster, topic, security=security), wrong)
    assert isinstance(outcomes[0], eventwire.AuthenticationError)
