"""Regression: events of a key published right after a producer replacement must not overtake
the older events of that key the replaced producer still held (issue 3, item 5)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

import eventwire
from eventwire.testing import ProxiedBroker, capture_logs
from tests.faults.conftest import (
    Run,
    Tally,
    Tick,
    assert_all_delivered_in_order,
    publisher_config,
    tally,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

DELIVERY_TIMEOUT = 1.0
EVENTS = 60_000
CHUNK = 10
BLACK_HOLE_AT = 40
PACE = 0.002
AFTER = 100
OUTAGES = 3
KEYS = 4
PHASE = 100


@pytest.fixture
def broker() -> Iterator[ProxiedBroker]:
    with ProxiedBroker(partitions=3) as own:
        own.create_topic("ticks")
        yield own


async def test_events_after_a_recreation_do_not_overtake_the_purged_ones(
    broker: ProxiedBroker, report: Callable[[Tally], None]
) -> None:
    """A black hole outlives ``delivery_timeout``: messages time out, which replaces the
    producer (its queue is purged and re-sent); publishing goes on meanwhile with a few keys,
    so new events of a key are produced while the purged older ones of that key come back."""
    proxy = broker.proxy
    config = publisher_config(
        "spool-off",
        broker.bootstrap_servers,
        delivery_timeout=DELIVERY_TIMEOUT,
        retry=eventwire.RetryPolicy(attempts=10, deadline=60.0, base=0.05, cap=0.5),
        breaker=None,
        librdkafka_overrides={"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 100},
    )

    def recreations(run: Run) -> int:
        return sum(log["event"] == "eventwire.producer_recreated" for log in run.logs)

    # A few keys at a time, new ones every PHASE events: the keys published late in the outage
    # have no message old enough to time out, only purged ones, so no retry hold of their own.
    pad = "x" * 200
    seqs: Counter[str] = Counter()
    events = []
    for n in range(EVENTS):
        stream = f"s{n // PHASE:02d}-{n % KEYS}"
        events.append(Tick(stream=stream, seq=seqs[stream], n=n, pad=pad))
        seqs[stream] += 1
    run = Run(events, outcomes=[None] * len(events))

    async def chunk(start: int) -> None:
        part = events[start : start + CHUNK]
        run.outcomes[start : start + len(part)] = await publisher.publish_many(part)

    async with eventwire.AsyncPublisher(config) as publisher:
        with capture_logs() as logs:
            run.logs = logs
            tasks = []
            outages = 0
            holed_at: int | None = None  # recreations so far when the current black hole began
            since_restore = AFTER - BLACK_HOLE_AT  # the first outage after BLACK_HOLE_AT chunks
            for start in range(0, len(events), CHUNK):
                if holed_at is None and since_restore >= AFTER:
                    if outages == OUTAGES:
                        break
                    proxy.blackhole("both")
                    holed_at, outages = recreations(run), outages + 1
                if holed_at is not None and recreations(run) > holed_at:
                    proxy.restore()
                    holed_at, since_restore = None, 0
                since_restore += 1
                # Each chunk produces in order when its task first runs; the pause only paces
                # the publishing so that it goes on through the outage and the replacement.
                tasks.append(asyncio.create_task(chunk(start)))
                await asyncio.sleep(PACE)
            await asyncio.gather(*tasks)
    assert outages == OUTAGES, "too few events for the outages"
    assert holed_at is None
    run.events = events = events[: len(tasks) * CHUNK]
    del run.outcomes[len(events) :]
    proxy.restore()
    records = broker.consume("ticks", timeout=60)
    counts = tally(run, records)
    report(counts)
    assert counts.recreations > 0
    assert counts.order_violations == 0
    assert_all_delivered_in_order(counts)
