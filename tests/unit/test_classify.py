"""Every row of the classification table, and the mapping to exception classes."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

import eventwire
from eventwire._classify import CLASSIFICATION, classify, to_publish_error

EXCEPTION_FOR = {
    "retriable": eventwire.RetriablePublishError,
    "permanent": eventwire.PermanentPublishError,
    "fatal": eventwire.FatalPublishError,
    "ambiguous": eventwire.AmbiguousPublishError,
}
KNOWN = sorted(name for name in CLASSIFICATION if isinstance(getattr(KafkaError, name, None), int))


def test_the_table_covers_the_codes_that_matter() -> None:
    assert CLASSIFICATION["_MSG_TIMED_OUT"] == "ambiguous"
    assert CLASSIFICATION["MSG_SIZE_TOO_LARGE"] == "permanent"
    assert CLASSIFICATION["PRODUCER_FENCED"] == "fatal"
    assert CLASSIFICATION["_ALL_BROKERS_DOWN"] == "retriable"
    assert len(KNOWN) >= 60  # rows whose code this confluent-kafka knows


@pytest.mark.parametrize("name", KNOWN)
def test_each_row_classifies_and_maps_to_its_exception(name: str) -> None:
    failure = CLASSIFICATION[name]
    error = KafkaError(getattr(KafkaError, name), "reason text")
    assert classify(error) == failure
    exc = to_publish_error(error, topic="orders", event_id="e-1", attempts=3)
    assert type(exc) is EXCEPTION_FOR[failure]
    assert isinstance(exc, eventwire.PublishError)
    assert (exc.topic, exc.event_id, exc.attempts, exc.code) == ("orders", "e-1", 3, name)
    assert isinstance(exc.__cause__, KafkaException)
    assert exc.__cause__.args[0].code() == getattr(KafkaError, name)
    assert f"({failure}, {name})" in str(exc)
    assert "after 3 attempts" in str(exc)


def test_fatal_flag_wins_over_the_table() -> None:
    error = KafkaError(KafkaError._TRANSPORT, "boom", fatal=True)
    assert classify(error) == "fatal"


def test_unknown_code_is_permanent_not_retried_forever() -> None:
    error = KafkaError(KafkaError.UNKNOWN, "who knows")
    assert classify(error) == "permanent"


def test_retriable_flag_of_delivery_reports_is_not_trusted() -> None:
    # librdkafka reports retriable() == False on a timed-out delivery; the code decides.
    error = KafkaError(KafkaError._MSG_TIMED_OUT, "timed out", retriable=False)
    assert classify(error) == "ambiguous"
