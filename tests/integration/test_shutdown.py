"""GracefulShutdown in this process: a signal stops intake and closes the publisher within the
deadline; without a spool the report names exactly the events that were not delivered."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

import eventwire
from eventwire.testing import ProxiedBroker
from tests.events import order
from tests.integration.conftest import Topics

pytestmark = pytest.mark.timeout(60)


def _own_handler(signum: int, frame: object) -> None:
    raise AssertionError("not called in these tests")


async def test_async_signal_stops_intake_and_closes(topics: Topics) -> None:
    previous = signal.signal(signal.SIGTERM, _own_handler)
    sigint = signal.getsignal(signal.SIGINT)  # the event loop runner's own handler
    publisher = eventwire.AsyncPublisher(topics.config())
    async with publisher, eventwire.GracefulShutdown(publisher, deadline=5.0) as shutdown:
        receipts = [await publisher.publish(order(n)) for n in range(20)]
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(shutdown.wait(), 5)
        assert shutdown.requested
        assert shutdown.signal == signal.SIGINT
        with pytest.raises(eventwire.PublisherClosedError):
            await publisher.publish(order(99))
    assert shutdown.report is not None
    assert (shutdown.report.delivered, shutdown.report.undelivered) == (20, 0)
    assert signal.getsignal(signal.SIGINT) == sigint  # restored
    assert signal.signal(signal.SIGTERM, previous) is _own_handler  # restored, not reset
    records = topics.broker.consume(topics.name("orders"), count=20)
    assert {r.header("ce_id") for r in records} == {r.event_id.encode() for r in receipts}


def test_sync_signal_only_sets_a_flag_then_closes(topics: Topics) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    publisher = eventwire.Publisher(topics.config())
    with publisher, eventwire.GracefulShutdown(publisher, deadline=5.0) as shutdown:
        publisher.publish_many([order(n) for n in range(20)])
        os.kill(os.getpid(), signal.SIGTERM)
        assert shutdown.wait_sync(5)
        with pytest.raises(eventwire.PublisherClosedError):
            publisher.publish(order(99))
    assert shutdown.report is not None
    assert shutdown.report.delivered == 20
    assert signal.getsignal(signal.SIGTERM) is previous
    assert len(topics.broker.consume(topics.name("orders"), count=20)) == 20


async def test_without_spool_the_report_names_every_undelivered_event(
    proxied: ProxiedBroker,
) -> None:
    topic = proxied.unique_topic()
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        topic_map={"orders": topic},
        breaker=None,
        delivery_timeout=30.0,
    )
    publisher = eventwire.AsyncPublisher(config)
    deadline = 2.0
    async with publisher, eventwire.GracefulShutdown(publisher, deadline=deadline) as shutdown:
        await publisher.publish(order(0))
        proxied.proxy.cut()
        calls = [asyncio.ensure_future(publisher.publish(order(n))) for n in range(1, 31)]
        await asyncio.sleep(0)  # let every call hand its event to librdkafka
        os.kill(os.getpid(), signal.SIGTERM)
        await shutdown.wait()
        signalled = time.monotonic()
    assert time.monotonic() - signalled < deadline + 1.0
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failed = {o.event_id for o in outcomes if isinstance(o, eventwire.PublishError)}
    report = shutdown.report
    assert report is not None
    assert len(failed) == 30
    assert set(report.undelivered_event_ids) == failed
    assert report.spooled == 0


def _unreachable_config(proxied: ProxiedBroker) -> eventwire.PublisherConfig:
    """Events handed to librdkafka are retried for minutes: delivery_timeout 30 s, 5 attempts."""
    return eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        topic_map={"orders": proxied.unique_topic()},
        breaker=None,
        delivery_timeout=30.0,
    )


async def test_async_caller_blocked_in_publish_gets_its_outcome_by_the_deadline(
    proxied: ProxiedBroker,
) -> None:
    # The usual service loop awaits each publish: the close must start at the signal, or the
    # loop would only end after the event's retries (minutes), long past the deadline.
    publisher = eventwire.AsyncPublisher(_unreachable_config(proxied))
    deadline = 2.0
    async with publisher, eventwire.GracefulShutdown(publisher, deadline=deadline) as shutdown:
        await publisher.publish(order(0))
        proxied.proxy.cut()
        call = asyncio.ensure_future(publisher.publish(order(1)))
        await asyncio.sleep(0)  # let the call hand its event to librdkafka
        os.kill(os.getpid(), signal.SIGTERM)
        await shutdown.wait()
        signalled = time.monotonic()
        with pytest.raises(eventwire.PublishError) as failed:
            await call
        assert time.monotonic() - signalled < deadline + 1.0
    assert shutdown.report is not None
    assert shutdown.report.undelivered_event_ids == (failed.value.event_id,)


def test_sync_caller_blocked_in_publish_gets_its_outcome_by_the_deadline(
    proxied: ProxiedBroker,
) -> None:
    publisher = eventwire.Publisher(_unreachable_config(proxied))
    deadline = 2.0

    def signal_once_waiting() -> None:
        while publisher.outstanding < 1:  # the main thread is in publish() from here on
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGTERM)

    with publisher, eventwire.GracefulShutdown(publisher, deadline=deadline) as shutdown:
        publisher.publish(order(0))
        proxied.proxy.cut()
        sender = threading.Thread(target=signal_once_waiting)
        sender.start()
        with pytest.raises(eventwire.PublishError) as failed:
            publisher.publish(order(1))
        sender.join()
        assert shutdown.requested
        assert shutdown._requested_at is not None
        assert time.monotonic() - shutdown._requested_at < deadline + 1.0
    assert shutdown.report is not None
    assert shutdown.report.undelivered_event_ids == (failed.value.event_id,)
