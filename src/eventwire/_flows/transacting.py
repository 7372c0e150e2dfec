"""The flows of a Kafka transaction, written once for both twins: begin, publish,
publish_many, send_offsets and end (see ``_transactions``).

Any error raised by a call inside the transaction dooms it (a validation error included):
its end aborts it, and raises ``TransactionAbortedError`` if the body went on as if nothing
had happened. Events are encoded and checked like ``publish``'s, and produced through the
core like any other (waiting for room in a full queue); the core fails a failed record at
once, and the transaction is what fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException

from eventwire._backpressure import Turn
from eventwire._codec import EncodedEvent, UserHeaders
from eventwire._core.record import InFlight, Sink
from eventwire._errors import ConfigError, TransactionAbortedError
from eventwire._flows.ops import BREATHE, LOOP_SLICE, SLICE_CHECK, Blocking, Flow, Wait
from eventwire._flows.publishing import _produce_when_room as produce_when_room
from eventwire._messages import TRANSACTIONS_NEED_ID_MESSAGE
from eventwire._outcome import DeliveryReceipt
from eventwire._transactions import Ledger, Phase, TransactionalProducer

if TYPE_CHECKING:
    from eventwire._publisher import Batch, PublisherBase


def transactional(pub: PublisherBase) -> TransactionalProducer:
    """The publisher's transactional producer.

    Raises:
        ConfigError: the publisher has no ``transactional_id``.
    """
    producer = pub._transactions
    if producer is None:
        raise ConfigError(TRANSACTIONS_NEED_ID_MESSAGE)
    return producer


def begin(pub: PublisherBase, ledger: Ledger) -> Flow[None]:
    """Start ``ledger``: init transactions first if none ran yet, then begin."""
    producer = transactional(pub)
    pub._check_open()
    producer.claim(ledger)
    try:
        if producer.phase is Phase.UNINITIALIZED:
            yield Blocking(producer.initialize)
        producer.begin(ledger)
    except BaseException:
        producer.release(ledger)
        raise


def publish(
    pub: PublisherBase,
    ledger: Ledger,
    event: Any,
    where: tuple[str | None, str | bytes | None, UserHeaders | None],
    *,
    sink: Sink,
    waitable: Any,
) -> Flow[DeliveryReceipt]:
    """One event in the transaction, until it is written (``where``: topic, key, headers)."""
    try:
        transactional(pub).check_publishing(ledger)
        topic, key, headers = where
        record = InFlight(_encode(pub, event, topic, key, headers), ledger.sink(sink, 1))
        telemetry = pub._core.telemetry
        if telemetry is not None:  # a send of one message, as a lone publish
            telemetry.start(record)
        ledger.drain.hold(1)
        try:
            if pub._line.clear_for(None):
                try:
                    pub._core.produce(record)
                except BufferError:
                    yield from produce_when_room(pub, record, None)
            else:
                yield from produce_when_room(pub, record, None)
        except BaseException:
            ledger.drain.release()
            raise
        del record
        receipt: DeliveryReceipt = yield Wait(waitable)
        return receipt
    except BaseException as exc:
        ledger.doom(exc)
        raise
    finally:
        del waitable, sink  # held in the traceback of the error raised


def publish_many(
    pub: PublisherBase, ledger: Ledger, events: Sequence[Any], topic: str | None, batch: Batch
) -> Flow[list[DeliveryReceipt]]:
    """Events in the transaction, in order, until every one is written. All are encoded
    first: an invalid one raises before any is produced."""
    try:
        transactional(pub).check_publishing(ledger)
        encoded = [_encode(pub, event, topic, None, None) for event in events]
        yield from _produce_all(pub, ledger, encoded, batch)
        batch.release()  # the producing caller's own hold
        yield Wait(batch.waitable)
        outcomes = batch.outcomes
        for outcome in outcomes:
            if not isinstance(outcome, DeliveryReceipt):
                raise outcome  # type: ignore[misc]  # every slot is filled once done
        return outcomes  # type: ignore[return-value]  # all receipts, checked above
    except BaseException as exc:
        ledger.doom(exc)
        raise


def _encode(
    pub: PublisherBase,
    event: Any,
    topic: str | None,
    key: str | bytes | None,
    headers: UserHeaders | None,
) -> EncodedEvent:
    """``publish``'s codec and breaker, for an event in the transaction; an ``EncodedEvent``
    (a record encoded earlier, e.g. by the transactional outbox) goes as it is."""
    pub._check_open()
    if isinstance(event, EncodedEvent):
        if topic is not None or key is not None or headers is not None:
            raise ValueError(
                "an EncodedEvent is published as it was encoded: give no topic, key or headers"
            )
        encoded = event
    else:
        encoded = pub._codec.encode(event, topic, key, headers)
    breaker = pub._core.breaker
    if breaker is not None and not breaker.allows():
        raise pub._core.refuse_open_breaker(encoded)
    return encoded


def _produce_all(
    pub: PublisherBase, ledger: Ledger, encoded: list[EncodedEvent], batch: Batch
) -> Flow[None]:
    """Produce ``encoded`` into ``batch`` (the poll thread standing aside, as in
    ``publish_many``); the first event that cannot be produced raises."""
    core = pub._core
    count = len(encoded)
    sink = ledger.sink(batch, count)
    reservation = core.intake.reserve(count)
    take_over = core.intake.take_over
    telemetry = core.telemetry
    batch.hold(count)
    ledger.drain.hold(count)
    kept = 0
    line = pub._line
    turn = Turn()
    poll = core.poll
    clock = time.perf_counter
    slice_end = clock() + LOOP_SLICE

    def produce_unless_closing(record: InFlight) -> None:
        pub._check_open()
        take_over(record)

    poll.batch_started()
    try:
        for index, enc in enumerate(encoded):
            if not index % SLICE_CHECK and clock() >= slice_end:
                yield BREATHE
                slice_end = clock() + LOOP_SLICE
            pub._check_open()
            record = InFlight(enc, sink, index)
            if telemetry is not None:  # each event of a transaction is a send of its own
                telemetry.start(record)
            if not line.waiting or line.clear_for(turn):
                try:
                    take_over(record)
                    kept += 1
                    continue
                except BufferError:
                    pass
            poll.batch_ended()  # only the poll thread frees room
            try:
                yield from produce_when_room(pub, record, turn, produce=produce_unless_closing)
            finally:
                poll.batch_started()
            kept += 1
    finally:
        reservation.release(used=kept)
        if kept < count:
            batch.release(count - kept)
            ledger.drain.release(count - kept)
        poll.batch_ended()
        line.leave(turn)


def send_offsets(
    pub: PublisherBase, ledger: Ledger, consumer: Any, offsets: Iterable[Any]
) -> Flow[None]:
    """The consumer's offsets, committed with the transaction."""
    producer = transactional(pub)
    try:
        pub._check_open()
        producer.check_publishing(ledger)
        metadata = consumer.consumer_group_metadata()
    except BaseException as exc:
        ledger.doom(exc)
        raise
    yield Blocking(producer.send_offsets, ledger, list(offsets), metadata)


