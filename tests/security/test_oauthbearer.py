"""SASL/OAUTHBEARER against Apache Kafka (its unsecured JWS validator over TLS): round trips
with a token provider (sync and async) and with librdkafka's OIDC client credentials against a
local token endpoint; short-lived tokens refreshed through a long publish; refusals."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

import eventwire
from eventwire.security import OAuthBearer, OAuthToken, OidcClientCredentials
from eventwire.testing import KafkaCluster, capture_logs
from tests.events import order
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
#: A token that lives a few seconds: librdkafka asks for the next at 80 % of it (checked once
#: a second), and the broker ends a session when its token expires.
SHORT_LIFETIME = 6.0
LONG_PUBLISH = 30.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    with module_cluster("SASL_OAUTHBEARER") as cluster:
        yield cluster


def config(cluster: KafkaCluster, topic: str, **changes: object) -> eventwire.PublisherConfig:
    settings: dict[str, object] = {**cluster.client_config(), "topic_map": {"orders": topic}}
    settings.update(changes)
    return eventwire.PublisherConfig(**settings)  # type: ignore[arg-type]


def oauth(cluster: KafkaCluster, provider: object) -> OAuthBearer:
    tls = cluster.client_config()["security"].tls
    return OAuthBearer(token_provider=provider, tls=tls)  # type: ignore[arg-type]


def test_10000_events_round_trip_with_a_token_provider(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    outcomes = run(publish_async(config(cluster, topic), orders(ROUND_TRIP)))
    assert_round_trip(cluster, topic, outcomes)


def test_10000_events_round_trip_with_an_async_provider_from_the_async_publisher(
    cluster: KafkaCluster,
) -> None:
    # librdkafka asks for the first token while the publisher is being built, on the event
    # loop's own thread: run there, the provider would wait for itself (10 s, then fail).
    issue = cluster.token_provider()
    threads: list[str] = []

    async def provider() -> OAuthToken:
        threads.append(threading.current_thread().name)
        await asyncio.sleep(0.01)  # an HTTP request to the identity provider
        token: OAuthToken = issue()
        return token

    topic = cluster.unique_topic("orders")

    async def publish() -> list[object]:
        started = time.monotonic()
        async with eventwire.AsyncPublisher(
            config(cluster, topic, security=oauth(cluster, provider))
        ) as publisher:
            assert time.monotonic() - started < 5.0
            return await publisher.publish_many(orders(ROUND_TRIP))

    outcomes = run(publish())
    assert_round_trip(cluster, topic, outcomes)
    assert threads
    assert set(threads) == {"eventwire-token-provider"}


def test_10000_events_round_trip_with_oidc_client_credentials(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    before = cluster.tokens_issued
    security = cluster.client_config(oauth="oidc")["security"]
    assert isinstance(security, OidcClientCredentials)
    with eventwire.Publisher(config(cluster, topic, security=security)) as publisher:
        outcomes = publisher.publish_many(orders(ROUND_TRIP))
    assert_round_trip(cluster, topic, outcomes)
    assert cluster.tokens_issued > before  # librdkafka fetched it from the endpoint


def test_a_short_lived_token_is_refreshed_through_a_long_publish_without_a_failure(
    cluster: KafkaCluster,
) -> None:
    issue = cluster.token_provider(lifetime=SHORT_LIFETIME)
    tokens: list[OAuthToken] = []

    def provider() -> OAuthToken:
        token: OAuthToken = issue()
        tokens.append(token)
        return token

    topic = cluster.unique_topic("orders")
    settings = config(cluster, topic, security=oauth(cluster, provider))

    async def publish_for(seconds: float) -> list[object]:
        outcomes: list[object] = []
        async with eventwire.AsyncPublisher(settings) as publisher:
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                batch = [order(n + i, key=f"customer-{(n + i) % 20}") for i in range(100)]
                outcomes.extend(await publisher.publish_many(batch))
                n += len(batch)
                await asyncio.sleep(0.05)
        return outcomes

    with capture_logs() as logs:
        outcomes = run(publish_for(LONG_PUBLISH))
    assert_round_trip(cluster, topic, outcomes)
    # Every token lived 6 s and the publish 30 s: it went through several refreshes.
    assert len(tokens) >= 5
    assert tokens[-1].expires_at - tokens[0].expires_at >= LONG_PUBLISH - SHORT_LIFETIME
    events = {entry["event"] for entry in logs}
    assert "eventwire.token_failed" not in events
    assert "eventwire.access_denied" not in events
    assert "eventwire.publish_failed" not in events
    refreshed = [entry for entry in logs if entry["event"] == "eventwire.token_refreshed"]
    assert len(refreshed) == len(tokens)


def test_a_wrong_client_secret_is_an_authentication_error(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    security = cluster.client_config(oauth="oidc", password="not-the-secret")["security"]
    refused = refusal(config(cluster, topic, security=security))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        'authentication failed: no OAUTHBEARER token could be obtained ({"error":'
        ' "invalid_client"}); check the token provider, or the OIDC token endpoint, client id'
        " and secret"
    )
    assert refused.seconds < PROMPT
    assert "not-the-secret" not in str(error) + repr(refused.health)


def test_a_provider_that_fails_at_start_is_refused_when_the_publisher_is_built(
    cluster: KafkaCluster,
) -> None:
    def provider() -> OAuthToken:
        raise RuntimeError("identity provider unavailable")

    topic = cluster.unique_topic("orders")
    with pytest.raises(eventwire.ConfigError) as raised:
        eventwire.Publisher(config(cluster, topic, security=oauth(cluster, provider)))
    assert str(raised.value).startswith(
        "the OAUTHBEARER token provider gave no token while the publisher was built"
        " (RuntimeError: identity provider unavailable); check the provider: "
    )


def test_no_token_or_client_secret_shows_in_any_signal(cluster: KafkaCluster) -> None:
    topic = cluster.unique_topic("orders")
    issue = cluster.token_provider()
    values: list[str] = []

    def provider() -> OAuthToken:
        token: OAuthToken = issue()
        values.append(token.value.reveal())
        return token

    outcomes = scan_publishing(
        config(cluster, topic, security=oauth(cluster, provider)), found_later=values
    )
    assert isinstance(outcomes[0], eventwire.DeliveryReceipt)
    assert values  # the scan looked for the tokens used
    oidc = cluster.client_config(oauth="oidc")["security"]
    outcomes = scan_publishing(config(cluster, topic, security=oidc), cluster.users["client"])
    assert isinstance(outcomes[0], eventwire.DeliveryReceipt)
    wrong = "Wr0ng-client-secret-77"
    refused = cluster.client_config(oauth="oidc", password=wrong)["security"]
    outcomes = scan_publishing(config(cluster, topic, security=refused), wrong)
    assert isinstance(outcomes[0], eventwire.AuthenticationError)
