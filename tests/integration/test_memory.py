"""What a publisher that runs for weeks must not keep: the events of a finished call, threads,
file descriptors. Counted with the cyclic garbage collector off, so that only references count
(a cycle is freed at the next full collection, which in a busy service may be minutes away)."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

import eventwire
from eventwire.testing import LocalBroker
from tests.events import order
from tests.integration.conftest import Topics

EVENTS = 2_000


@pytest.fixture
def no_gc() -> Iterator[None]:
    """The cyclic collector off: an object kept only by a reference cycle stays alive."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _batch(big: bool) -> list[object]:
    events: list[object] = [order(n) for n in range(EVENTS)]
    events[10] = order(10, currency="eur")  # refused by validation
    if big:  # refused by librdkafka's size check: a permanent error, then dead-lettered
        events[20] = order(20, notes="x" * 1_200_000)
    return events


def _failures(outcomes: list[eventwire.PublishOutcome]) -> list[weakref.ref[BaseException]]:
    failed = [outcome for outcome in outcomes if isinstance(outcome, eventwire.EventwireError)]
    return [weakref.ref(error) for error in failed]


@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
async def test_a_finished_publish_many_with_failures_leaves_no_cycle(
    topics: Topics, tmp_path: Path, no_gc: None, spool: bool
) -> None:
    # A refused event's error was stored with its traceback, whose frames held the call's
    # events and outcomes: every event of a call with one failure stayed alive until a full
    # collection (found with 10,000-event calls).
    topics.broker.create_topic(topics.name("orders.dlq"), 1)
    config = topics.config(
        dead_letter=eventwire.DeadLetterPolicy(),
        spool_path=tmp_path / "spool.db" if spool else None,
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        outcomes = await publisher.publish_many(_batch(big=not spool))
        refs = _failures(outcomes)
        assert len(refs) == (1 if spool else 2)
        assert sum(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes) == EVENTS - len(refs)
    # After the close: until then the poll thread may still hold its last report batch.
    del outcomes
    assert [ref() for ref in refs] == [None] * len(refs)


@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_a_finished_sync_publish_many_with_failures_leaves_no_cycle(
    topics: Topics, tmp_path: Path, no_gc: None, spool: bool
) -> None:
    topics.broker.create_topic(topics.name("orders.dlq"), 1)
    config = topics.config(
        dead_letter=eventwire.DeadLetterPolicy(),
        spool_path=tmp_path / "spool.db" if spool else None,
    )
    with eventwire.Publisher(config) as publisher:
        outcomes = publisher.publish_many(_batch(big=not spool))
        refs = _failures(outcomes)
        assert len(refs) == (1 if spool else 2)
    del outcomes
    assert [ref() for ref in refs] == [None] * len(refs)


async def test_events_timed_out_with_the_broker_stopped_leave_nothing_behind(
    private_broker: Callable[[], LocalBroker], no_gc: None
) -> None:
    # A failed publish() raised the error from a frame that still held it (in the future, or
    # a local): error -> traceback -> frame -> error, one event kept per failure.
    broker = private_broker()
    broker.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers,
        breaker=None,
        delivery_timeout=1.0,
        retry=eventwire.RetryPolicy(attempts=3),  # the first publish may need its connection
    )
    big = order(0, notes="x" * 1_200_000)  # refused by librdkafka (no dead-letter topic)
    async with eventwire.AsyncPublisher(config) as publisher:
        refs = [_raised(await _failure(publisher.publish(big)))]
        with eventwire.Publisher(config) as sync_publisher:
            refs.append(_raised(_sync_failure(sync_publisher.publish, big)))
            sync_publisher.publish(order(0))
            broker.stop()
            refs.append(_raised(_sync_failure(sync_publisher.publish, order(1))))
        outcomes = await publisher.publish_many([order(n) for n in range(EVENTS)])
        refs += _failures(outcomes)
        assert len(refs) == EVENTS + 3
        refs.append(_raised(await _failure(publisher.publish(order(1)))))
    del outcomes
    assert [ref() for ref in refs if ref() is not None] == []


def _raised(error: BaseException) -> weakref.ref[BaseException]:
    assert isinstance(error, eventwire.PublishError), error
    return weakref.ref(error)


async def _failure(call: Awaitable[object]) -> BaseException:
    try:
        await call
    except eventwire.PublishError as error:
        return error
    raise AssertionError("no error")


def _sync_failure(call: Callable[[object], object], event: object) -> BaseException:
    try:
        call(event)
    except eventwire.PublishError as error:
        return error
    raise AssertionError("no error")


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _own_threads() -> set[str]:
    # Not the loop's default executor: it grows up to its max_workers, then reuses them.
    return {t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")}


def _opened_since(before: set[str]) -> set[str]:
    """What the descriptors opened since ``before`` point at (files, sockets, pipes)."""
    opened = set()
    for fd in _fds() - before:
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor
            opened.add(os.readlink(f"/proc/self/fd/{fd}"))
    return opened


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_publisher_dropped_unclosed_with_a_spool_releases_its_writer_and_file(
    topics: Topics, tmp_path: Path, kind: str
) -> None:
    # Its poll thread stopped, but the spool's writer thread, the SQLite connection and the
    # file's lock stayed for the life of the process (15 dropped: 15 threads, 60 fds), and no
    # publisher of this process could open that spool again.
    config = topics.config(spool_path=tmp_path / "spool.db")
    threads, fds = set(threading.enumerate()), _fds()
    publisher: eventwire.Publisher | eventwire.AsyncPublisher
    if kind == "sync":
        publisher = eventwire.Publisher(config)
        first = publisher.publish(order(1))
    else:
        publisher = eventwire.AsyncPublisher(config)
        first = await publisher.publish(order(1))
    started = [t for t in set(threading.enumerate()) - threads if t.name.startswith("eventwire")]
    assert sorted(t.name.split("-")[1] for t in started) == ["poll", "spool"]
    with pytest.warns(ResourceWarning, match="unclosed"):
        del publisher
    for thread in started:
        thread.join(30.0)
    assert [t.name for t in started if t.is_alive()] == []
    assert _opened_since(fds) == set()
    with eventwire.Publisher(config) as again:  # the file is free
        second = again.publish(order(2))
    records = topics.broker.consume(topics.name("orders"))  # the row was acked: no replay
    assert sorted(r.header("ce_id") for r in records) == sorted(
        [first.event_id.encode(), second.event_id.encode()]
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_publishers_opened_and_closed_leave_no_thread_or_descriptor(
    topics: Topics, tmp_path: Path, kind: str
) -> None:
    # Found nothing wrong (240 publishers: 2 threads and 15 descriptors throughout); kept so
    # that it stays so. The first cycle warms up (the loop's executor, librdkafka's globals).
    async def cycle(n: int) -> None:
        config = topics.config(spool_path=tmp_path / f"spool-{n}.db" if n % 2 else None)
        if kind == "sync":
            with eventwire.Publisher(config) as publisher:
                publisher.publish(order(n))
        else:
            async with eventwire.AsyncPublisher(config) as async_publisher:
                await async_publisher.publish(order(n))

    await cycle(0)
    await cycle(1)
    threads, fds = _own_threads(), _fds()
    for n in range(2, 8):
        await cycle(n)
    assert _own_threads() - threads == set()
    assert _opened_since(fds) == set()
    assert len(topics.broker.consume(topics.name("orders"), count=8)) == 8
