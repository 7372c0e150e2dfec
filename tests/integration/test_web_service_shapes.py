"""Publishers as web services use them: many threads or tasks, startup/shutdown hooks,
cancellation, several publishers per process; consumed back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

import eventwire
from eventwire.testing import capture_logs
from eventwire.testing._noida import NoidaBroker
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


def test_aclose_in_a_later_loop_counts_reports_the_ended_loop_never_ran(topics: Topics) -> None:
    # The reports reach the first loop after its last iteration: closing it drops their
    # callbacks. A close from a later loop settles and counts them all the same.
    publisher = eventwire.AsyncPublisher(topics.config())
    count = 200
    loop = asyncio.new_event_loop()

    async def first() -> None:
        await publisher.publish(order(0))
        tasks = [loop.create_task(publisher.publish(order(n))) for n in range(1, count + 1)]
        await asyncio.sleep(0)  # each task handed its event over
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    loop.run_until_complete(first())
    deadline = time.monotonic() + 30
    while publisher.health().queue_depth:  # sync code has nothing to await
        assert time.monotonic() < deadline
        time.sleep(0.01)
    loop.close()
    report = asyncio.run(publisher.aclose(30))
    assert (report.delivered, report.failed, report.undelivered) == (count + 1, 0, 0)
    assert not report.timed_out
    records = topics.broker.consume(topics.name("orders"), count=count + 1)
    assert len({r.header("ce_id") for r in records}) == len(records) == count + 1


async def test_startup_shutdown_hooks_with_cancelled_and_timed_out_publishes(
    topics: Topics,
) -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    app: dict[str, eventwire.AsyncPublisher] = {}

    async def startup() -> None:
        app["publisher"] = eventwire.AsyncPublisher(topics.config())

    async def shutdown() -> eventwire.CloseReport:
        return await app["publisher"].aclose()

    async def handler(n: int) -> str:
        receipt = await app["publisher"].publish(order(n, key=f"k{n % KEYS}"))
        return receipt.event_id

    async def failing() -> None:
        await app["publisher"].publish(order(10_000))
        raise ValueError("handler failed")

    await startup()
    receipts = await asyncio.gather(*(handler(n) for n in range(100)))
    timed_out = 0
    for n in range(100, 150):
        try:
            await asyncio.wait_for(handler(n), 0.0001)
        except TimeoutError:
            timed_out += 1
    for n in range(150, 200):
        try:
            async with asyncio.timeout(0):
                await handler(n)
        except TimeoutError:
            timed_out += 1
    tasks = [loop.create_task(handler(n)) for n in range(200, 250)]
    await asyncio.sleep(0)  # each task handed its event over and awaits the outcome
    for task in tasks:
        task.cancel()

    async def fan_out() -> None:  # one failing sibling cancels the others
        async with asyncio.TaskGroup() as tg:
            for n in range(250, 300):
                tg.create_task(handler(n))
            tg.create_task(failing())

    with pytest.raises(ExceptionGroup) as group:
        await fan_out()
    assert group.group_contains(ValueError)
    report = await shutdown()
    assert unhandled == []
    assert timed_out > 0
    # Cancelling a caller does not recall its event: every one was delivered and counted.
    assert (report.delivered, report.failed, report.undelivered) == (301, 0, 0)
    records = topics.broker.consume(topics.name("orders"), count=301)
    ids = [(r.header("ce_id") or b"").decode() for r in records]
    assert len(set(ids)) == len(ids) == 301
    assert set(receipts) <= set(ids)


async def test_several_publishers_of_one_process_share_topics_and_keys(topics: Topics) -> None:
    # Per-service publishers: three sync ones in threads, one async one on this loop; all
    # write the same keys of the same topic.
    per_publisher = 120

    def events(name: str) -> list[OrderPlaced]:
        return [order(s, key=f"k{s % KEYS}", notes=f"{name}:{s}") for s in range(per_publisher)]

    def sync_service(name: str) -> list[Any]:
        with eventwire.Publisher(topics.config(client_id=name)) as publisher:
            return [publisher.publish(e) for e in events(name)[:20]] + publisher.publish_many(
                events(name)[20:]
            )

    async with eventwire.AsyncPublisher(topics.config(client_id="async")) as publisher:
        threads = [asyncio.to_thread(sync_service, f"sync{n}") for n in range(3)]
        outcomes = await asyncio.gather(*threads, publisher.publish_many(events("async")))
    ids = [o.event_id for batch in outcomes for o in batch]
    assert all(isinstance(o, eventwire.DeliveryReceipt) for batch in outcomes for o in batch)
    assert len(set(ids)) == len(ids) == 4 * per_publisher
    records = topics.broker.consume(topics.name("orders"), count=4 * per_publisher)
    assert sorted((r.header("ce_id") or b"").decode() for r in records) == sorted(ids)
    _assert_thread_order(_by_key(records))  # each publisher's order per key


class _Signalling(list[OrderPlaced]):
    """A list that says when the caller has read ``after`` of its events."""

    def __init__(self, events: list[OrderPlaced], after: int) -> None:
        super().__init__(events)
        self.after = after
        self.reached = threading.Event()

    def __iter__(self) -> Iterator[OrderPlaced]:
        for n, event in enumerate(super().__iter__()):
            if n == self.after:
                self.reached.set()
            yield event


def test_close_from_another_thread_during_a_large_publish_many_counts_exactly(
    topics: Topics,
) -> None:
    template = [order(n, key=f"k{n % 64}") for n in range(1000)]
    events = _Signalling([template[n % 1000] for n in range(200_000)], after=1000)
    publisher = eventwire.Publisher(topics.config(validate=False))
    outcomes: list[Any] = []
    worker = threading.Thread(target=lambda: outcomes.extend(publisher.publish_many(events)))
    worker.start()
    assert events.reached.wait(60)
    report = publisher.close(1.0)
    worker.join(60)
    assert not worker.is_alive()
    ids = [o.event_id for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]
    refused = [o for o in outcomes if isinstance(o, eventwire.PublisherClosedError)]
    # Each event was delivered, or refused (never handed over): the rest stopped at the close.
    assert len(ids) + len(refused) == len(events)
    assert ids
    assert refused
    assert (report.delivered, report.failed, report.undelivered) == (len(ids), 0, 0)
    records = topics.broker.consume(topics.name("orders"))
    assert sorted((r.header("ce_id") or b"").decode() for r in records) == sorted(ids)


async def test_shutdown_hook_closes_while_many_tasks_publish(topics: Topics) -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    config = topics.config(librdkafka_overrides={"queue.buffering.max.messages": 8})
    publisher = eventwire.AsyncPublisher(config)
    ids: list[str] = []
    refused: list[BaseException] = []
    enough = asyncio.Event()

    async def task(number: int) -> None:
        seq = 0
        while True:
            try:
                if seq % 2:
                    events = [
                        order(s, key=f"k{s % KEYS}", notes=f"{number}:{s}")
                        for s in range(seq, seq + 5)
                    ]
                    outcomes = await publisher.publish_many(events)
                else:
                    event = order(seq, key=f"k{seq % KEYS}", notes=f"{number}:{seq}")
                    outcomes = [await publisher.publish(event)]
            except eventwire.PublisherClosedError as exc:
                refused.append(exc)
                return
            seq += 5 if seq % 2 else 1
            ids.extend(o.event_id for o in outcomes if isinstance(o, eventwire.DeliveryReceipt))
            bad = [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)]
            assert all(isinstance(o, eventwire.PublisherClosedError) for o in bad), bad
            if len(ids) > 300:
                enough.set()
            if bad:
                refused.extend(bad)
                return

    tasks = [loop.create_task(task(n)) for n in range(THREADS)]
    await enough.wait()
    report = await publisher.aclose()
    await asyncio.gather(*tasks)
    assert unhandled == []
    assert len(refused) >= THREADS
    assert len(set(ids)) == len(ids)
    assert (report.delivered, report.failed, report.undelivered) == (len(ids), 0, 0)
    records = topics.broker.consume(topics.name("orders"))
    assert sorted((r.header("ce_id") or b"").decode() for r in records) == sorted(ids)
    _assert_thread_order(_by_key(records))


async def test_sync_publisher_inside_a_running_event_loop_delivers(topics: Topics) -> None:
    # A common mistake (a sync publisher in an async handler): it blocks the loop for the
    # round trip, but its reports are settled on its own poll thread, so it cannot deadlock.
    with eventwire.Publisher(topics.config()) as publisher:
        receipt = publisher.publish(order(1))
        outcomes = publisher.publish_many([order(2), order(3)])
        report = publisher.close()
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes)
    assert (report.delivered, report.undelivered) == (3, 0)
    records = topics.broker.consume(topics.name("orders"), count=3)
    assert receipt.event_id.encode() in {r.header("ce_id") for r in records}


async def test_a_cancelled_callers_failed_event_is_logged_and_counted() -> None:
    # Nobody awaits the outcome any more: the failure still shows in the log and the report,
    # and no "exception was never retrieved" reaches the loop.
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    with NoidaBroker(partitions=3) as broker:  # refuses a record over its limit
        broker.create_topic("orders")
        config = eventwire.PublisherConfig(
            bootstrap_servers=broker.bootstrap_servers,
            librdkafka_overrides={"message.max.bytes": 20_000_000},
        )
        with capture_logs() as logs:
            async with eventwire.AsyncPublisher(config) as publisher:
                large = publisher.publish(order(1, notes="x" * 3_000_000))
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(large, 0.001)
                receipt = await publisher.publish(order(2))
            report = await publisher.aclose()
    assert unhandled == []
    assert (report.delivered, report.failed) == (1, 1)
    [failed] = [e for e in logs if e["event"] == "eventwire.publish_failed"]
    assert failed["code"] == "MSG_SIZE_TOO_LARGE"
    assert failed["event_id"] != receipt.event_id


async def test_threads_hand_their_publishes_to_the_publishers_loop(topics: Topics) -> None:
    # docs/operations.md's way for a thread (a sync view in an async app): run_coroutine_threadsafe.
    loop = asyncio.get_running_loop()

    def sync_view(thread: int) -> list[str]:
        futures = [
            asyncio.run_coroutine_threadsafe(
                publisher.publish(order(s, key=f"k{s % KEYS}", notes=f"{thread}:{s}")), loop
            )
            for s in range(25)
        ]
        return [f.result(60).event_id for f in futures]

    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        results = await asyncio.gather(*(asyncio.to_thread(sync_view, t) for t in range(8)))
    ids = [i for result in results for i in result]
    assert len(set(ids)) == len(ids) == 200
    records = topics.broker.consume(topics.name("orders"), count=200)
    assert sorted((r.header("ce_id") or b"").decode() for r in records) == sorted(ids)
    _assert_thread_order(_by_key(records))
