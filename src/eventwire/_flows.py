"""The publishing flows, written once for both twins: publish, publish_many, accept,
accept_many and close.

Each flow is a generator that does the work and *yields what it waits for* (an operation
below); ``AsyncPublisher`` and ``Publisher`` are thin drivers that perform the wait their way
(awaiting, or blocking the calling thread) and send the result back in (httpx's
``Auth.auth_flow``, h11). So the twins cannot drift: the only code that differs between them
is how they wait, and the sinks their callers wait on.

What happens to an event, in order:

1. **codec** — validate, encode, key, CloudEvents headers. A bad event raises
   ``EventValidationError`` and never reaches Kafka;
2. **breaker** — while the circuit breaker is open the event is refused at once with
   ``CircuitOpenError``; with a spool it is committed to the spool instead and produced when
   the breaker closes (``_durable``);
3. **produce** — the core takes it; a full local queue makes the call wait for room (first
   come, first served, up to ``queue_full_timeout``, then ``QueueFullError``);
4. **outcome** — the core settles its delivery report, retries, dead-letters or fails it as
   ``_core.decisions`` says, and the caller's sink gets the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from eventwire._backpressure import Turn
from eventwire._codec import EncodedEvent
from eventwire._core.record import InFlight, Sink
from eventwire._core.state import State
from eventwire._durable.relay import Relay, Submission
from eventwire._errors import (
    EventwireError,
    PublisherClosedError,
    PublishError,
    QueueFullError,
    SpoolFullError,
)
from eventwire._messages import (
    CLOSED_MESSAGE,
    call_timed_out_error,
    overtaking_error,
    queue_full_error,
    spool_full_error,
)
from eventwire._outcome import CloseReport, PublishOutcome, detached

if TYPE_CHECKING:
    from eventwire._publisher import Batch, PublisherBase

_T = TypeVar("_T")

#: Events between two checks of the clock in a large call (see ``Breathe``).
SLICE_CHECK: Final = 256
#: A large call lets other work run this often (seconds): the async driver yields to the
#: event loop, so one large publish_many does not stall the application.
LOOP_SLICE: Final = 0.01
#: Events encoded for the spool between two such checks.
_SPOOL_SLICE: Final = SLICE_CHECK * 8
#: After its deadline a close has this long (seconds) for everything left: settling what it
#: gave up, stopping the poll thread (the last ``STOP_SHARE`` of it at least) and the spool
#: writer; so it returns within its timeout + about one second, whatever is left.
CLOSE_GRACE: Final = 0.75
STOP_SHARE: Final = 0.25
#: Most seconds one wait for room lasts before the flow checks its deadline again.
_TICK: Final = 0.1


# -- what a flow waits for --------------------------------------------------------------------


class Room:
    """Wait for the caller's turn and room in the local queue, then produce ``record``;
    the result is whether it was produced within ``limit`` seconds."""

    __slots__ = ("limit", "record", "turn")

    def __init__(self, record: InFlight, turn: Turn | None, limit: float) -> None:
        self.record = record
        self.turn = turn
        self.limit = limit


class Wait:
    """Wait for a sink or a commit made by the driver; the result is its outcome (or the
    error it holds is raised). With a ``timeout``, ``TimeoutError`` is raised when it passes
    first (the outcome is not cancelled: it is settled, counted and logged all the same)."""

    __slots__ = ("timeout", "waitable")

    def __init__(self, waitable: Any, timeout: float | None = None) -> None:
        self.waitable = waitable
        self.timeout = timeout


class Tick:
    """Wait until the core settled another batch of reports (room may have been freed), at
    most ``timeout`` seconds."""

    __slots__ = ("timeout",)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout


class Blocking:
    """Run a blocking call (off the event loop, for the async driver)."""

    __slots__ = ("args", "call")

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        self.call = call
        self.args = args


class Breathe:
    """Let other work run (the async driver yields to the event loop once)."""

    __slots__ = ()


BREATHE: Final = Breathe()
Operation = Room | Wait | Tick | Blocking | Breathe
Flow = Generator[Operation, Any, _T]


class _Step(Generic[_T]):
    """One flow being driven: the operation it waits on, or its result once it returned."""

    __slots__ = ("_flow", "op", "result", "running")

    def __init__(self, flow: Flow[_T]) -> None:
        self._flow = flow
        self.running = True
        self.op: Operation | None = None
        self.result: _T | None = None
        self.resume(None, None)

    def resume(self, value: Any, error: BaseException | None) -> None:
        """Send the wait's result (or throw its error) into the flow, up to its next wait.
        A wait's error raised again by the flow goes on to the driver's caller."""
        # Dropped first: an error raised from here has this step in its traceback, and the
        # operation (a future holding that error) would make a cycle keeping the event alive.
        self.op = None
        try:
            self.op = self._flow.send(value) if error is None else self._flow.throw(error)
        except StopIteration as stop:
            self.running = False
            self.result = stop.value
        finally:
            value = error = None  # this frame is in the traceback of an error raised here


def run(flow: Flow[_T], perform: Callable[[Any], Any]) -> _T:
    """Drive ``flow`` on this thread: ``perform(op)`` blocks for each wait it yields."""
    step = _Step(flow)
    while step.running:
        try:
            value = perform(step.op)
        except BaseException as exc:  # noqa: BLE001 - thrown into the flow
            step.resume(None, exc)
        else:
            step.resume(value, None)
    return step.result  # type: ignore[return-value]  # set once the flow returned


async def run_async(flow: Flow[_T], perform: Callable[[Any], Awaitable[Any]]) -> _T:
    """Drive ``flow`` on the event loop: ``await perform(op)`` for each wait it yields."""
    step = _Step(flow)
    while step.running:
        try:
            value = await perform(step.op)
        except BaseException as exc:  # noqa: BLE001 - thrown into the flow
            step.resume(None, exc)
        else:
            step.resume(value, None)
    return step.result  # type: ignore[return-value]  # set once the flow returned


# -- publishing ---------------------------------------------------------------------------------


def publish(
    pub: PublisherBase,
    encoded: EncodedEvent,
    sink: Sink,
    waitable: Any,
    timeout: float | None = None,
) -> Flow[Any]:
    """One event, until its outcome (``waitable`` is the driver's handle on ``sink``), or
    until ``timeout`` seconds passed (``AmbiguousPublishError``: it may still be delivered)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    relay = pub._relay
    if relay is not None:
        yield from submit_one(pub, relay, encoded, sink)
    else:
        record = pub._core.record(encoded, sink)
        if pub._line.clear_for(None):
            try:
                pub._core.produce(record)
            except BufferError:
                yield from _produce_when_room(pub, record, None, deadline)
        else:  # others wait for room: queue behind them
            yield from _produce_when_room(pub, record, None, deadline)
        del record
    try:
        return (yield Wait(waitable, None if deadline is None else _left(deadline, 0.0)))
    except TimeoutError:
        assert timeout is not None  # noqa: S101 - only a Wait with a timeout raises it
        raise call_timed_out_error(encoded, timeout) from None
    finally:
        # This frame is in the traceback of the error raised: holding the waitable (a
        # future holding that error) would make a cycle that keeps the event alive.
        del waitable, sink


def _produce_when_room(
    pub: PublisherBase, record: InFlight, turn: Turn | None, deadline: float | None = None
) -> Flow[None]:
    """Wait in line for room, then produce; ``QueueFullError`` after ``queue_full_timeout``,
    or at the caller's ``deadline`` if sooner (the event is then not accepted)."""
    limit = pub._config.queue_full_timeout
    if deadline is not None:
        limit = min(limit, _left(deadline, 0.0))
    if not (yield Room(record, turn, limit)):
        error = queue_full_error(record.encoded, limit)
        pub._core.fail_unsent(record, error)
        raise error


def publish_many(
    pub: PublisherBase, events: Sequence[Any], topic: str | None, batch: Batch
) -> Flow[list[PublishOutcome]]:
    """Events in order, until every one is settled (see ``AsyncPublisher.publish_many``)."""
    relay = pub._relay
    if relay is not None:
        yield from _spool_batch(pub, relay, events, topic, batch)
    else:
        yield from _produce_batch(pub, events, topic, batch)
    batch.release()  # the producing caller's own hold
    yield Wait(batch.waitable)
    return detached(batch.outcomes)  # type: ignore[arg-type]  # every slot is filled once done


def _produce_batch(  # noqa: PLR0915 - the per-event loop: a helper call per event costs
    pub: PublisherBase, events: Sequence[Any], topic: str | None, batch: Batch
) -> Flow[None]:
    """Encode and produce every event into ``batch``.

    While it runs, the poll thread stands aside (one burst of reports afterwards instead of
    trading the GIL per delivery callback), except while the call waits for room, which only
    the poll thread can free. Every event holds the batch from the start; those whose outcome
    does not come through the core give their hold back at the end.
    """
    outcomes = batch.outcomes
    encode = pub._batch_encoder()
    core = pub._core
    lifecycle = core.lifecycle
    produce = core.produce
    record_of = core.record
    line = pub._line
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
            if not index % SLICE_CHECK and clock() >= slice_end:
                yield BREATHE  # the poll thread keeps standing aside
                slice_end = clock() + LOOP_SLICE
            if lifecycle.state is not State.OPEN:  # closing meanwhile: not the rest
                _refuse_rest(outcomes, index, core.closed_message)
                break
            try:
                record = record_of(encode(event, topic), batch, index)
            except EventwireError as exc:
                outcomes[index] = exc
                continue
            if blocked and (overtaking := _overtaking(record.encoded, blocked)):
                outcomes[index] = overtaking
                continue
            try:
                if line.clear_for(turn):
                    try:
                        produce(record)
                        kept += 1
                        continue
                    except BufferError:
                        pass
                yield from _wait_in_batch(pub, record, turn)
                kept += 1
            except QueueFullError as exc:
                outcomes[index] = exc
                if record.encoded.key is not None:
                    blocked[record.encoded.key] = exc
            except PublisherClosedError as exc:  # closed while it waited
                outcomes[index] = exc
                _refuse_rest(outcomes, index + 1, str(exc))
                break
            except PublishError as exc:
                outcomes[index] = exc
    finally:
        if kept < len(events):
            batch.release(len(events) - kept)
        poll.batch_ended()
        line.leave(turn)


def _wait_in_batch(pub: PublisherBase, record: InFlight, turn: Turn) -> Flow[None]:
    """``_produce_when_room`` for a batch: the poll thread runs meanwhile (only it frees
    room)."""
    poll = pub._core.poll
    poll.batch_ended()
    try:
        yield from _produce_when_room(pub, record, turn)
    finally:
        poll.batch_started()


def _spool_batch(
    pub: PublisherBase, relay: Relay, events: Sequence[Any], topic: str | None, batch: Batch
) -> Flow[None]:
    """``publish_many`` through the spool: every event's slot settles on delivery."""
    outcomes = batch.outcomes
    submissions, indexes = yield from _encode_for_spool(
        pub, events, topic, outcomes, lambda _enc, _index: batch
    )
    batch.hold(len(submissions))
    refused = yield from submit(pub, relay, submissions)
    if refused is not None:
        first, error = refused
        for index in indexes[first:]:
            outcomes[index] = error
        batch.release(len(indexes) - first)


def _overtaking(enc: EncodedEvent, blocked: dict[object, QueueFullError]) -> QueueFullError | None:
    """``overtaking_error`` if an earlier event of ``enc``'s key in the call found no room."""
    earlier = blocked.get(enc.key)
    return None if earlier is None else overtaking_error(enc, earlier)


def _refuse_rest(outcomes: list[Any], first: int, message: str) -> None:
    """A call interrupted by a close: its events from ``first`` on were not accepted. They
    share one error: a large call's hundreds of thousands of exceptions would cost the closing
    process a full collection or two."""
    count = len(outcomes) - first
    outcomes[first:] = [PublisherClosedError(message)] * count


# -- the durable spool --------------------------------------------------------------------------


def accept(pub: PublisherBase, encoded: EncodedEvent, sink: Sink) -> Flow[None]:
    """Commit one event to the spool; returns once it is durable."""
    yield from submit_one(pub, pub._need_spool(), encoded, sink)


def accept_many(
    pub: PublisherBase,
    events: Sequence[Any],
    topic: str | None,
    results: list[Any],
    target: Callable[[EncodedEvent, int], Sink],
) -> Flow[None]:
    """Commit events to the spool in order; ``results[i]`` is set to the error that kept
    event ``i`` out (the driver set the handles of the others through ``target``)."""
    relay = pub._need_spool()
    submissions, indexes = yield from _encode_for_spool(pub, events, topic, results, target)
    refused = yield from submit(pub, relay, submissions)
    if refused is not None:
        first, error = refused
        for index in indexes[first:]:
            results[index] = error


def _encode_for_spool(
    pub: PublisherBase,
    events: Sequence[Any],
    topic: str | None,
    outcomes: list[Any],
    target: Callable[[EncodedEvent, int], Sink],
) -> Flow[tuple[list[Submission], list[int]]]:
    """Encode ``events`` into submissions; a refused event's error goes into ``outcomes`` at
    its index; ``target`` gives each event's sink. Returns the submissions and their
    indexes."""
    encode = pub._batch_encoder()
    lifecycle = pub._core.lifecycle
    submissions: list[Submission] = []
    indexes: list[int] = []
    for index, event in enumerate(events):
        if index and not index % _SPOOL_SLICE:
            yield BREATHE
            if lifecycle.state is not State.OPEN:  # closing meanwhile
                _refuse_rest(outcomes, index, pub._core.closed_message)
                break
        try:
            enc = encode(event, topic)
        except EventwireError as exc:
            outcomes[index] = exc
            continue
        submissions.append((enc, target(enc, index), index))
        indexes.append(index)
    return submissions, indexes


def submit_one(pub: PublisherBase, relay: Relay, encoded: EncodedEvent, sink: Sink) -> Flow[None]:
    refused = yield from submit(pub, relay, [(encoded, sink, 0)])
    if refused is not None:
        raise refused[1]


def submit(
    pub: PublisherBase, relay: Relay, submissions: Sequence[Submission]
) -> Flow[tuple[int, EventwireError] | None]:
    """Hand ``submissions`` to the spool writer in order, as room allows, and wait until they
    are committed. Returns ``None``, or ``(first, error)``: those from ``first`` on were not
    accepted (the spool stayed full, or the publisher closed).

    Raises:
        SpoolError: a commit failed.
    """
    lifecycle = pub._core.lifecycle
    commits = []
    done = 0
    refused: tuple[int, EventwireError] | None = None
    while done < len(submissions):
        if lifecycle.state is not State.OPEN:  # closing began while this call ran
            refused = (done, PublisherClosedError(CLOSED_MESSAGE))
            break
        room = relay.room()
        if room <= 0:
            try:
                yield from _spool_room(pub, relay, submissions[done][0])
            except (SpoolFullError, PublisherClosedError) as exc:
                refused = (done, exc)
                break
            continue
        part = submissions[done : done + room]
        on_commit, commit = pub._commit_waiter()
        try:
            relay.submit(part, on_commit)
        except PublisherClosedError as exc:  # closed while this call waited or encoded
            refused = (done, exc)
            break
        commits.append(commit)
        done += len(part)
    for commit in commits:
        yield Wait(commit)
    return refused


def _spool_room(pub: PublisherBase, relay: Relay, enc: EncodedEvent) -> Flow[None]:
    deadline = time.monotonic() + pub._config.spool_full_timeout
    while relay.room() <= 0:
        pub._check_open()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise spool_full_error(enc, relay.max_events, pub._config.spool_full_timeout)
        yield Tick(min(remaining, _TICK))


# -- closing ---------------------------------------------------------------------------------


def close(pub: PublisherBase, timeout: float) -> Flow[CloseReport]:
    """Stop accepting events, wait up to ``timeout`` seconds for outstanding deliveries, then
    fail (or leave in the spool) whatever is left. A second close waits for the first."""
    core = pub._core
    if core.lifecycle.closed:
        if not core.lifecycle.forked and not pub._close_done.is_set():
            yield Blocking(pub._close_done.wait, timeout + 1.0)
        return pub._report(timed_out=False, log=False)
    core.begin_close()
    try:
        return (yield from _close_now(pub, timeout))
    finally:
        pub._close_done.set()


def _close_now(pub: PublisherBase, timeout: float) -> Flow[CloseReport]:
    core = pub._core
    relay = pub._relay
    deadline = time.monotonic() + timeout
    if not core.poll.started:  # never used: nothing in flight (replayed rows stay stored)
        core.stop_polling(1.0)
        if relay is not None:
            relay.stop(1.0)
        return pub._report(timed_out=False)
    # A publish_many producing in another thread (or task) stops at its next event: what it
    # handed over is drained and counted, and nothing reaches the producer after a purge.
    yield Blocking(core.poll.batches_ended, timeout)
    if relay is not None:
        return (yield from _close_spooled(pub, relay, deadline))
    timed_out = not (yield from _drained(pub, deadline))
    grace = time.monotonic() + CLOSE_GRACE
    if timed_out:
        core.abandon()
        yield from _drained(pub, grace - STOP_SHARE)
    yield Blocking(core.stop_polling, _left(grace))
    # The poll thread may have been busy (a breaker probe blocks it up to probe_timeout):
    # its last reports still count if they are settled within the grace.
    yield from _drained(pub, grace)
    return pub._report(timed_out)


def _close_spooled(pub: PublisherBase, relay: Relay, deadline: float) -> Flow[CloseReport]:
    """Flush until ``deadline`` (or until nothing can move: breaker open), then leave the
    rest in the spool. Bounded like any close."""
    counters = pub._core.counters
    while relay.backlog > 0 and not (counters.outstanding <= 0 and relay.stalled()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        yield Tick(min(remaining, _TICK))
    timed_out = relay.backlog > 0
    relay.closing = True
    if counters.outstanding > 0:
        # Purged reports come back failed: the spool keeps those rows. They are settled by the
        # poll thread's last batch (no wait here: the spool has them anyway).
        pub._core.abandon()
    grace = time.monotonic() + CLOSE_GRACE
    yield Blocking(pub._core.stop_polling, _left(grace - STOP_SHARE))
    yield Blocking(relay.stop, _left(grace))
    pub._settle_left(relay)
    return pub._report(timed_out)


def _drained(pub: PublisherBase, deadline: float) -> Flow[bool]:
    counters = pub._core.counters
    while counters.outstanding > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        yield Tick(min(remaining, _TICK))
    return True


def _left(until: float, at_least: float = 0.1) -> float:
    """Seconds from now to ``until``, at least ``at_least`` (by default a last step of a
    close always gets a moment)."""
    return max(at_least, until - time.monotonic())
