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
#: Permanent failures about this client's access, not the event: a subclass names them.
ACCESS = {
    "TOPIC_AUTHORIZATION_FAILED": eventwire.AuthorizationError,
    "CLUSTER_AUTHORIZATION_FAILED": eventwire.AuthorizationError,
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": eventwire.AuthorizationError,
    "SASL_AUTHENTICATION_FAILED": eventwire.AuthenticationError,
    "_AUTHENTICATION": eventwire.AuthenticationError,
    "_SSL": eventwire.AuthenticationError,
}


def test_the_table_covers_the_codes_that_matter() -> None:
    assert CLASSIFICATION["_MSG_TIMED_OUT"] == "ambiguous"
    assert CLASSIFICATION["MSG_SIZE_TOO_LARGE"] == "permanent"
    assert CLASSIFICATION["PRODUCER_FENCED"] == "fatal"
    assert CLASSIFICATION["_ALL_BROKERS_DOWN"] == "retriable"
    # Appended by the leader before the ISR shrank: committed if the replicas catch up.
    assert CLASSIFICATION["NOT_ENOUGH_REPLICAS_AFTER_APPEND"] == "ambiguous"
    assert CLASSIFICATION["NOT_ENOUGH_REPLICAS"] == "retriable"  # refused before the append
    assert len(KNOWN) >= 60  # rows whose code this confluent-kafka knows


@pytest.mark.parametrize("name", KNOWN)
def test_each_row_classifies_and_maps_to_its_exception(name: str) -> None:
    failure = CLASSIFICATION[name]
    error = KafkaError(getattr(KafkaError, name), "reason text")
    assert classify(error) == failure
    exc = to_publish_error(error, topic="orders", event_id="e-1", attempts=3)
    assert type(exc) is ACCESS.get(name, EXCEPTION_FOR[failure])
    assert isinstance(exc, EXCEPTION_FOR[failure])
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


def test_an_authorization_failure_names_the_acl_to_grant_on_its_topic() -> None:
    error = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed")
    exc = to_publish_error(error, topic="payments", event_id="e-9")
    assert isinstance(exc, eventwire.AuthorizationError)
    assert str(exc) == (
        "event e-9 to topic 'payments' failed (permanent, TOPIC_AUTHORIZATION_FAILED): Broker:"
        " Topic authorization failed after 1 attempt (the cluster does not let this client"
        " write to topic 'payments': grant its principal WRITE (and DESCRIBE) on the topic,"
        " e.g. kafka-acls --add --allow-principal User:NAME --operation Write --operation"
        " Describe --topic payments)"
    )
