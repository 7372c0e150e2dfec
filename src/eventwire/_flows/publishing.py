"""publish and publish_many (see the package docstring for the path of an event)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from eventwire._backpressure import Turn
from eventwire._codec import EncodedEvent
from eventwire._core.record import InFlight, Sink
from eventwire._core.state import State
from eventwire._durable.relay import Relay
from eventwire._errors import EventwireError, PublisherClosedError, PublishError, QueueFullError
from eventwire._flows.ops import (
    BREATHE,
    LOOP_SLICE,
    SERVE_EVERY,
    SLICE_CHECK,
    Flow,
    Room,
    Wait,
    left,
    refuse_rest,
)
from eventwire._flows.spooling import encode_for_spool, submit, submit_one
from eventwire._messages import call_timed_out_error, overtaking_error, queue_full_error
from eventwire._outcome import PublishOutcome, detached
from eventwire._telemetry import CallTelemetry

if TYPE_CHECKING:
    from eventwire._publisher import Batch, PublisherBase

#: ``publish_at_once`` handed the event over.
TAKEN: Final = True
#: What ``publish_at_once`` returns: ``TAKEN``, the record that found the queue full, or
#: ``None`` (not tried).
Started = InFlight | bool | None


def publish_at_once(pub: PublisherBase, encoded: EncodedEvent, sink: Sink) -> Started:
    """The common start of ``publish``, with nothing to wait for: the event is handed to the
    core now. ``TAKEN`` then (its outcome comes to ``sink``); else what ``publish`` goes on
    with (``None``: nothing was tried, or the record that found the queue full).

    Raises:
        PublishError: librdkafka refused the event (it was not accepted).
    """
    if pub._relay is not None or pub._line.waiting:
        return None  # through the spool, or behind callers waiting for room
    record = _lone_record(pub, encoded, sink)
    try:
        pub._core.produce(record)
    except BufferError:
        return record
    return TAKEN


def publish(
    pub: PublisherBase,
    encoded: EncodedEvent,
    sink: Sink,
    waitable: Any,
    *,
    timeout: float | None = None,
    started: Started = None,
) -> Flow[Any]:
    """One event, until its outcome (``waitable`` is the driver's handle on ``sink``), or
    until ``timeout`` seconds passed (``AmbiguousPublishError``: it may still be delivered).
    ``started``: what ``publish_at_once`` returned, if the driver called it first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    relay = pub._relay
    if started is TAKEN:
        pass
    elif relay is not None:
        yield from submit_one(pub, relay, encoded, sink)
    elif isinstance(started, InFlight):  # it found the queue full: it waits for room
        yield from _produce_when_room(pub, started, None, deadline)
    else:
        record = _lone_record(pub, encoded, sink)
        if pub._line.clear_for(None):
            try:
                pub._core.produce(record)
            except BufferError:
                yield from _produce_when_room(pub, record, None, deadline)
        else:  # others wait for room: queue behind them
            yield from _produce_when_room(pub, record, None, deadline)
        del record
    del started
    try:
        return (yield Wait(waitable, None if deadline is None else left(deadline, 0.0)))
    except TimeoutError:
        assert timeout is not None  # noqa: S101 - only a Wait with a timeout raises it
        raise call_timed_out_error(encoded, timeout) from None
    finally:
        # This frame is in the traceback of the error raised: holding the waitable (a
        # future holding that error) would make a cycle that keeps the event alive.
        del waitable, sink


def _lone_record(pub: PublisherBase, encoded: EncodedEvent, sink: Sink) -> InFlight:
    """The record of a lone event, its telemetry started (a send of one message)."""
    record = InFlight(encoded, sink)
    telemetry = pub._core.telemetry
    if telemetry is not None:
        telemetry.start(record)
    return record


def _produce_when_room(
    pub: PublisherBase,
    record: InFlight,
    turn: Turn | None,
    deadline: float | None = None,
    produce: Callable[[InFlight], None] | None = None,
) -> Flow[None]:
    """Wait in line for room, then produce (``produce``, or the publisher's own unless it
    closed meanwhile); ``QueueFullError`` after ``queue_full_timeout``, or at the caller's
    ``deadline`` if sooner (the event is then not accepted)."""
    limit = pub._config.queue_full_timeout
    if deadline is not None:
        limit = min(limit, left(deadline, 0.0))
    if not (yield Room(record, turn, limit, produce or pub._produce_unless_closing)):
        error = queue_full_error(record.encoded, limit)
        pub._core.fail_unsent(record, error)
        raise error


def publish_many(
    pub: PublisherBase, events: Sequence[Any], topic: str | None, batch: Batch
) -> Flow[list[PublishOutcome]]:
    """Events in order, until every one is settled (see ``AsyncPublisher.publish_many``)."""
    relay = pub._relay
    telemetry = pub._core.telemetry
    call = CallTelemetry(telemetry) if telemetry is not None else None
    try:
        if relay is not None:
            yield from _spool_batch(pub, relay, events, topic, batch, call=call)
        else:
            yield from _produce_batch(pub, events, topic, batch, call)
        batch.release()  # the producing caller's own hold
        yield Wait(batch.waitable)
    finally:
        if call is not None:
            call.end(batch.outcomes)
    return detached(batch.outcomes)  # type: ignore[arg-type]  # every slot is filled once done


def _produce_batch(  # noqa: PLR0915 - the per-event loop: a helper call per event costs
    pub: PublisherBase,
    events: Sequence[Any],
    topic: str | None,
    batch: Batch,
    call: CallTelemetry | None,
) -> Flow[None]:
    """Encode and produce every event into ``batch``.

    While it runs, the poll thread stands aside (one burst of reports afterwards instead of
    trading the GIL per delivery callback), except while the call waits for room, which only
    the poll thread can free. Every event holds the batch from the start; those whose outcome
    does not come through the core give their hold back at the end.
    """
    pub._refuse_outside_transaction()  # as _batch_encoder does; the loop encodes directly
    outcomes = batch.outcomes
    encode = pub._codec.encode
    core = pub._core
    breaker = core.breaker
    lifecycle = core.lifecycle
    open_ = State.OPEN
    prepare = call.prepare if call is not None and call.traces else None
    # Counted as taken at once (one lock for the call): each record produced uses one count,
    # and the counts not used are given back at the end.
    reservation = core.intake.reserve(len(events))
    produce = core.intake.take_over

    def produce_unless_closing(record: InFlight) -> None:
        pub._check_open()
        produce(record)

    line = pub._line
    waiting = line.waiting
    poll = core.poll
    blocked: dict[object, QueueFullError] = {}  # keys whose event found no room
    batch.hold(len(events))
    kept = 0  # events whose outcome comes through the core (produced or dead-lettered)
    turn = Turn()
    clock = time.perf_counter
    slice_end = clock() + LOOP_SLICE
    poll.batch_started()
    try:
        for index, event in enumerate(events):
            if not index % SLICE_CHECK and index:
                if not index % SERVE_EVERY:
                    core.serve_reports()
                if clock() >= slice_end:
                    yield BREATHE  # the poll thread keeps standing aside
                    slice_end = clock() + LOOP_SLICE
            if lifecycle.state is not open_:  # closing meanwhile: not the rest
                refuse_rest(outcomes, index, core.closed_message)
                break
            try:
                encoded = encode(event, topic)
                if breaker is not None and not breaker.closed:
                    raise core.refuse_open_breaker(encoded, lone=False)
            except EventwireError as exc:
                outcomes[index] = exc
                continue
            record = InFlight(encoded, batch, index)
            if prepare is not None:
                prepare(record)
            if blocked and (overtaking := _overtaking(record.encoded, blocked)):
                outcomes[index] = overtaking
                continue
            try:
                if not waiting or line.clear_for(turn):
                    try:
                        produce(record)
                        kept += 1
                        continue
                    except BufferError:
                        pass
                yield from _wait_in_batch(pub, record, turn, produce_unless_closing)
                kept += 1
            except QueueFullError as exc:
                outcomes[index] = exc
                if record.encoded.key is not None:
                    blocked[record.encoded.key] = exc
            except PublisherClosedError as exc:  # closed while it waited
                outcomes[index] = exc
                refuse_rest(outcomes, index + 1, str(exc))
                break
            except PublishError as exc:
                outcomes[index] = exc
    finally:
        reservation.release(used=kept)
        if kept < len(events):
            batch.release(len(events) - kept)
        poll.batch_ended()
        line.leave(turn)


def _wait_in_batch(
    pub: PublisherBase, record: InFlight, turn: Turn, produce: Callable[[InFlight], None]
) -> Flow[None]:
    """``_produce_when_room`` for a batch: the poll thread runs meanwhile (only it frees
    room)."""
    poll = pub._core.poll
    poll.batch_ended()
    try:
        yield from _produce_when_room(pub, record, turn, produce=produce)
    finally:
        poll.batch_started()


def _spool_batch(
    pub: PublisherBase,
    relay: Relay,
    events: Sequence[Any],
    topic: str | None,
    batch: Batch,
    *,
    call: CallTelemetry | None,
) -> Flow[None]:
    """``publish_many`` through the spool: every event's slot settles on delivery."""
    outcomes = batch.outcomes
    submissions, indexes = yield from encode_for_spool(
        pub, events, topic, outcomes, lambda _enc, _index: batch
    )
    batch.hold(len(submissions))
    refused = yield from submit(pub, relay, submissions, call)
    if refused is not None:
        first, error = refused
        for index in indexes[first:]:
            outcomes[index] = error
        batch.release(len(indexes) - first)


def _overtaking(enc: EncodedEvent, blocked: dict[object, QueueFullError]) -> QueueFullError | None:
    """``overtaking_error`` if an earlier event of ``enc``'s key in the call found no room."""
    earlier = blocked.get(enc.key)
    return None if earlier is None else overtaking_error(enc, earlier)
