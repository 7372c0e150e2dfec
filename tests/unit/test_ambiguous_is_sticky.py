"""An event one of whose attempts failed ambiguously (it may be in Kafka) stays ambiguous:
a later attempt that was certainly not written (e.g. purged from the current producer's
queue at close) says nothing about the earlier one. Before, the outcome reflected only the
last attempt and told the caller "retriable" (not written) for an event that may be in Kafka.

The delivery reports are real ``KafkaError``s fed to the core as its poll thread would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException

import eventwire
import eventwire.codec
from eventwire._core.coordinator import ProducerCore
from eventwire._core.record import InFlight
from tests.events import order
from tests.unit.reports import RecordingSink, idle_core


@pytest.fixture
def core() -> Iterator[ProducerCore]:
    with idle_core(
        retry=eventwire.RetryPolicy(attempts=2, deadline=60.0, base=30.0, cap=30.0), breaker=None
    ) as core:
        yield core


def _record(core: ProducerCore, number: int) -> tuple[InFlight, RecordingSink]:
    sink = RecordingSink()
    record = core.record(eventwire.codec.EventCodec().encode(order(number)), sink)
    record.unsent = False  # it had a partition: a timeout may have been written
    return record, sink


def _deliver(core: ProducerCore, record: InFlight, code: int, *, generation: int) -> None:
    record.generation = generation
    record.err = KafkaError(code)
    core.settle([record])


def test_a_retriable_last_attempt_after_an_ambiguous_one_is_ambiguous(
    core: ProducerCore,
) -> None:
    pending, sink = _record(core, 1)
    core.counters.take()
    # Attempt 1: purged from a replaced producer's queue: it may have been written.
    _deliver(core, pending, KafkaError._PURGE_QUEUE, generation=-1)
    assert sink.outcome is None  # taken over by the retry (due in 30 s: never re-sent here)
    # Attempt 2: purged from the current producer, never sent (the table's class: retriable).
    _deliver(core, pending, KafkaError._PURGE_QUEUE, generation=0)
    error = sink.outcome
    assert isinstance(error, eventwire.AmbiguousPublishError)
    assert error.attempts == 2
    assert error.code == "_PURGE_QUEUE"
    assert str(error).startswith("an earlier attempt may have been written: ")
    assert error.event_id == pending.encoded.event_id
    assert isinstance(error.__cause__, KafkaException)  # the last report


def test_retriable_attempts_alone_stay_retriable(core: ProducerCore) -> None:
    pending, sink = _record(core, 2)
    core.counters.take()
    _deliver(core, pending, KafkaError._PURGE_QUEUE, generation=0)
    assert sink.outcome is None
    _deliver(core, pending, KafkaError._PURGE_QUEUE, generation=0)
    error = sink.outcome
    assert type(error) is eventwire.RetriablePublishError
    assert error.attempts == 2
