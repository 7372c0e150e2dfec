"""Closing while the broker is unreachable and retries are under way: each event gets exactly
one outcome. Regression (found by the latency/reset fault test): ``aclose`` gave up on the
events in retry holds, including a hold's head whose re-send was still in librdkafka, whose
purge report then settled it a second time (``InvalidStateError`` in ``publish_many``'s batch,
``outstanding`` below zero)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import eventwire
from eventwire.testing import ProxiedBroker, capture_logs
from tests.faults.conftest import Run, publisher_config, ticks

#: Without a spool: with one, closing leaves the events in the spool (tests/integration).
pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("spool_mode", ["spool-off"])]


@pytest.fixture
def broker() -> Iterator[ProxiedBroker]:
    with ProxiedBroker(partitions=3) as own:
        own.create_topic("ticks")
        yield own


async def test_close_during_an_outage_settles_each_event_once(
    broker: ProxiedBroker, spool_mode: str
) -> None:
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: loop_errors.append(context))
    config = publisher_config(
        spool_mode,
        broker.bootstrap_servers,
        delivery_timeout=1.0,
        retry=eventwire.RetryPolicy(attempts=50, deadline=60.0, base=0.01, cap=0.02),
        # Without a breaker: with one, no retry is sent while it is open, and this test is
        # about a close while retries are under way.
        breaker=None,
        librdkafka_overrides={"socket.timeout.ms": 500, "reconnect.backoff.max.ms": 100},
    )
    events = ticks(400, keys=4)
    publisher = eventwire.AsyncPublisher(config)
    with capture_logs() as logs:
        await publisher.publish_many(events[:4])  # connected, producer id obtained
        broker.proxy.cut()
        batch = asyncio.create_task(publisher.publish_many(events[4:]))
        run = Run(events)

        def retried() -> bool:
            return sum(log["event"] == "eventwire.retry_scheduled" for log in logs) >= 8  # type: ignore[no-any-return]

        # Retries of every key are under way (a re-send is in flight most of the time).
        await run.until(retried, within=30, what="retries were scheduled")
        report = await publisher.aclose(timeout=0.5)
        outcomes = await batch
    assert report.timed_out
    assert len(outcomes) == len(events) - 4
    assert all(isinstance(o, eventwire.PublishError) for o in outcomes)
    assert publisher.outstanding == 0
    assert report.undelivered == len(outcomes)
    assert loop_errors == []


async def test_close_after_a_cancelled_publish_many_raises_nothing_on_the_loop(
    broker: ProxiedBroker, spool_mode: str
) -> None:
    """Regression (found by the full fault run, whose timeout cancelled a test): the outcomes
    of a cancelled ``publish_many`` arrive later, and set a result on its cancelled future."""
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: loop_errors.append(context))
    config = publisher_config(spool_mode, broker.bootstrap_servers, delivery_timeout=1.0)
    events = ticks(100, keys=4)
    publisher = eventwire.AsyncPublisher(config)
    await publisher.publish_many(events[:4])
    broker.proxy.cut()
    batch = asyncio.create_task(publisher.publish_many(events[4:]))
    await Run(events).until(lambda: publisher.outstanding == 96, within=10, what="accepted")
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    report = await publisher.aclose(timeout=0.2)
    assert report.timed_out
    assert report.undelivered == 96
    # A breaker probe may hold the poll thread past the close's grace (the cut makes one
    # due right now): the last reports are then settled just after aclose returns.
    await Run(events).until(lambda: publisher.outstanding == 0, within=5, what="settled")
    assert loop_errors == []


async def test_events_purged_at_close_after_being_sent_are_ambiguous(
    broker: ProxiedBroker, spool_mode: str
) -> None:
    """Requests reach the broker but their responses are lost: librdkafka times the requests
    out, disconnects, puts the sent messages back in its queue (it cannot reconnect through
    the black hole), and closing purges them (``_PURGE_QUEUE``). The broker has written them,
    so they must not be reported as "retriable" (not written)."""
    proxy = broker.proxy
    config = publisher_config(
        spool_mode,
        broker.bootstrap_servers,
        delivery_timeout=60.0,
        librdkafka_overrides={"socket.timeout.ms": 2000, "reconnect.backoff.max.ms": 100},
    )
    events = ticks(2000, keys=4)
    run = Run(events)
    publisher = eventwire.AsyncPublisher(config)
    with capture_logs() as logs:
        await publisher.publish_many(events[:4])  # connected, producer id obtained
        before = proxy.bytes_up
        proxy.blackhole("downstream")
        batch = asyncio.create_task(publisher.publish_many(events[4:]))
        await run.until(
            lambda: proxy.bytes_up - before >= 16 * 1024,
            within=30,
            what="requests reached the broker through the black hole",
        )
        # socket.timeout.ms later: requests timed out, sent messages back in the queue.
        await run.until(
            lambda: any(log["event"] == "eventwire.kafka_error" for log in logs),
            within=30,
            what="librdkafka timed the requests out",
        )
        report = await publisher.aclose(timeout=0.2)
        outcomes = await batch
    assert report.timed_out
    proxy.restore()
    written = {
        (record.header("ce_id") or b"").decode() for record in broker.consume("ticks", timeout=30)
    }
    by_class = Counter(
        (type(o).__name__, getattr(o, "code", None))
        for o in outcomes
        if not isinstance(o, eventwire.DeliveryReceipt)
    )
    written_but_retriable = [
        o
        for o in outcomes
        if isinstance(o, eventwire.PublishError)
        and o.event_id in written
        and not isinstance(o, eventwire.AmbiguousPublishError)
    ]
    print(f"outcomes: {dict(by_class)}; written: {len(written)}")
    assert len(written) > 4  # the broker stored events sent through the black hole
    assert written_but_retriable == []
    assert by_class[("AmbiguousPublishError", "_PURGE_QUEUE")] > 0
