"""How long a caller waits while the cluster is gone, and that every event settled is counted.

Issue 23, items 2 and 3: a publish to a stopped broker took ~4 minutes (the breaker had
opened, yet a retry was sent into it and ran a whole further ``delivery_timeout``); an event
refused as too large was missing from ``health().failed`` and the ``CloseReport``.
"""

from __future__ import annotations

import time

import pytest

import eventwire
from eventwire.testing import FakePublisher, ProxiedBroker, capture_logs
from tests.events import order

#: Short enough for a test, long enough for the breaker's probe to confirm the outage first.
DELIVERY_TIMEOUT = 2.0


def _config(proxied: ProxiedBroker, **changes: object) -> eventwire.PublisherConfig:
    fields: dict[str, object] = {
        "bootstrap_servers": proxied.bootstrap_servers,
        "delivery_timeout": DELIVERY_TIMEOUT,
        # Attempts and deadline that would allow several re-sends, each a further timeout.
        "retry": eventwire.RetryPolicy(attempts=5, deadline=30.0, base=0.05, cap=0.1),
        "breaker": eventwire.BreakerPolicy(cooldown=30.0, probe_timeout=0.5),
    }
    fields.update(changes)
    return eventwire.PublisherConfig(**fields)  # type: ignore[arg-type]


def test_a_retry_is_never_sent_into_an_open_breaker(proxied: ProxiedBroker) -> None:
    proxied.create_topic("orders", 3)
    with eventwire.Publisher(_config(proxied)) as publisher:
        publisher.publish(order(0))
        proxied.proxy.cut()  # the broker is gone: the breaker's probe confirms it
        with capture_logs() as logs, pytest.raises(eventwire.AmbiguousPublishError) as caught:
            publisher.publish(order(1))
        assert publisher.breaker_state == "open"
        health = publisher.health()
        proxied.proxy.restore()
    error = caught.value
    # One attempt: it timed out with the breaker open, and no re-send followed it.
    assert error.attempts == 1
    assert error.code == "_MSG_TIMED_OUT"
    assert "not retried: the circuit breaker is open" in str(error)
    assert [log for log in logs if log["event"] == "eventwire.retry_scheduled"] == []
    assert health.failed == 1


def test_the_wait_stays_within_the_documented_bound(proxied: ProxiedBroker) -> None:
    """docs/failures.md: a call returns within queue_full_timeout + delivery_timeout +
    retry.deadline + delivery_timeout (plus a poll interval). Without a breaker every re-send
    is tried: ten attempts of 2 s each would take 20 s; the deadline stops them at three."""
    proxied.create_topic("orders", 3)
    retry = eventwire.RetryPolicy(attempts=10, deadline=3.0, base=0.05, cap=0.1)
    config = _config(proxied, retry=retry, breaker=None, queue_full_timeout=0.5)
    with eventwire.Publisher(config) as publisher:
        publisher.publish(order(0))
        proxied.proxy.cut()
        started = time.monotonic()
        with pytest.raises(eventwire.AmbiguousPublishError) as caught:
            publisher.publish(order(1))
        waited = time.monotonic() - started
        proxied.proxy.restore()
    bound = config.queue_full_timeout + DELIVERY_TIMEOUT + retry.deadline + DELIVERY_TIMEOUT
    # Each attempt times out after delivery_timeout; the last starts before the deadline.
    assert caught.value.attempts == 3, caught.value
    assert waited >= 3 * DELIVERY_TIMEOUT
    assert waited <= bound + 1.0  # a poll interval, and room for a loaded machine


async def test_a_call_timeout_bounds_the_wait_and_the_event_goes_on(
    proxied: ProxiedBroker,
) -> None:
    proxied.create_topic("orders", 3)
    config = _config(proxied, delivery_timeout=30.0, breaker=None)
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(0))
        proxied.proxy.pause()  # held, not lost: delivered once it resumes
        with pytest.raises(eventwire.AmbiguousPublishError) as caught:
            await publisher.publish(order(1), timeout=0.3)
        assert caught.value.code == "CALL_TIMED_OUT"
        assert "may yet be delivered" in str(caught.value)
        assert publisher.outstanding == 1  # it goes on
        proxied.proxy.resume()
        report = await publisher.aclose()
    assert (report.delivered, report.failed) == (2, 0)
    ids = [r.header("ce_id") for r in proxied.consume("orders", count=2)]
    assert caught.value.event_id.encode() in ids


