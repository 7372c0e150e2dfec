"""GracefulShutdown in this process: a signal stops intake and closes the publisher within the
deadline; without a spool the report names exactly the events that were not delivered."""

from __future__ import annotations

import asyncio
import os
import signal
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