def end(pub: PublisherBase, ledger: Ledger, error: BaseException | None) -> Flow[None]:
    """Commit ``ledger``, or abort it if the body raised ``error`` or anything in it failed.
    Every record is settled first. Returns (letting ``error`` go on) or raises the
    ``TransactionError`` that says what became of the transaction."""
    producer = transactional(pub)
    if ledger.state == "open":
        ledger.state = "ending"
    failed = error is not None or ledger.failure is not None
    if failed and not pub._core.lifecycle.closed:
        # What is still queued is purged (it fails at once) rather than sent and aborted.
        with contextlib.suppress(KafkaException):
            pub._core.handle.transport.purge(True, False, True)
    ledger.drain.release()  # the transaction's own hold
    yield Wait(ledger.drain.waitable)
    if not failed and ledger.failure is None:
        yield Blocking(producer.commit, ledger)
        return
    yield Blocking(producer.abort, ledger, None if error is None else type(error).__name__)
    if error is None:
        cause = ledger.failure
        aborted = TransactionAbortedError(
            f"transaction of {producer.transactional_id!r} aborted: a call in it failed "
            f"({type(cause).__name__}: {cause}); nothing of it is visible: run it again",
            transactional_id=producer.transactional_id,
            code=getattr(cause, "code", None),
        )
        raise aborted from cause
