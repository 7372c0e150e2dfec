"""Regression (found by tests/faults): an event purged from the queue of a replaced producer
may already be in Kafka, so its caller must be told "ambiguous", not "retriable".

librdkafka puts a message whose produce request failed (a connection reset, a request timeout)
back in its queue; when the core then replaces the producer (after a message timeout) and
purges that queue, the report says ``_PURGE_QUEUE`` although the broker may have written it.
The outage test saw such events reported as ``RetriablePublishError`` and read back. The
delivery reports below are real ``KafkaError``s fed to the core as its poll thread would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError

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
        self.outcome: DeliveryReceipt | eventwire.PublishError | None = None

    def settle(self, outcome: DeliveryReceipt | eventwire.PublishError) -> None:
        self.outcome = outcome


@pytest.fixture
def core() -> Iterator[ProducerCore]:
    config = eventwire.PublisherConfig(
        bootstrap_servers="127.0.0.1:9",  # never contacted: nothing is produced
        retry=eventwire.RetryPolicy.never(),
        breaker=None,
    )
    core = ProducerCore(config)
    yield core
    core.stop_polling(1.0)


def _report(core: ProducerCore, *, replaced: bool) -> eventwire.PublishError:
    pending = _Recorded(eventwire.EventCodec().encode(order(1)))
    # A producer generation before the current one: its producer was replaced since.
    pending.generation = -1 if replaced else 0
    core.track(1)
    pending.err = KafkaError(KafkaError._PURGE_QUEUE)
    core.settle([pending])
    assert isinstance(pending.outcome, eventwire.PublishError)
    return pending.outcome


def test_purged_by_a_replacement_is_ambiguous(core: ProducerCore) -> None:
    error = _report(core, replaced=True)
    assert isinstance(error, eventwire.AmbiguousPublishError)
    assert error.code == "_PURGE_QUEUE"
    assert "ambiguous" in str(error)


def test_purged_from_the_current_producer_keeps_the_table_class(core: ProducerCore) -> None:
    error = _report(core, replaced=False)
    assert isinstance(error, eventwire.RetriablePublishError)
