"""Order under backpressure: callers waiting for room in a full local queue are served first
come, first served, so a newer event never overtakes an older waiting one of its key; a
``publish_many`` event that found no room is not overtaken by the later events of its key in
the same call either. Everything is consumed back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

import eventwire
from eventwire.testing import ProxiedBroker
from tests.events import OrderPlaced, order
from tests.integration.conftest import Topics

TINY_QUEUE = {"queue.buffering.max.messages": 5}
PACE = 0.0005


@pytest.fixture
def proxied() -> Iterator[ProxiedBroker]:
    with ProxiedBroker(partitions=3) as broker:
        broker.create_topic("orders")
        yield broker


def _notes(records: list[Any], key: bytes) -> list[str | None]:
    """The ``notes`` of the records of ``key``, in log order (one key: one partition)."""
    return [msgspec.json.decode(r.value, type=OrderPlaced).notes for r in records if r.key == key]


def _config(broker: ProxiedBroker, **changes: object) -> eventwire.PublisherConfig:
    settings: dict[str, object] = {
        "bootstrap_servers": broker.bootstrap_servers,
        "delivery_timeout": 60.0,
        "librdkafka_overrides": TINY_QUEUE,
        "breaker": None,
    }
    settings.update(changes)
    return eventwire.PublisherConfig(**settings)  # type: ignore[arg-type]


async def test_concurrent_publishes_keep_call_order_under_backpressure(topics: Topics) -> None:
    """New callers keep arriving while older ones wait for room: none may overtake."""
    count = 600
    config = topics.config(librdkafka_overrides=TINY_QUEUE)
    async with eventwire.AsyncPublisher(config) as publisher:
        tasks = []
        for n in range(count):
            tasks.append(asyncio.create_task(publisher.publish(order(n, key="k"))))
            # Pacing, not synchronisation: new callers keep arriving while reports free room
            # (the guarantee holds whatever the timing).
            await asyncio.sleep(PACE)
        receipts = await asyncio.gather(*tasks)
    assert len(receipts) == count
    records = topics.broker.consume(topics.name("orders"), count=count)
    assert _notes(records, b"k") == [f"order number {n}" for n in range(count)]


async def test_publish_many_waiting_for_room_is_not_overtaken(proxied: ProxiedBroker) -> None:
    """A batch that hits a full queue keeps its place: publishes of its key started while it
    is under way are produced after the whole batch."""
    size = 300
    async with eventwire.AsyncPublisher(_config(proxied)) as publisher:
        await publisher.publish(order(0, key="warm-up"))  # connected: the pause holds acks
        proxied.proxy.pause()
        batch = asyncio.create_task(
            publisher.publish_many([order(n, key="k") for n in range(1, size + 1)])
        )
        await asyncio.sleep(0)  # the batch produced 5 events and waits for room
        proxied.proxy.resume()
        singles = []
        while not batch.done():  # callers keep arriving while the batch goes on (pacing)
            n = size + 1 + len(singles)
            singles.append(asyncio.create_task(publisher.publish(order(n, key="k"))))
            await asyncio.sleep(PACE)
        outcomes = await batch
        receipts = await asyncio.gather(*singles)
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes)
    total = size + len(receipts)
    records = proxied.consume("orders", count=total + 1)
    assert _notes(records, b"k") == [f"order number {n}" for n in range(1, total + 1)]


def test_sync_callers_waiting_for_room_are_served_in_order(proxied: ProxiedBroker) -> None:
    """One thread's publish_many waits for room; another thread's publishes, started after
    it waits, come after the whole batch."""
    publisher = eventwire.Publisher(_config(proxied))
    line = publisher._line  # test-only: to start the second thread once the first waits
    try:
        publisher.publish(order(0, key="warm-up"))
        proxied.proxy.pause()
        outcomes: list[object] = []
        first = threading.Thread(
            target=lambda: outcomes.extend(
                publisher.publish_many([order(n, key="k") for n in range(1, 31)])
            )
        )
        first.start()
        _wait_until(lambda: len(line.waiting) == 1)
        later: list[object] = []
        second = threading.Thread(
            target=lambda: later.extend(publisher.publish(order(n, key="k")) for n in (31, 32))
        )
        second.start()
        _wait_until(lambda: len(line.waiting) == 2)
        proxied.proxy.resume()
        first.join(30)
        second.join(30)
    finally:
        publisher.close()
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes)
    assert len(later) == 2
    records = proxied.consume("orders", count=33)
    assert _notes(records, b"k") == [f"order number {n}" for n in range(1, 33)]


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


async def test_publish_many_fails_the_later_events_of_a_key_that_found_no_room(
    proxied: ProxiedBroker,
) -> None:
    """The first event of key ``a`` waits past queue_full_timeout; room comes back while the
    call goes on. The later ``a`` events must not be produced (they would skip it in the
    stream): they fail at once with QueueFullError naming the earlier event; key ``b`` after
    them is unaffected."""
    config = _config(proxied, queue_full_timeout=1.0)
    fill = [order(n, key=f"fill-{n}") for n in range(5)]
    keyed_a = [order(n, key="a") for n in range(5, 8)]
    keyed_b = [order(8, key="b")]
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(100, key="warm-up"))
        proxied.proxy.pause()
        call = asyncio.create_task(publisher.publish_many([*fill, *keyed_a, *keyed_b]))
        await asyncio.sleep(0)  # 5 in the queue, the first "a" waits for room
        await asyncio.sleep(1.5)  # past its timeout (1 s): then room comes back
        proxied.proxy.resume()
        outcomes = await call
    _assert_a_events_failed_in_order(outcomes, proxied)


def test_sync_publish_many_fails_the_later_events_of_a_key_that_found_no_room(
    proxied: ProxiedBroker,
) -> None:
    """The sync twin of the test above."""
    publisher = eventwire.Publisher(_config(proxied, queue_full_timeout=1.0))
    line = publisher._line  # test-only: to know when the first "a" event waits
    events = [
        *(order(n, key=f"fill-{n}") for n in range(5)),
        *(order(n, key="a") for n in range(5, 8)),
        order(8, key="b"),
    ]
    outcomes: list[object] = []
    try:
        publisher.publish(order(100, key="warm-up"))
        proxied.proxy.pause()
        worker = threading.Thread(target=lambda: outcomes.extend(publisher.publish_many(events)))
        worker.start()
        _wait_until(lambda: len(line.waiting) == 1)
        time.sleep(1.5)  # past the first "a" event's timeout (1 s): then room comes back
        proxied.proxy.resume()
        worker.join(30)
    finally:
        publisher.close()
    _assert_a_events_failed_in_order(outcomes, proxied)


def _assert_a_events_failed_in_order(outcomes: list[Any], broker: ProxiedBroker) -> None:
    """5 fillers delivered, the first "a" event QueueFullError, the later "a" events failed
    because of it (none in the topic), the "b" event delivered."""
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes[:5])
    first, *later = outcomes[5:8]
    assert isinstance(first, eventwire.QueueFullError)
    for outcome in later:
        assert isinstance(outcome, eventwire.QueueFullError)
        assert "would have overtaken it" in str(outcome)
        assert outcome.__cause__ is first
    assert isinstance(outcomes[8], eventwire.DeliveryReceipt)
    records = broker.consume("orders", count=7)
    assert _notes(records, b"a") == []
    assert _notes(records, b"b") == ["order number 8"]
