"""Publishers as web services use them: many threads or tasks, startup/shutdown hooks,
cancellation, several publishers per process; consumed back."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any

import msgspec
import pytest

import eventwire
from tests.events import OrderPlaced, order
from tests.integration.conftest import Topics

THREADS = 24
ROUNDS = 8
KEYS = 6


def _by_key(records: list[Any]) -> dict[str, list[str]]:
    """notes per key, in the order the topic holds them."""
    found: dict[str, list[str]] = defaultdict(list)
    for record in records:
        value = msgspec.json.decode(record.value, type=OrderPlaced)
        found[value.order_id].append(value.notes or "")
    return found


def _assert_thread_order(found: dict[str, list[str]]) -> None:
    """Within a key, each thread's events appear in the order that thread published them."""
    for notes in found.values():
        last: dict[str, int] = {}
        for note in notes:
            thread, seq = note.split(":")
            assert int(seq) > last.get(thread, -1), notes
            last[thread] = int(seq)


def test_many_threads_publish_and_publish_many_through_a_tiny_queue(topics: Topics) -> None:
    config = topics.config(librdkafka_overrides={"queue.buffering.max.messages": 8})
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        seq = 0
        try:
            for _ in range(ROUNDS):
                receipt = publisher.publish(
                    order(seq, key=f"k{seq % KEYS}", notes=f"{thread}:{seq}")
                )
                got = [receipt.event_id]
                seq += 1
                events = [
                    order(s, key=f"k{s % KEYS}", notes=f"{thread}:{s}") for s in range(seq, seq + 5)
                ]
                seq += 5
                for outcome in publisher.publish_many(events):
                    assert isinstance(outcome, eventwire.DeliveryReceipt), outcome
                    got.append(outcome.event_id)
                with lock:
                    ids.extend(got)
        except BaseException as exc:  # noqa: BLE001 - asserted on by the test
            errors.append(exc)

    with eventwire.Publisher(config) as publisher:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
            assert not thread.is_alive()
        report = publisher.close()
    assert errors == []
    total = THREADS * ROUNDS * 6
    assert len(set(ids)) == len(ids) == total
    assert (report.delivered, report.failed, report.undelivered) == (total, 0, 0)
    records = topics.broker.consume(topics.name("orders"), count=total)
    assert sorted((r.header("ce_id") or b"").decode() for r in records) == sorted(ids)
    _assert_thread_order(_by_key(records))


@pytest.mark.parametrize("queue", [8, 100_000])
def test_close_from_another_thread_while_threads_publish(topics: Topics, queue: int) -> None:
    config = topics.config(librdkafka_overrides={"queue.buffering.max.messages": queue})
    ids: list[str] = []
    refused: list[BaseException] = []
    other: list[BaseException] = []
    lock = threading.Lock()
    started = threading.Event()

    def work(thread: int) -> None:
        seq = 0
        while True:
            try:
                if seq % 2:
                    events = [
                        order(s, key=f"k{s % KEYS}", notes=f"{thread}:{s}")
                        for s in range(seq, seq + 5)
                    ]
                    outcomes = publisher.publish_many(events)
                    got = [o.event_id for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]
                    bad = [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)]
                else:
                    receipt = publisher.publish(
                        order(seq, key=f"k{seq % KEYS}", notes=f"{thread}:{seq}")
                    )
                    got, bad = [receipt.event_id], []
            except eventwire.PublisherClosedError as exc:
                refused.append(exc)
                return
            except BaseException as exc:  # noqa: BLE001 - asserted on by the test
                other.append(exc)
                return
            seq += 5 if seq % 2 else 1
            with lock:
                ids.extend(got)
                if len(ids) > 300:
                    started.set()
            for exc in bad:
                (refused if isinstance(exc, eventwire.PublisherClosedError) else other).append(exc)
            if bad:
                return

    publisher = eventwire.Publisher(config)
    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    assert started.wait(60)
    report = publisher.close(30)
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    assert other == []
    assert len(refused) >= THREADS
    assert len(set(ids)) == len(ids)
    assert (report.delivered, report.failed, report.undelivered) == (len(ids), 0, 0)
    records = topics.broker.consume(topics.name("orders"))
    assert sorted((r.header("ce_id") or b"").decode() for r in records) == sorted(ids)
    _assert_thread_order(_by_key(records))


def test_aclose_in_a_later_event_loop_counts_what_the_ended_loop_left(topics: Topics) -> None:
    # A publisher kept across asyncio.run() calls (a module-level one, a fixture outliving its
    # loop): the first loop ends with events in flight, a later loop closes the publisher.
    publisher = eventwire.AsyncPublisher(topics.config())
    count = 200

    async def first() -> None:
        await publisher.publish(order(0))
        for n in range(1, count + 1):  # handed to Kafka; the tasks are cancelled at loop end
            asyncio.get_running_loop().create_task(publisher.publish(order(n)))
        await asyncio.sleep(0)

    async def second() -> eventwire.CloseReport:
        with pytest.raises(RuntimeError, match="another event loop"):
            await publisher.publish(order(count + 1))
        return await publisher.aclose(30)

    asyncio.run(first())
    report = asyncio.run(second())
    assert (report.delivered, report.failed, report.undelivered) == (count + 1, 0, 0)
    assert not report.timed_out
    records = topics.broker.consume(topics.name("orders"), count=count + 1)
    assert len({r.header("ce_id") for r in records}) == len(records) == count + 1