def test_a_sync_call_timeout_bounds_the_wait(proxied: ProxiedBroker) -> None:
    proxied.create_topic("orders", 3)
    with eventwire.Publisher(_config(proxied, delivery_timeout=30.0, breaker=None)) as publisher:
        publisher.publish(order(0))
        proxied.proxy.pause()
        with pytest.raises(eventwire.AmbiguousPublishError, match=r"gave up waiting after 0\.3 s"):
            publisher.publish(order(1), timeout=0.3)
        proxied.proxy.resume()
    assert len(proxied.consume("orders", count=2)) == 2


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), True, "1"])
def test_a_call_timeout_must_be_seconds(timeout: object) -> None:
    with FakePublisher() as fake, pytest.raises(ValueError, match="timeout must be None or"):
        fake.publish(order(1), timeout=timeout)  # type: ignore[arg-type]


def test_low_latency_has_bounds_fit_for_a_request_path() -> None:
    config = eventwire.PublisherConfig(bootstrap_servers="x:1", preset="low_latency")
    assert (config.delivery_timeout, config.queue_full_timeout) == (5.0, 0.5)
    assert config.retry == eventwire.RetryPolicy.never()
    # What was set stays set; what the preset gave follows a change of preset.
    kept = eventwire.PublisherConfig(
        bootstrap_servers="x:1", preset="low_latency", delivery_timeout=9.0
    )
    durable = kept.with_overrides(preset="durable")
    assert (durable.delivery_timeout, durable.queue_full_timeout) == (9.0, 30.0)
    assert durable.retry == eventwire.RetryPolicy()


# -- every event settled is counted ----------------------------------------------------------


def _too_large() -> object:
    return order(1, notes="x" * 1_200_000)  # over librdkafka's message.max.bytes (1 MB)


def test_an_event_refused_as_too_large_counts_as_failed_sync(proxied: ProxiedBroker) -> None:
    proxied.create_topic("orders", 3)
    with eventwire.Publisher(_config(proxied)) as publisher:
        publisher.publish(order(0))
        with pytest.raises(eventwire.PermanentPublishError, match=r"message\.max\.bytes"):
            publisher.publish(_too_large())
        health = publisher.health()
        report = publisher.close()
    assert (health.delivered, health.failed) == (1, 1)
    assert (report.delivered, report.failed) == (1, 1)


async def test_every_refused_event_of_publish_many_counts_as_failed(
    proxied: ProxiedBroker,
) -> None:
    proxied.create_topic("orders", 3)
    async with eventwire.AsyncPublisher(_config(proxied)) as publisher:
        outcomes = await publisher.publish_many([order(0), _too_large(), order(2), _too_large()])
        health = publisher.health()
        report = await publisher.aclose()
    assert [type(o).__name__ for o in outcomes] == [
        "DeliveryReceipt",
        "PermanentPublishError",
        "DeliveryReceipt",
        "PermanentPublishError",
    ]
    assert (health.delivered, health.failed) == (2, 2)
    assert (report.delivered, report.failed) == (2, 2)


def test_an_event_that_found_no_room_counts_as_failed() -> None:
    config = eventwire.PublisherConfig(
        bootstrap_servers=eventwire.testing.FAKE_BOOTSTRAP,
        queue_full_timeout=0.2,
        librdkafka_overrides={"queue.buffering.max.messages": 1},
    )
    with FakePublisher(config) as fake:
        fake.delay_deliveries(1.0)
        outcomes = fake.publish_many([order(0), order(1)])
        assert [type(o).__name__ for o in outcomes] == ["DeliveryReceipt", "QueueFullError"]
        assert (fake.health().delivered, fake.health().failed) == (1, 1)
