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
import eventwire.codec
from eventwire._core.coordinator import ProducerCore
from tests.events import order
from tests.unit.reports import RecordingSink, idle_core


@pytest.fixture
def core() -> Iterator[ProducerCore]:
    with idle_core(retry=eventwire.RetryPolicy.never(), breaker=None) as core:
        yield core


def _report(core: ProducerCore, *, replaced: bool) -> eventwire.PublishError:
    sink = RecordingSink()
    pending = core.record(eventwire.codec.EventCodec().encode(order(1)), sink)
    # A producer generation before the current one: its producer was replaced since.
    pending.generation = -1 if replaced else 0
    core.counters.take()
    pending.err = KafkaError(KafkaError._PURGE_QUEUE)
    core.settle([pending])
    assert isinstance(sink.outcome, eventwire.PublishError)
    return sink.outcome


def test_purged_by_a_replacement_is_ambiguous(core: ProducerCore) -> None:
    error = _report(core, replaced=True)
    assert isinstance(error, eventwire.AmbiguousPublishError)
    assert error.code == "_PURGE_QUEUE"
    assert "ambiguous" in str(error)


def test_purged_from_the_current_producer_keeps_the_table_class(core: ProducerCore) -> None:
    error = _report(core, replaced=False)
    assert isinstance(error, eventwire.RetriablePublishError)
