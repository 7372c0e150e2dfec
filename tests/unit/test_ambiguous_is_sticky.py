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
from eventwire._outcome import DeliveryReceipt
from eventwire._producer import Pending, ProducerCore
from tests.events import order


class _Recorded(Pending):
    __slots__ = ("outcome",)

    def __init__(self, encoded: eventwire.EncodedEvent) -> None:
        self.encoded = encoded
        self.failures = 0
        self.generation = 0
        self.unsent = False  # it had a partition: a timeout may have been written
        self.outcome: DeliveryReceipt | eventwire.PublishError | None = None

    def settle(self, outcome: DeliveryReceipt | eventwire.PublishError) -> None:
        self.outcome = outcome


@pytest.fixture
def core() -> Iterator[ProducerCore]:
    config = eventwire.PublisherConfig(
        bootstrap_servers="127.0.0.1:9",  # never contacted: nothing is produced
        retry=eventwire.RetryPolicy(attempts=2, deadline=60.0, base=30.0, cap=30.0),
        breaker=None,
    )
    core = ProducerCore(config)
    yield core
    core.stop_polling(1.0)


def _deliver(core: ProducerCore, pending: _Recorded, code: int, *, generation: int) -> None:
    pending.generation = generation
    pending.err = KafkaError(code)
    core.settle([pending])


def test_a_retriable_last_attempt_after_an_ambiguous_one_is_ambiguous(
    core: ProducerCore,
) -> None:
    pending = _Recorded(eventwire.EventCodec().encode(order(1)))
    core.track(1)
    # Attempt 1: purged from a replaced producer's queue: it may have been written.
    _deliver(core, pending, KafkaError._PURGE_QUEUE, generation=-1)
    assert pending.outcome is None  # taken over by the retry (due in 30 s: never re-sent here)
    # Attempt 2: purged from the current producer, never sent (the table's class: retriable).
    _deliver(core, pending, KafkaError._PURGE_QUEUE, generation=0)
    error = pending.outcome
    assert isinstance(error, eventwire.AmbiguousPublishError)
    assert error.attempts == 2
    assert error.code == "_PURGE_QUEUE"
    assert str(error).startswith("an earlier attempt may have been written: ")
    assert error.event_id == pending.encoded.event_id
    assert isinstance(error.__cause__, KafkaException)  # the last report


def test_retriable_attempts_alone_stay_retriable(core: ProducerCore) -> None:
    pending = _Recorded(eventwire.EventCodec().encode(order(2)))
    core.track(1)
    _deliver(core, pending, KafkaError._PURGE_QUEUE, generation=0)
    assert pending.outcome is None
    _deliver(core, pending, KafkaError._PURGE_QUEUE, generation=0)
    error = pending.outcome
    assert type(error) is eventwire.RetriablePublishError
    assert error.attempts == 2
