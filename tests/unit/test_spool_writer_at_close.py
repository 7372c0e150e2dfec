"""Regression (qa5b): SIGTERM during a large ``publish_many`` with a spool hung the service.

The close closed the producer while the spool's writer thread was still producing a committed
batch: ``produce()`` raised "Producer has been closed", the writer thread died, and every
submit after it waited for a commit that never came. Seen in 2 of 7 runs of a 200,000-event
``publish_many`` under ``GracefulShutdown``; here the two halves are driven one at a time with
a real (never connected) producer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventwire
import eventwire.codec
from eventwire._core.coordinator import ProducerCore
from eventwire._core.record import InFlight
from eventwire._durable.relay import Relay, StoredSink, Submission
from eventwire._durable.sqlite import SqliteStore
from tests.events import order


@pytest.fixture
def core() -> Iterator[ProducerCore]:
    config = eventwire.PublisherConfig(bootstrap_servers="127.0.0.1:9", breaker=None)
    core = ProducerCore(config)
    yield core
    core.stop_polling(1.0)


def _submissions(count: int) -> list[Submission]:
    codec = eventwire.codec.EventCodec()
    return [(codec.encode(order(n)), None, 0) for n in range(count)]


def _spool(core: ProducerCore, path: Path) -> Relay:
    return Relay(SqliteStore(path), core, max_events=100)


def test_an_entry_produced_after_the_close_closed_the_producer_stays_spooled(
    core: ProducerCore, tmp_path: Path
) -> None:
    spool = _spool(core, tmp_path / "s.db")
    [(encoded, _, _)] = _submissions(1)
    entry = InFlight(encoded, StoredSink(spool, None), durable=True)
    spool.closing = True  # the close's order: closing, then the producer is closed
    core.stop_polling(1.0)
    assert spool._produce(entry) is False  # parked by the writer: it stays in the file
    assert core.counters.outstanding == 0
    spool.stop(1.0)


def test_a_writer_that_fails_unexpectedly_fails_later_submits_instead_of_hanging(
    core: ProducerCore, tmp_path: Path
) -> None:
    spool = _spool(core, tmp_path / "s.db")
    core.stop_polling(1.0)  # the producer is closed, but nobody told the spool it is closing
    outcomes: list[BaseException | None] = []
    done = threading.Event()

    def committed(failure: BaseException | None) -> None:
        outcomes.append(failure)
        done.set()

    spool.start()
    spool.submit(_submissions(3), committed)  # committed, then producing it fails
    assert done.wait(10)
    assert outcomes == [None]
    done.clear()
    try:  # refused at once once the writer failed, or failed by it if submitted before
        spool.submit(_submissions(1), committed)
    except eventwire.SpoolError as exc:
        committed(exc)
    assert done.wait(10), "a submit after the writer died waited for ever"
    assert isinstance(outcomes[1], eventwire.SpoolError)
    spool.stop(5.0)
    assert isinstance(spool.failure, eventwire.PublisherClosedError)
