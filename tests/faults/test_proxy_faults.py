"""Network faults between an AsyncPublisher and a real broker, through the FaultProxy: Apache
Kafka (the reference) and Tansu.

The broker keeps its state through every fault (the proxy makes the outage, the broker stays up).
The circuit breaker runs with its default policy: a connection reset alone (reported as
``_ALL_BROKERS_DOWN`` with one broker) does not open it, an outage does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import eventwire
from eventwire.testing import ProxiedBroker
from tests.brokers import Proxied, ProxiedKafka
from tests.faults.conftest import (
    EVENTS,
    Run,
    Tally,
    Tick,
    assert_all_delivered_in_order,
    publish_under_faults,
    publisher_config,
    tally,
    ticks,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120 + EVENTS // 500)]

#: Short enough that one outage outlives it; long enough that a loaded CI machine delivers.
DELIVERY_TIMEOUT = 2.0
# librdkafka notices a dead connection within a second, and reconnects at once.
FAST_CLIENT = {
    "socket.timeout.ms": 1000,
    "socket.connection.setup.timeout.ms": 1000,
    "reconnect.backoff.ms": 10,
    "reconnect.backoff.max.ms": 100,
    "retry.backoff.ms": 20,
    "retry.backoff.max.ms": 200,
}


@pytest.fixture(params=["kafka", "tansu"])
def broker(request: pytest.FixtureRequest) -> Iterator[Proxied]:
    with (
        ProxiedKafka(partitions=3)
        if request.param == "kafka"
        else ProxiedBroker(partitions=3) as own
    ):
        own.create_topic("ticks")
        yield own


@pytest.fixture
def config(
    spool_mode: str, broker: Proxied, tmp_path: Path
) -> Callable[..., eventwire.PublisherConfig]:
    def make(**settings: Any) -> eventwire.PublisherConfig:
        return publisher_config(
            spool_mode,
            broker.bootstrap_servers,
            tmp_path,
            librdkafka_overrides=FAST_CLIENT,
            **settings,
        )

    return make


def _read_back(broker: Proxied) -> list[eventwire.testing.ConsumedRecord]:
    broker.proxy.restore()
    # count=None reads every partition to its end: duplicates beyond the count show up too.
    return broker.consume("ticks", timeout=60 + EVENTS / 2000)


async def test_three_outages_one_longer_than_the_delivery_timeout_none_silent(
    broker: Proxied,
    spool_mode: str,
    config: Callable[..., eventwire.PublisherConfig],
    report: Callable[[Tally], None],
) -> None:
    """A cut and a pause shorter than ``delivery_timeout``, then a cut that outlives it and
    the retries. Without a spool every event is read back or was reported to its caller as an
    error; with one every accepted event is read back (0 lost), duplicates only with the same
    ``ce_id``."""
    proxy = broker.proxy
    outage_config = config(
        delivery_timeout=DELIVERY_TIMEOUT,
        retry=eventwire.RetryPolicy(attempts=3, deadline=3.0, base=0.05, cap=0.5),
    )
    long_outage: dict[str, float] = {}

    async def short_cut(run: Run) -> None:
        proxy.cut()
        await asyncio.sleep(DELIVERY_TIMEOUT / 4)  # the outage's length, not a synchronisation
        proxy.restore()

    async def short_pause(run: Run) -> None:
        proxy.pause()
        await asyncio.sleep(DELIVERY_TIMEOUT / 4)
        proxy.restore()

    def delivery_failures(run: Run) -> int:
        # Without a spool the caller is told (publish_failed); with one the event is parked.
        given_up = ("eventwire.publish_failed", "eventwire.spooled_for_retry")
        return sum(log["event"] in given_up for log in run.logs)

    async def long_cut(run: Run) -> None:
        failures_before = delivery_failures(run)
        started = time.monotonic()
        proxy.cut()
        # Held until deliveries failed for good: message timeouts, the producer's replacement
        # and the retries within the policy's deadline have all run out (without a spool the
        # caller is told; with one the event is parked and sent again later).
        await run.until(
            lambda: delivery_failures(run) > failures_before,
            within=60,
            what="a delivery failed after its retries",
        )
        # An event sent just before the cut can fail before a whole delivery_timeout passed
        # (no retry goes into the open breaker): the outage still outlives the timeout.
        await asyncio.sleep(max(0.0, started + DELIVERY_TIMEOUT * 1.25 - time.monotonic()))
        proxy.restore()
        long_outage["seconds"] = time.monotonic() - started

    events = ticks()
    async with eventwire.AsyncPublisher(outage_config) as publisher:
        run = await publish_under_faults(
            publisher, events, [(0.2, short_cut), (0.45, short_pause), (0.7, long_cut)]
        )
        breaker_opened = sum(log["event"] == "eventwire.circuit_opened" for log in run.logs)
    counts = tally(run, _read_back(broker))
    report(counts)
    print(
        f"long outage: {long_outage['seconds']:.2f} s (delivery_timeout {DELIVERY_TIMEOUT} s);"
        f" accepted={run.accepted}; breaker opened {breaker_opened}x"
    )
    assert long_outage["seconds"] > DELIVERY_TIMEOUT
    assert counts.recreations > 0  # the message timeouts replaced the producer
    assert counts.silent == 0
    assert counts.lost == 0
    assert counts.unexplained_duplicates == 0
    assert counts.unexplained_errored_but_delivered == 0
    if spool_mode == "spool-on":
        assert run.accepted == len(events)
        assert counts.errors == 0  # every accepted event was delivered: 0 lost
        assert counts.incomplete_keys == 0  # ... and in order per key
    else:
        assert counts.errors > 0  # the long outage did fail some events
        assert counts.order_violations == 0


async def test_lost_responses_with_idempotence_make_no_duplicates(
    broker: Proxied,
    spool_mode: str,
    config: Callable[..., eventwire.PublisherConfig],
    report: Callable[[Tally], None],
) -> None:
    """Requests reach the broker, its responses are black-holed (twice): librdkafka re-sends
    what the broker already stored, and idempotence keeps every event exactly once.

    Once librdkafka times the requests out the breaker's probe fails too and it opens (the
    broker is unreachable for the client): without a spool callers are then refused with
    ``CircuitOpenError``, with one the events wait in the spool."""
    proxy = broker.proxy
    stored_unacknowledged: list[int] = []
    publisher = eventwire.AsyncPublisher(config(delivery_timeout=60.0))

    async def lose_responses(run: Run) -> None:
        before = proxy.bytes_up
        proxy.blackhole("downstream")
        try:
            # Held until the broker received at least 64 KiB of requests it could not answer
            # (or the breaker opened: nothing more is sent then).
            await run.until(
                lambda: (
                    proxy.bytes_up - before >= 64 * 1024
                    or (publisher is not None and publisher.breaker_state == "open")
                ),
                within=30,
                what="requests reached the broker through the black hole",
            )
            stored_unacknowledged.append(proxy.bytes_up - before)
        finally:
            proxy.restore()  # resets the connections that lost responses

    events = ticks()
    async with publisher:
        run = await publish_under_faults(
            publisher, events, [(0.3, lose_responses), (0.6, lose_responses)]
        )
    counts = tally(run, _read_back(broker))
    report(counts)
    refused = sum(isinstance(o, eventwire.CircuitOpenError) for o in run.outcomes)
    print(
        f"request bytes sent into the black hole: {stored_unacknowledged}; "
        f"refused while the breaker was open: {refused}"
    )
    assert counts.duplicates == 0
    if spool_mode == "spool-on":
        assert_all_delivered_in_order(counts)
    else:
        assert counts.errors == refused  # callers told at once; nothing else failed
        assert counts.lost == 0
        assert counts.silent == 0
        assert counts.order_violations == 0


async def test_latency_and_connection_resets_lose_nothing_and_keep_key_order(
    broker: Proxied,
    config: Callable[..., eventwire.PublisherConfig],
    report: Callable[[Tally], None],
) -> None:
    """20 ms each way for the whole run, every connection reset each second and at 25, 50
    and 75 % of the events (so that a short run is hit too).

    The faults start after one delivered event: an idempotent producer (raw librdkafka too)
    that must obtain its producer id under frequent resets never gets it. Resets every 0.25 s
    with 20 ms latency stall raw librdkafka as well when it produces in bursts (measured:
    1,000 messages undelivered after 30 s), so the period is 1 s."""
    proxy = broker.proxy

    async def degrade(run: Run) -> None:
        proxy.set_latency(0.02)
        proxy.reset_every(1.0)

    async def reset(run: Run) -> None:
        proxy.reset_connections()

    events = ticks()
    resets_before = proxy.resets
    async with eventwire.AsyncPublisher(config(delivery_timeout=60.0)) as publisher:
        await publisher.publish(Tick(stream="warm-up", seq=0, n=-1, pad=""), topic="warm-up")
        run = await publish_under_faults(
            publisher, events, [(0.0, degrade), (0.25, reset), (0.5, reset), (0.75, reset)]
        )
    resets = proxy.resets - resets_before
    counts = tally(run, _read_back(broker))
    report(counts)
    opened = sum(log["event"] == "eventwire.circuit_opened" for log in run.logs)
    print(f"connections reset: {resets}; breaker opened {opened}x")
    assert resets >= 3
    assert opened == 0  # a reset is reported as _ALL_BROKERS_DOWN, the probe finds it up
    assert_all_delivered_in_order(counts)
