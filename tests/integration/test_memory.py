"""What a publisher that runs for weeks must not keep: the events of a finished call, threads,
file descriptors. Counted with the cyclic garbage collector off, so that only references count
(a cycle is freed at the next full collection, which in a busy service may be minutes away)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventwire
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
