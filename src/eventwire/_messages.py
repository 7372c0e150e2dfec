"""Error builders: every error eventwire raises for an event, worded in one place.

Each says what happened to the event (its ``ce_id`` and type), whether it was sent, and what
to check. The errors mapped from librdkafka codes are built in ``_classify``.
"""

from __future__ import annotations

from typing import Final

from eventwire._codec import EncodedEvent
from eventwire._errors import (
    AmbiguousPublishError,
    AuthenticationError,
    AuthorizationError,
    CircuitOpenError,
    PermanentPublishError,
    PublishError,
    QueueFullError,
    RetriablePublishError,
    SpoolFullError,
)

CLOSED_MESSAGE: Final = "publisher is closed; create a new one"
SPOOL_NEEDED_MESSAGE: Final = (
    "accept() needs a durable spool: PublisherConfig(spool_path=...); use publish() without one"
)
TRANSACTIONS_NEED_ID_MESSAGE: Final = (
    "transaction() needs a transactional publisher: PublisherConfig(transactional_id=...)"
)
#: Futures of one loop cannot be settled on another: a publisher serves the loop it met first.
OTHER_LOOP_MESSAGE: Final = (
    "AsyncPublisher called from another event loop than the one it was first used on; "
    "create one publisher per event loop (nothing was sent)"
)


def outside_transaction_message(transactional_id: str) -> str:
    """Why a transactional publisher refuses ``publish()`` outside ``transaction()``."""
    return (
        f"publisher is transactional (transactional_id={transactional_id!r}): publish inside "
        "`with publisher.transaction() as tx:` with tx.publish()/tx.publish_many(); "
        "librdkafka puts every record of a transactional producer in the open transaction, "
        "so an event published beside one would commit or abort with it (nothing was sent)"
    )


def forked_message(pid: int) -> str:
    """Why a publisher created in process ``pid`` refuses events in a forked child."""
    return (
        f"publisher was created in process {pid}, and this is a child forked from it: "
        "librdkafka's threads do not survive os.fork(), nothing could be delivered; "
        "create the publisher in the child, after the fork (e.g. in gunicorn's post_fork "
        "hook or the multiprocessing worker)"
    )


def too_large_error(
    enc: EncodedEvent, limit: int, code: str, cause: BaseException | None
) -> PermanentPublishError:
    """The error of an event librdkafka refused as larger than ``message.max.bytes``."""
    error = PermanentPublishError(
        f"event {enc.event_id} ({enc.event_type}) is {len(enc.value):,} bytes encoded"
        f" (+ key and headers), over the producer's limit message.max.bytes="
        f"{limit:,}, which librdkafka checks before compression; it was not sent (raise it"
        " with PublisherConfig(librdkafka_overrides={'message.max.bytes': ...}); the topic's"
        " max.message.bytes must allow it too)",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
        code=code,
    )
    error.__cause__ = cause
    return error


def too_large_for_queue_error(
    enc: EncodedEvent, limit: int, cause: BaseException | None
) -> PermanentPublishError:
    """The error of an event larger than librdkafka's whole local queue (it never fits)."""
    error = PermanentPublishError(
        f"event {enc.event_id} ({enc.event_type}) is {len(enc.value):,} bytes encoded, more"
        f" than the local producer queue holds (queue.buffering.max.kbytes={limit // 1024:,}"
        f" = {limit:,} bytes); it can never be queued and was not sent",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
        code="MSG_SIZE_TOO_LARGE",
    )
    error.__cause__ = cause
    return error


def circuit_open_error(enc: EncodedEvent, reason: str | None) -> CircuitOpenError:
    """The error of an event refused because the circuit breaker is open."""
    return CircuitOpenError(
        f"event {enc.event_id} ({enc.event_type}) was not sent: the circuit breaker is "
        f"open ({reason or 'delivery failures'}); the cluster is considered unreachable",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
    )


def unreached_error(
    enc: EncodedEvent, bootstrap_servers: str, reason: str | None, hint: str, code: str
) -> CircuitOpenError:
    """The error of an event purged from the queue because the cluster never answered."""
    return CircuitOpenError(
        f"event {enc.event_id} ({enc.event_type}) was not sent: the cluster at"
        f" {bootstrap_servers} has not answered since the publisher started"
        f" (circuit breaker open: {reason or 'unreachable'}{hint})",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
        code=code,
    )


