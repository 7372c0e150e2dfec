"""Intake: taking records from callers and from the core's re-sends.

A record goes to librdkafka, or waits behind the replacement gate or a retry of its key
(``ordering``). librdkafka's refusals become typed errors here (a record too large is
dead-lettered if the policy says so); re-sends never go into an open breaker.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException

from eventwire._classify import to_publish_error
from eventwire._codec import EncodedEvent
from eventwire._core.breaker import CircuitBreaker
from eventwire._core.client_log import ClientErrors
from eventwire._core.dead_letter import DeadLetterWriter
from eventwire._core.deadlines import Deadlines
from eventwire._core.handle import ProducerHandle
from eventwire._core.ordering import KeyOrdering
from eventwire._core.record import InFlight
from eventwire._core.settlement import log_failed
from eventwire._core.stats import Counters
from eventwire._core.transport import Transport
from eventwire._errors import PublisherClosedError, PublishError
from eventwire._messages import (
    CLOSED_MESSAGE,
    circuit_open_error,
    too_large_error,
    too_large_for_queue_error,
)
from eventwire._telemetry import Instrumentation

_monotonic = time.monotonic


class Intake:
    """Hands records to the transport in use, or holds them (see the module docstring)."""

    def __init__(
        self,
        *,
        handle: ProducerHandle,
        ordering: KeyOrdering,
        counters: Counters,
        client_errors: ClientErrors,
        deadlines: Deadlines,
        append: Callable[[InFlight], None],
        breaker: CircuitBreaker | None,
        dead_letters: DeadLetterWriter | None,
        telemetry: Instrumentation | None,
        limits: tuple[int, int],
        denied: Callable[[EncodedEvent, str], PublishError],
    ) -> None:
        self._handle = handle
        self._ordering = ordering
        self._counters = counters
        self._client_errors = client_errors
        self._deadlines = deadlines
        self._append = append
        self._breaker = breaker
        self._dead_letters = dead_letters
        self._telemetry = telemetry
        #: ``message.max.bytes`` and librdkafka's whole queue, in bytes.
        self._max_message_bytes, self._max_queue_bytes = limits
        self._denials = client_errors.denials
        #: Words the error of an event the cluster refuses (``Settlement.denied_error``).
        self._denied = denied
        self._orders = itertools.count()

    def produce(self, record: InFlight) -> None:
        """Take ``record``: hand it to librdkafka, or hold it behind a retry of its key or the
        replacement gate. A refused record that the dead-letter policy takes counts as taken
        (its outcome arrives later).

        Raises:
            BufferError: the local queue is full; the caller waits for room and calls again.
            PublishError: librdkafka refused the event (e.g. too large); it was not accepted.
            PublisherClosedError: the publisher closed meanwhile; it was not accepted.
        """
        self._counters.take()
        try:
            self.take_over(record)
        except BaseException:
            self._counters.give_back()
            raise

    def reserve(self, count: int) -> Reservation:
        """Count ``count`` records as taken at once, for a batch that takes them one by one
        (one lock for the batch instead of one per event); ``Reservation.release`` gives back
        what it did not take."""
        self._counters.take(count)
        return Reservation(self, count)

    def take_over(self, record: InFlight) -> None:
        """``produce`` for a record already counted as taken (see ``reserve``)."""
        # Read before the gate: if a replacement swaps producers in between, the gate is seen
        # closed; an event that still reaches the old one is purged by poll_retired.
        handle = self._handle
        transport = handle.transport
        record._append = self._append
        record.order = next(self._orders)
        ordering = self._ordering
        try:
            if ordering.gate_closed or ordering.holds:
                self._hand_to(transport, record)
                return
            # The common case, without a hold or a gate: _hand_to's last step, inline (one
            # call less per event), ``Deadlines.arm`` too (a fresh record is not expired).
            enc = record.encoded
            record.generation = handle.generation
            record.connection_errors = self._client_errors.connection_errors
            deadlines = self._deadlines
            deadline = record.deadline = _monotonic() + deadlines.timeout
            record.pending = True
            try:
                transport.produce(
                    enc.topic, enc.value, enc.key, on_delivery=record, headers=enc.headers
                )
            except KafkaException as exc:
                raise self.refused(exc.args[0], enc) from None
            except BufferError as exc:
                self._check_fits(enc, exc)
                raise
            except RuntimeError:
                self._closed_or_retired(transport, record)
                return
            deadlines.append((deadline, record))
        except PublishError as error:
            permanent = error.category == "permanent"
            if self._dead_letters is not None and permanent:
                record.first_failure = time.time()
                self._dead_letters.add(record, error)
                return
            if permanent or not record.durable:  # a spooled event refused for now is parked
                self.fail_unsent(record, error)
            raise

    def fail_unsent(self, record: InFlight, error: PublishError) -> None:
        """``record`` failed before it was sent (refused, or no room in time): one log line,
        its span ends, and it counts as failed."""
        if error.category != "queue_full":
            log_failed(error, record.encoded.event_type)
        if self._telemetry is not None:
            self._telemetry.finish(record, error)
        self._counters.refused()

    def refuse_open_breaker(self, encoded: EncodedEvent, *, lone: bool = True) -> PublishError:
        """The error of an event the open breaker refuses (nothing was sent): typed as the
        refusal when the cluster refuses this client. A ``lone`` event's refusal is a span of
        its own (a batch call's span counts its refusals)."""
        error = self._breaker_refusal(encoded)
        if lone and self._telemetry is not None:
            self._telemetry.rejected(encoded, error)
        return error

    def _breaker_refusal(self, encoded: EncodedEvent) -> PublishError:
        if self._denials.known is not None:
            return self._denied(encoded, "CIRCUIT_OPEN")
        breaker = self._breaker
        return circuit_open_error(encoded, breaker.last_reason if breaker is not None else None)

    def _hand_to(self, transport: Transport, record: InFlight) -> None:
        enc = record.encoded
        ordering = self._ordering
        if ordering.gate_closed and ordering.hold_at_gate(record):
            return
        if ordering.holds and enc.key is not None and ordering.hold_if_retrying(record):
            return
        record.generation = self._handle.generation
        record.connection_errors = self._client_errors.connection_errors
        deadlines = self._deadlines
        deadline = deadlines.arm(record)
        try:
            transport.produce(
                enc.topic, enc.value, enc.key, on_delivery=record, headers=enc.headers
            )
        except KafkaException as exc:
            raise self.refused(exc.args[0], enc) from None
        except BufferError as exc:
            self._check_fits(enc, exc)
            raise
        except RuntimeError:
            self._closed_or_retired(transport, record)
            return
        deadlines.append((deadline, record))

    def _check_fits(self, enc: EncodedEvent, exc: BufferError) -> None:
        # librdkafka counts the value against queue.buffering.max.kbytes: one larger than
        # the whole queue never fits, and waiting for room would wait for ever.
        if len(enc.value) > self._max_queue_bytes:
            raise too_large_for_queue_error(enc, self._max_queue_bytes, exc) from None

    def _closed_or_retired(self, transport: Transport, record: InFlight) -> None:
        """``produce`` raised "Producer has been closed"."""
        if transport is self._handle.transport:
            raise PublisherClosedError(CLOSED_MESSAGE) from None
        # A replacement retired the producer read before the gate, and closed it: go
        # through the gate again (it holds the event until the old reports are settled).
        self._hand_to(self._handle.transport, record)

    def send(self, record: InFlight) -> None:
        """Re-send (or release) one record from the poll thread; ``BufferError`` when the
        queue is full. Never into an open breaker: the record then fails like a refusal."""
        breaker = self._breaker
        enc = record.encoded
        if breaker is not None and not breaker.allows():
            record.refused(self._breaker_refusal(enc))
            return
        record.generation = self._handle.generation
        record.connection_errors = self._client_errors.connection_errors
        deadline = self._deadlines.arm(record)
        try:
            self._handle.transport.produce(
                enc.topic, enc.value, enc.key, on_delivery=record, headers=enc.headers
            )
        except KafkaException as exc:
            record.refused(self.refused(exc.args[0], enc))
            return
        self._deadlines.append((deadline, record))

    def refused(self, err: KafkaError, enc: EncodedEvent) -> PublishError:
        if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return too_large_error(enc, self._max_message_bytes, err.name(), KafkaException(err))
        if err.code() == KafkaError._FATAL and self._denials.current is not None:
            # The producer is dead because the cluster refused it: that is the cause.
            error = self._denied(enc, err.name())
            error.__cause__ = KafkaException(err)
            return error
        return to_publish_error(
            err, topic=enc.topic, event_id=enc.event_id, attempts=0, context="produce refused"
        )


class Reservation:
    """Counts reserved for a batch (``Intake.reserve``); each record it has ``take_over``
    take uses one."""

    __slots__ = ("_count", "_intake")

    def __init__(self, intake: Intake, count: int) -> None:
        self._intake = intake
        self._count = count

    def release(self, used: int) -> None:
        """Give back the counts no record used (refused, or never reached): ``used`` records
        were taken (produced, held, or dead-lettered)."""
        left = self._count - used
        if left:
            self._intake._counters.give_back(left)
        self._count = used
