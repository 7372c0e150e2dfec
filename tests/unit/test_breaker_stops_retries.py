"""A failed attempt whose retry would be sent while the breaker is open is not re-sent: the
caller gets the error now (issue 23: a retry into an open breaker ran a whole further
``delivery_timeout``). The reports are real ``KafkaError``s fed to the core as its poll
thread would; the breaker is opened through its own state machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError

import eventwire
import eventwire.codec
from eventwire._core.coordinator import ProducerCore
from tests.unit.reports import idle_core, taken_record


@pytest.fixture
def core() -> Iterator[ProducerCore]:
    with idle_core(retry=eventwire.RetryPolicy(attempts=5, deadline=60.0)) as core:
        yield core


def _open(core: ProducerCore) -> None:
    assert core.breaker is not None
    core.breaker.record_unreachable("_ALL_BROKERS_DOWN")
    core.breaker.confirm(False)
    assert core.breaker.state == "open"


def _report(core: ProducerCore, code: int, *, unsent: bool = False) -> eventwire.PublishError:
    record, sink = taken_record(core)
    record.unsent = unsent
    record.err = KafkaError(code)
    core.settle([record])
    assert isinstance(sink.outcome, eventwire.PublishError), sink.outcome
    return sink.outcome


def test_a_retriable_failure_with_the_breaker_open_is_a_circuit_open_error(
    core: ProducerCore,
) -> None:
    _open(core)
    error = _report(core, KafkaError.NETWORK_EXCEPTION)
    assert type(error) is eventwire.CircuitOpenError
    assert error.attempts == 1
    assert "not retried: the circuit breaker is open" in str(error)
    assert isinstance(error.__cause__, eventwire.RetriablePublishError)
    assert core.counters.retries == 0


def test_a_timeout_with_the_breaker_open_stays_ambiguous(core: ProducerCore) -> None:
    # CircuitOpenError would claim it was not sent: the broker may have written it.
    _open(core)
    error = _report(core, KafkaError._MSG_TIMED_OUT)
    assert type(error) is eventwire.AmbiguousPublishError
    assert str(error).endswith(
        "not retried: the circuit breaker is open (_ALL_BROKERS_DOWN (confirmed by a failed probe))"
    )
    assert core.counters.retries == 0


def test_with_the_breaker_closed_the_same_failure_is_retried(core: ProducerCore) -> None:
    record, sink = taken_record(core)
    record.err = KafkaError(KafkaError.NETWORK_EXCEPTION)
    core.settle([record])
    assert sink.outcome is None  # taken over by a retry
    assert core.counters.retries == 1
