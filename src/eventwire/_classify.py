"""The one place that reads librdkafka error codes: maps a ``KafkaError`` to a failure class.

``KafkaError.retriable()`` is ``False`` on delivery reports even for transient errors, so it is
not consulted; the code decides. The ``fatal()`` flag always wins (the producer must be
recreated). Codes not in the table are treated as permanent: an unknown failure is surfaced,
not retried forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException

from eventwire._errors import (
    AmbiguousPublishError,
    AuthenticationError,
    AuthorizationError,
    FailureClass,
    FatalPublishError,
    FatalTransactionError,
    PermanentPublishError,
    ProducerFencedError,
    PublishError,
    RetriablePublishError,
    TransactionAbortedError,
    TransactionError,
)

_CLASS_ERRORS: Final[Mapping[FailureClass, type[PublishError]]] = MappingProxyType(
    {
        "retriable": RetriablePublishError,
        "permanent": PermanentPublishError,
        "fatal": FatalPublishError,
        "ambiguous": AmbiguousPublishError,
    }
)

# name -> class. Names are KafkaError attribute names; a name missing from an older client is
# skipped when the table is compiled.
_TABLE: Final[Mapping[str, FailureClass]] = MappingProxyType(
    {
        # The broker may or may not have written it.
        "_MSG_TIMED_OUT": "ambiguous",
        "_TIMED_OUT": "ambiguous",
        "REQUEST_TIMED_OUT": "ambiguous",
        "_PURGE_INFLIGHT": "ambiguous",
        # In the leader's log, but too few replicas took it before the ISR shrank: it is
        # committed if they catch up (librdkafka marks it possibly persisted).
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND": "ambiguous",
        # Transient: sending again is safe (idempotence de-duplicates re-sends).
        "_TRANSPORT": "retriable",
        "_ALL_BROKERS_DOWN": "retriable",
        "_RESOLVE": "retriable",
        "_QUEUE_FULL": "retriable",
        "_PURGE_QUEUE": "retriable",
        "_WAIT_COORD": "retriable",
        "_NODE_UPDATE": "retriable",
        "_UNKNOWN_BROKER": "retriable",
        "_ISR_INSUFF": "retriable",
        "_DESTROY": "retriable",
        "_RETRY": "retriable",
        "LEADER_NOT_AVAILABLE": "retriable",
        "NOT_LEADER_FOR_PARTITION": "retriable",
        "BROKER_NOT_AVAILABLE": "retriable",
        "REPLICA_NOT_AVAILABLE": "retriable",
        "NETWORK_EXCEPTION": "retriable",
        "NOT_ENOUGH_REPLICAS": "retriable",
        "KAFKA_STORAGE_ERROR": "retriable",
        "UNKNOWN_TOPIC_OR_PART": "retriable",
        "_UNKNOWN_PARTITION": "retriable",
        "_UNKNOWN_TOPIC": "retriable",
        "FENCED_LEADER_EPOCH": "retriable",
        "UNKNOWN_LEADER_EPOCH": "retriable",
        "OFFSET_NOT_AVAILABLE": "retriable",
        "PREFERRED_LEADER_NOT_AVAILABLE": "retriable",
        "THROTTLING_QUOTA_EXCEEDED": "retriable",
        "COORDINATOR_LOAD_IN_PROGRESS": "retriable",
        "COORDINATOR_NOT_AVAILABLE": "retriable",
        "NOT_COORDINATOR": "retriable",
        "CONCURRENT_TRANSACTIONS": "retriable",
        "REBOOTSTRAP_REQUIRED": "retriable",
        # The event cannot be delivered as it is.
        "MSG_SIZE_TOO_LARGE": "permanent",
        "RECORD_LIST_TOO_LARGE": "permanent",
        "INVALID_MSG": "permanent",
        "INVALID_MSG_SIZE": "permanent",
        "INVALID_RECORD": "permanent",
        "INVALID_TIMESTAMP": "permanent",
        "CORRUPT_MESSAGE": "permanent",
        "TOPIC_AUTHORIZATION_FAILED": "permanent",
        "CLUSTER_AUTHORIZATION_FAILED": "permanent",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": "permanent",
        "SASL_AUTHENTICATION_FAILED": "permanent",
        "_AUTHENTICATION": "permanent",
        "_SSL": "permanent",
        "TOPIC_EXCEPTION": "permanent",
        "POLICY_VIOLATION": "permanent",
        "UNSUPPORTED_FOR_MESSAGE_FORMAT": "permanent",
        "UNSUPPORTED_VERSION": "permanent",
        "UNSUPPORTED_COMPRESSION_TYPE": "permanent",
        "INVALID_REQUIRED_ACKS": "permanent",
        "INVALID_CONFIG": "permanent",
        "_INVALID_ARG": "permanent",
        "_INVALID_TYPE": "permanent",
        "_MSG_SIZE_TOO_LARGE": "permanent",
        "_BAD_MSG": "permanent",
        "_VALUE_SERIALIZATION": "permanent",
        "_KEY_SERIALIZATION": "permanent",
        "_UNSUPPORTED_FEATURE": "permanent",
        "_NOT_IMPLEMENTED": "permanent",
        # The producer instance is unusable; it must be recreated.
        "_FATAL": "fatal",
        "_FENCED": "fatal",
        "PRODUCER_FENCED": "fatal",
        "INVALID_PRODUCER_EPOCH": "fatal",
        "OUT_OF_ORDER_SEQUENCE_NUMBER": "fatal",
        "UNKNOWN_PRODUCER_ID": "fatal",
        "INVALID_PRODUCER_ID_MAPPING": "fatal",
        "INVALID_TXN_STATE": "fatal",
        "_GAPLESS_GUARANTEE": "fatal",
        "_INCONSISTENT": "fatal",
    }
)


def _compile(table: Mapping[str, FailureClass]) -> dict[int, FailureClass]:
    codes: dict[int, FailureClass] = {}
    for name, failure in table.items():
        code = getattr(KafkaError, name, None)
        if isinstance(code, int):
            codes[code] = failure
    return codes


_BY_CODE: Final[dict[int, FailureClass]] = _compile(_TABLE)

#: The table as documented: librdkafka code name -> failure class.
CLASSIFICATION: Final[Mapping[str, FailureClass]] = _TABLE


def classify(error: Any) -> FailureClass:
    """Return the failure class of a ``KafkaError`` (its ``fatal()`` flag wins)."""
    if error.fatal():
        return "fatal"
    return _BY_CODE.get(error.code(), "permanent")


#: What to change, for codes whose librdkafka text does not say it (``{topic}``: the topic).
_HINTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "MSG_SIZE_TOO_LARGE": (
            "the broker refused the record as larger than the topic's max.message.bytes"
            " (default: the broker's message.max.bytes, about 1 MB): raise that topic setting,"
            " or publish smaller events"
        ),
        "TOPIC_AUTHORIZATION_FAILED": (
            "the cluster does not let this client write to topic {topic!r}: grant its"
            " principal WRITE (and DESCRIBE) on the topic, e.g. kafka-acls --add"
            " --allow-principal User:NAME --operation Write --operation Describe --topic {topic}"
        ),
        "CLUSTER_AUTHORIZATION_FAILED": (
            "the cluster refuses this client an idempotent producer id: grant its principal"
            " IdempotentWrite on the cluster, or WRITE on the topics it publishes to"
        ),
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": (
            "the cluster refuses this client its transactional id: grant its principal WRITE"
            " and DESCRIBE on the transactional id"
        ),
    }
)
#: The permanent failures that are about this client's access, not the event.
_ACCESS_ERRORS: Final[Mapping[str, type[PublishError]]] = MappingProxyType(
    {
        "TOPIC_AUTHORIZATION_FAILED": AuthorizationError,
        "CLUSTER_AUTHORIZATION_FAILED": AuthorizationError,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": AuthorizationError,
        "SASL_AUTHENTICATION_FAILED": AuthenticationError,
        "_AUTHENTICATION": AuthenticationError,
        "_SSL": AuthenticationError,
    }
)


def to_publish_error(
    error: Any,
    *,
    topic: str,
    event_id: str,
    attempts: int = 1,
    context: str = "",
    failure: FailureClass | None = None,
) -> PublishError:
    """Map a ``KafkaError`` to the matching ``PublishError`` subclass (cause attached);
    ``failure`` overrides the table when the caller knows more than the code."""
    failure = failure or classify(error)
    name = error.name()
    detail = error.str()
    prefix = f"{context}: " if context else ""
    hint = _HINTS.get(name)
    message = (
        f"{prefix}event {event_id} to topic {topic!r} failed ({failure}, {name}): {detail}"
        f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        + (f" ({hint.format(topic=topic)})" if hint else "")
    )
    cls = _CLASS_ERRORS[failure]
    if failure == "permanent":
        cls = _ACCESS_ERRORS.get(name, cls)
    exc = cls(message, topic=topic, event_id=event_id, attempts=attempts, code=name)
    exc.__cause__ = KafkaException(error)
    return exc


def still_ambiguous(error: PublishError) -> PublishError:
    """``error`` of a retriable attempt, as an ``AmbiguousPublishError``: an earlier attempt
    failed ambiguously, so the event may be in Kafka although this attempt was not written."""
    exc = AmbiguousPublishError(
        f"an earlier attempt may have been written: {error}",
        topic=error.topic,
        event_id=error.event_id,
        attempts=error.attempts,
        code=error.code,
    )
    exc.__cause__ = error.__cause__
    return exc


#: Codes that say a newer producer with the same ``transactional.id`` took over: librdkafka's
#: own (fatal) one, and the broker's answers to the old epoch.
_FENCED_CODES: Final = frozenset(
    code
    for code in (
        getattr(KafkaError, name, None)
        for name in ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH")
    )
    if isinstance(code, int)
)


def is_fenced(error: Any) -> bool:
    """Whether a ``KafkaError`` says this producer was fenced by a newer one."""
    return error.code() in _FENCED_CODES


def to_transaction_error(error: Any, *, transactional_id: str, doing: str) -> TransactionError:
    """Map the ``KafkaError`` of a transactional call (``doing``: what was being done) to
    the matching ``TransactionError`` (cause attached): fenced, fatal, else aborted (the
    caller aborts first)."""
    name, detail = error.name(), error.str()
    exc: TransactionError
    if is_fenced(error):
        exc = ProducerFencedError(
            f"transactional producer {transactional_id!r} was fenced while {doing}: a newer "
            f"producer with the same transactional_id took over ({name}: {detail}). This "
            "publisher publishes nothing more and nothing of its open transaction becomes "
            "visible; close it. Run one live publisher per transactional_id",
            transactional_id=transactional_id,
            code=name,
        )
    elif error.fatal():
        exc = FatalTransactionError(
            f"transactional producer {transactional_id!r} failed while {doing} ({name}: "
            f"{detail}): it is unusable and nothing of its open transaction becomes visible; "
            "close this publisher and build a new one",
            transactional_id=transactional_id,
            code=name,
        )
    else:
        exc = TransactionAbortedError(
            f"transaction of {transactional_id!r} aborted: {doing} failed ({name}: {detail});"
            " nothing of it is visible: run it again",
            transactional_id=transactional_id,
            code=name,
        )
    exc.__cause__ = KafkaException(error)
    return exc
