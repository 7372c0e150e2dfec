"""The exception tree: one root, categories as classes.

librdkafka's ``KafkaError`` is never raised at the user directly; it is mapped once (in
``_classify``) and kept as ``__cause__``.
"""

from __future__ import annotations

from typing import Literal

#: How a delivery failure is classified (``_classify`` maps librdkafka codes to these).
FailureClass = Literal["retriable", "permanent", "fatal", "ambiguous"]


class EventwireError(Exception):
    """Root of every error raised by eventwire."""


class ConfigError(EventwireError, ValueError):
    """A configuration or policy was refused when it was built; the message says why."""


class EventDefinitionError(EventwireError, TypeError):
    """An event class was declared in a way eventwire cannot publish."""


class EventDefinitionWarning(UserWarning):
    """An event class was declared in a way that is legal but likely a mistake, such as a
    second class with the type and version of another but a different schema."""


class EventValidationError(EventwireError, ValueError):
    """An event failed validation before it was produced; it never reached Kafka.

    Attributes:
        event_type: the CloudEvents type of the event (e.g. ``order.placed``).
        path: the field path in the encoded payload, e.g. ``$.line_items[1].quantity``
            (``$`` when the error is not about one field).
        reason: msgspec's description of what is wrong, without the path.
    """

    def __init__(self, event_type: str, path: str, reason: str) -> None:
        self.event_type = event_type
        self.path = path
        self.reason = reason
        super().__init__(f"invalid {event_type} event at {path}: {reason}")

    def __reduce__(self) -> tuple[type[EventValidationError], tuple[str, str, str]]:
        return (type(self), (self.event_type, self.path, self.reason))


class PublisherClosedError(EventwireError):
    """The publisher was closed; create a new one to publish again."""


class PublishError(EventwireError):
    """An event could not be delivered.

    Attributes:
        topic: the topic the event was produced to.
        event_id: the CloudEvents ``ce_id`` of the event.
        attempts: how many times it was handed to Kafka.
        code: the librdkafka error name (e.g. ``MSG_SIZE_TOO_LARGE``), or ``None``.

    The ``KafkaError`` that caused it, if any, is ``__cause__``.
    """

    #: Short, stable name of the failure class (used in logs and dead-letter headers).
    category = "error"

    def __init__(
        self,
        message: str,
        *,
        topic: str,
        event_id: str,
        attempts: int = 1,
        code: str | None = None,
    ) -> None:
        self.topic = topic
        self.event_id = event_id
        self.attempts = attempts
        self.code = code
        super().__init__(message)


class RetriablePublishError(PublishError):
    """A transient failure (transport, leader change, timeout on a request that was not
    written); sending the event again is safe."""

    category = "retriable"


class PermanentPublishError(PublishError):
    """The event can never be delivered as it is (too large, not authorized, invalid record)."""

    category = "permanent"


class AuthenticationError(PermanentPublishError):
    """The cluster did not let this client in, so the event was not sent: its credentials were
    refused (wrong password, unknown user, a refused token), a TLS handshake failed (a
    broker certificate that expired, is signed by another CA or names another host; a client
    certificate the broker refused), or client and listener disagree on TLS. The message says
    what is wrong and what to check; waiting does not help, so it is not retried."""

    category = "authentication"


class AuthorizationError(PermanentPublishError):
    """The cluster let this client in but does not allow what it asked: writing to the topic
    (``TOPIC_AUTHORIZATION_FAILED``: the WRITE ACL is missing) or producing idempotently
    (``CLUSTER_AUTHORIZATION_FAILED``: neither IdempotentWrite on the cluster nor WRITE on
    any topic). The message names the ACL to grant; it is not retried."""

    category = "authorization"


class FatalPublishError(PublishError):
    """The producer instance is unusable (fatal idempotence error, fenced); it must be
    recreated before anything else is sent."""

    category = "fatal"


class AmbiguousPublishError(PublishError):
    """The outcome is unknown: the broker may have written the event (e.g. the message timed
    out in flight). Re-sending may duplicate it; consumers de-duplicate on ``ce_id``."""

    category = "ambiguous"


class QueueFullError(RetriablePublishError):
    """The local producer queue stayed full for longer than ``queue_full_timeout``; the event
    was not accepted."""

    category = "queue_full"


class CircuitOpenError(PublishError):
    """The circuit breaker is open: the cluster is considered unavailable and the event was
    rejected without being sent."""

    category = "circuit_open"


class DeadLetteredError(PublishError):
    """The event could not be delivered to its topic and was written to the dead-letter topic
    instead. ``dead_letter`` is the receipt of that record; ``__cause__`` is the original
    failure (a ``PermanentPublishError``, or the last error of the exhausted retries)."""

    category = "dead_lettered"

    def __init__(
        self,
        message: str,
        *,
        topic: str,
        event_id: str,
        attempts: int,
        code: str | None,
        dead_letter: object,
    ) -> None:
        super().__init__(message, topic=topic, event_id=event_id, attempts=attempts, code=code)
        #: The ``DeliveryReceipt`` of the dead-letter record.
        self.dead_letter = dead_letter


class SpoolFullError(RetriablePublishError):
    """The durable spool stayed full (``spool_max_events``) for longer than
    ``spool_full_timeout``; the event was not accepted (nothing already accepted was dropped)."""

    category = "spool_full"


class SpoolError(EventwireError):
    """The spool file cannot be used: not an eventwire spool, a newer schema, corrupt, or
    held by another process. Raised when the publisher starts, never mid-run."""


class TransactionError(EventwireError):
    """A Kafka transaction did not commit; the subclass says what became of it and whether
    the publisher can run the next one.

    Attributes:
        transactional_id: the publisher's ``transactional_id``.
        code: the librdkafka error name (e.g. ``_FENCED``, ``MSG_SIZE_TOO_LARGE``), or
            ``None`` when no Kafka error caused it.

    What caused it (a ``KafkaException``, the ``PublishError`` of an event, the body's
    exception) is ``__cause__``.
    """

    def __init__(self, message: str, *, transactional_id: str, code: str | None = None) -> None:
        self.transactional_id = transactional_id
        self.code = code
        super().__init__(message)


class TransactionAbortedError(TransactionError):
    """The transaction was aborted (or could not begin): nothing of it is visible to
    ``read_committed`` consumers. The publisher goes on: run the transaction again."""


class FatalTransactionError(TransactionError):
    """The transactional producer is unusable (a librdkafka fatal error): this publisher
    publishes nothing more. Close it and build a new one; its first transaction fences this
    producer, and Kafka aborts what it left open."""


class ProducerFencedError(FatalTransactionError):
    """A newer producer with the same ``transactional_id`` took over, so this one stops.
    Nothing of its open transaction becomes visible."""


class AmbiguousTransactionError(FatalTransactionError):
    """The commit was not confirmed in time: the transaction coordinator committed or aborted
    the transaction, and this producer cannot tell which. Consumers de-duplicate on
    ``ce_id`` if the unit is run again."""


class TransactionStateError(EventwireError, RuntimeError):
    """A call that the publisher's transactional state does not allow (nothing was sent):
    ``publish()`` outside a transaction on a transactional publisher, a second transaction
    while one is open, or a transaction used after it ended."""