def denied_error(
    enc: EncodedEvent,
    bootstrap_servers: str,
    *,
    kind: str,
    summary: str,
    code: str,
    attempts: int = 0,
) -> AuthenticationError | AuthorizationError:
    """The error of an event not sent because the cluster refuses this client: ``summary``
    says what is wrong and what to check (``_core.access.Denial.summary``)."""
    cls = AuthenticationError if kind == "authentication" else AuthorizationError
    return cls(
        f"event {enc.event_id} ({enc.event_type}) to topic {enc.topic!r} was not sent: the "
        f"cluster at {bootstrap_servers} refuses this client, {summary}",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=attempts,
        code=code,
    )


def not_retried_error(error: PublishError, reason: str | None) -> PublishError:
    """The error of an event whose retry the open breaker stopped: a ``CircuitOpenError``
    when no attempt can have been written, else the ambiguous ``error`` with the reason (a
    ``CircuitOpenError`` would claim it was not sent)."""
    why = f"not retried: the circuit breaker is open ({reason or 'delivery failures'})"
    if isinstance(error, AmbiguousPublishError):
        ambiguous = AmbiguousPublishError(
            f"{error}; {why}",
            topic=error.topic,
            event_id=error.event_id,
            attempts=error.attempts,
            code=error.code,
        )
        ambiguous.__cause__ = error.__cause__
        return ambiguous
    refused = CircuitOpenError(
        f"{error}; {why}, the cluster is considered unreachable",
        topic=error.topic,
        event_id=error.event_id,
        attempts=error.attempts,
        code=error.code,
    )
    refused.__cause__ = error
    return refused


def call_timed_out_error(enc: EncodedEvent, timeout: float) -> AmbiguousPublishError:
    """The error of a publish whose caller stopped waiting after ``timeout`` seconds."""
    return AmbiguousPublishError(
        f"publish() gave up waiting after {timeout:g} s (timeout=): event {enc.event_id}"
        f" ({enc.event_type}) to topic {enc.topic!r} is still on its way and may yet be"
        " delivered; its outcome is counted and logged, and a re-send keeps its ce_id",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
        code="CALL_TIMED_OUT",
    )


def queue_full_error(enc: EncodedEvent, timeout: float) -> QueueFullError:
    """The error of an event that found no room in the local producer queue in time."""
    return QueueFullError(
        f"event {enc.event_id} ({enc.event_type}) was not accepted: the local producer "
        f"queue stayed full for {timeout:g} s (is the broker "
        "reachable? raise queue_full_timeout or queue.buffering.max.messages)",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
    )


def overtaking_error(enc: EncodedEvent, earlier: QueueFullError) -> QueueFullError:
    """The error of a ``publish_many`` event not produced because an earlier event of its key
    in the same call found no room: producing it would have put it before that one."""
    error = QueueFullError(
        f"event {enc.event_id} ({enc.event_type}) was not accepted: an earlier event of its "
        f"key in this publish_many call ({earlier.event_id}) found no room in the local "
        "producer queue, and this one would have overtaken it",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
    )
    error.__cause__ = earlier
    return error


def spool_full_error(enc: EncodedEvent, limit: int, timeout: float) -> SpoolFullError:
    """The error of an event that found no room in a full spool in time."""
    return SpoolFullError(
        f"event {enc.event_id} ({enc.event_type}) was not accepted: the spool stayed full "
        f"({limit:,} events, spool_max_events) for {timeout:g} s "
        "(is the broker reachable? raise spool_max_events or spool_full_timeout)",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
    )


def abandoned_error(enc: EncodedEvent, attempts: int) -> PermanentPublishError:
    """The error of an event waiting for a retry when the close gave up."""
    return PermanentPublishError(
        f"event {enc.event_id} to topic {enc.topic!r} was not delivered: the "
        "publisher closed before its retry succeeded",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=attempts,
        code="CLOSED",
    )


def left_in_spool_error(enc: EncodedEvent, path: str, *, maybe_written: bool) -> PublishError:
    """The outcome of an event left in the spool at close; ``maybe_written``: it was sent
    without an answer (e.g. to a broker that hangs), so the broker may still write it and the
    replay duplicate it."""
    what = (
        "was sent but not acknowledged before the publisher closed (the broker may have "
        "written it: the replay then duplicates it, same ce_id)"
        if maybe_written
        else "was not delivered before the publisher closed"
    )
    return RetriablePublishError(
        f"event {enc.event_id} to topic {enc.topic!r} {what}; it stays in the spool "
        f"{path!r} and is delivered on the next start",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
        code="SPOOLED",
    )
