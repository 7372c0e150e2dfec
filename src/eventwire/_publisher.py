"""AsyncPublisher and Publisher: thin twins over one ``ProducerCore``.

What happens to an event, in order (written once, here; the failure steps live in
``ProducerCore._on_failure``):

1. **codec** — validate (types, ``Meta`` constraints, timezone-aware datetimes, finite
   Decimals), encode, key, CloudEvents headers. A bad event raises ``EventValidationError``
   and never reaches Kafka;
2. **breaker** — while the circuit breaker is open the event is rejected at once with
   ``CircuitOpenError`` (nothing is sent); with a spool (``spool_path``) it is committed to
   the spool instead and produced when the breaker closes (``_spool.py`` owns that path:
   commit, then produce, delete on delivery, replay on start);
3. **produce** — hand it to librdkafka; a full local queue makes the call wait for room (up to
   ``queue_full_timeout``, then ``QueueFullError``), ``BufferError`` never escapes. An event
   whose key is being retried waits behind it;
4. **delivery report** — ``acks=all`` gives a ``DeliveryReceipt``. A failure is classified
   (retriable / permanent / fatal / ambiguous); a fatal one replaces the producer;
5. **retry** — retriable (and, by default, ambiguous) failures are re-sent with exponential
   backoff and jitter within the ``RetryPolicy``'s attempts and deadline, order per key kept;
6. **dead-letter** — permanent failures and exhausted retries go to the dead-letter topic if
   a ``DeadLetterPolicy`` is set (the caller gets ``DeadLetteredError``);
7. otherwise the caller gets the classified ``PublishError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Self

from eventwire._backpressure import AsyncRoomLine, RoomLine, Turn
from eventwire._codec import EncodedEvent, EventCodec, UserHeaders
from eventwire._config import PublisherConfig
from eventwire._errors import (
    CLOSED_MESSAGE,
    CircuitOpenError,
    ConfigError,
    EventwireError,
    PublisherClosedError,
    PublishError,
    QueueFullError,
    SpoolFullError,
)
from eventwire._events import event_batch
from eventwire._health import HealthStatus
from eventwire._logs import log as _log
from eventwire._outcome import (
    Accepted,
    CloseReport,
    DeliveryReceipt,
    PublishOutcome,
    SyncAccepted,
    detached,
)
from eventwire._producer import Pending, ProducerCore
from eventwire._spool import Spool, SpoolEntry, open_spool_file, run_callbacks, spool_for

SPOOL_NEEDED_MESSAGE = (
    "accept() needs a durable spool: PublisherConfig(spool_path=...); use publish() without one"
)
# An AsyncPublisher call encoding and producing many events lets the loop's other tasks run
# this often (seconds), so one large publish_many does not stall the application; the clock
# is read once per _SLICE_CHECK events.
_LOOP_SLICE = 0.01
_SLICE_CHECK = 256
# Events given up at close get no line each: the close's line names this many of them.
_LOGGED_IDS = 5
# After its deadline a close has this long (seconds) for everything left: settling what it
# gave up, stopping the poll thread (the last _STOP_SHARE of it at least) and the spool
# writer; so it returns within its timeout + about one second, whatever is left.
_CLOSE_GRACE = 0.75
_STOP_SHARE = 0.25


def _left(until: float, now: float) -> float:
    """Seconds from ``now`` to ``until``, at least 0.1: a last step always gets a moment."""
    return max(0.1, until - now)


def circuit_open_error(enc: EncodedEvent, reason: str | None) -> CircuitOpenError:
    """The error of an event refused because the circuit breaker is open."""
    return CircuitOpenError(
        f"event {enc.event_id} ({enc.event_type}) was not sent: the circuit breaker is "
        f"open ({reason or 'delivery failures'}); the cluster is considered unreachable",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
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


def _refuse_rest(outcomes: list[Any], first: int) -> int:
    """A call interrupted by a close: its events from ``first`` on were not accepted.
    They share one error: a large call's hundreds of thousands of exceptions would cost the
    closing process a full collection or two."""
    count = len(outcomes) - first
    outcomes[first:] = [PublisherClosedError(CLOSED_MESSAGE)] * count
    return count


def _overtaking(enc: EncodedEvent, blocked: dict[object, QueueFullError]) -> QueueFullError | None:
    """``overtaking_error`` if an earlier event of ``enc``'s key in the call found no room."""
    earlier = blocked.get(enc.key)
    return None if earlier is None else overtaking_error(enc, earlier)


#: Futures of one loop cannot be settled on another: a publisher serves the loop it met first.
OTHER_LOOP_MESSAGE = (
    "AsyncPublisher called from another event loop than the one it was first used on; "
    "create one publisher per event loop (nothing was sent)"
)


class _PublisherBase:
    """State and logic shared by both twins; no I/O waits live here."""

    def __init__(self, config: PublisherConfig) -> None:
        self._config = config
        spool_file = open_spool_file(config)  # first: a bad file is refused before librdkafka
        try:
            self._core = ProducerCore(config)
        except BaseException:
            if spool_file is not None:
                spool_file.close()
            raise
        try:
            self._spool: Spool | None = spool_for(self._core, spool_file)
        except BaseException:
            self._core.stop_polling(1.0)
            raise
        self._intake_stopped = False
        #: Set when the first close has finished; a second close waits for it.
        self._close_done = threading.Event()
        self._codec = EventCodec(
            encoding=config.encoding,
            validate=config.validate,
            source=config.ce_source,
            resolve_topic=config.resolve_topic,
        )

    def __del__(self) -> None:
        # Dropped unclosed: what it holds is still delivered (the poll thread keeps the core
        # alive), then its threads stop; the warning points at the missing close().
        core: ProducerCore | None = getattr(self, "_core", None)
        if core is None or core.closed or not core.polling:
            return
        core.orphaned = True
        warnings.warn(
            f"unclosed {type(self).__name__} ({core.outstanding} events outstanding): call "
            "close()/aclose() or use it as a context manager",
            ResourceWarning,
            source=self,
            stacklevel=2,
        )

    @property
    def config(self) -> PublisherConfig:
        """The configuration this publisher was built with."""
        return self._config

    @property
    def closed(self) -> bool:
        """Whether ``close``/``aclose`` was called."""
        return self._core.closed

    @property
    def breaker_state(self) -> str:
        """``"closed"`` (sending), ``"open"`` (failing fast) or ``"half_open"`` (probing);
        ``"disabled"`` without a breaker."""
        breaker = self._core.breaker
        return "disabled" if breaker is None else breaker.state

    @property
    def outstanding(self) -> int:
        """Events accepted whose outcome is not settled yet (with a spool: the spool's
        backlog, replayed events included)."""
        spool = self._spool
        return self._core.outstanding if spool is None else spool.backlog

    def _stop_intake(self) -> None:
        """Refuse new events from now on (``PublisherClosedError``); what was accepted goes
        on. Non-blocking: the shutdown helper calls it from a signal callback."""
        self._intake_stopped = True

    def _check_open(self) -> None:
        if self._core.closed or self._intake_stopped:
            raise PublisherClosedError(self._core.closed_message)

    def _produce_unless_closing(self, pending: Pending) -> None:
        """``core.produce`` for a caller that waited for room: a close may have begun since
        (the event is then not accepted: ``PublisherClosedError``)."""
        self._check_open()
        self._core.produce(pending)

    def _spool_full(self, enc: EncodedEvent) -> SpoolFullError:
        spool = self._spool
        limit = spool.max_events if spool is not None else 0
        return SpoolFullError(
            f"event {enc.event_id} ({enc.event_type}) was not accepted: the spool stayed full "
            f"({limit:,} events, spool_max_events) for {self._config.spool_full_timeout:g} s "
            "(is the broker reachable? raise spool_max_events or spool_full_timeout)",
            topic=enc.topic,
            event_id=enc.event_id,
            attempts=0,
        )

    def _need_spool(self) -> Spool:
        if self._spool is None:
            raise ConfigError(SPOOL_NEEDED_MESSAGE)
        return self._spool

    def _spool_entries(
        self,
        spool: Spool,
        events: Iterable[Any],
        topic: str | None,
        outcomes: list[Any],
        target: Callable[[EncodedEvent, int], Pending],
        *,
        first: int = 0,
    ) -> tuple[list[SpoolEntry], list[int]]:
        """Encode ``events`` into spool entries (``target`` makes each caller's outcome);
        a refused event's error goes into ``outcomes`` at its index (the first event's index
        is ``first``). Returns the entries and their indexes."""
        encode = self._batch_encoder()
        entries: list[SpoolEntry] = []
        indexes: list[int] = []
        for index, event in enumerate(events, first):
            try:
                enc = encode(event, topic)
            except EventwireError as exc:
                outcomes[index] = exc
                continue
            entries.append(SpoolEntry(enc, spool, target(enc, index)))
            indexes.append(index)
        return entries, indexes

    def _settle_left(self, spool: Spool) -> None:
        """After the writer stopped: callers of events still parked get the 'left in the
        spool' error (must run where outcomes may be settled)."""
        telemetry = self._core.telemetry
        for entry in spool.take_parked():
            error = spool.left_error(
                entry.encoded, maybe_written=getattr(entry, "maybe_written", False)
            )
            if telemetry is not None:
                telemetry.finish(entry, error)
            if entry.target is not None:
                entry.target.settle(error)

    def health(self) -> HealthStatus:
        """A snapshot of this publisher's health; cheap, never blocks (see ``HealthStatus``).

        The broker's reachability comes from a cached metadata probe that the poll thread
        runs at most every 0.5 s (1 s timeout) while ``health()`` is being called; the first
        call starts the probes and reports ``broker_reachable=None`` (not ready).
        """
        core = self._core
        probe = core.health_probe
        probe.want()
        breaker = self.breaker_state
        spool = core.spool_status()
        reasons = []
        if core.closed:
            reasons.append("publisher is closed")
        if probe.reachable is None:
            reasons.append("broker not probed yet")
        elif not probe.reachable:
            reasons.append("broker unreachable (metadata probe failed)")
        if breaker in ("open", "half_open"):
            reasons.append(f"circuit breaker is {breaker}")
        if self._spool is not None and self._spool.failure is not None:
            reasons.append(f"spool failed ({self._spool.failure}): events are refused")
        last_error = core.last_error
        return HealthStatus(
            ready=not reasons,
            reasons=tuple(reasons),
            broker_reachable=probe.reachable,
            probed_at=probe.probed_at,
            breaker_state=breaker,
            queue_depth=core.queue_depth(),
            outstanding=core.outstanding,
            spool_backlog=None if spool is None else spool[0],
            spool_oldest_age=None if spool is None else spool[1],
            delivered=core.delivered,
            failed=core.failed,
            last_error=None if last_error is None else self._config.scrub(last_error),
            last_error_at=core.last_error_at,
            closed=core.closed,
            checked_at=time.time(),
        )

    def _encode(
        self,
        event: Any,
        topic: str | None,
        key: str | bytes | None,
        headers: UserHeaders | None,
    ) -> EncodedEvent:
        """Steps 1 and 2: codec, then breaker (with a spool, an open breaker spools)."""
        self._check_open()
        encoded = self._codec.encode(event, topic, key, headers)
        breaker = self._core.breaker
        if breaker is not None and self._spool is None and not breaker.allows():
            raise self._circuit_open(encoded)
        return encoded

    def _circuit_open(self, enc: EncodedEvent) -> CircuitOpenError:
        breaker = self._core.breaker
        error = circuit_open_error(enc, breaker.last_reason if breaker is not None else None)
        if self._core.telemetry is not None:
            self._core.telemetry.rejected(enc, error)
        return error

    def _refused(self, pending: Pending, exc: PublishError) -> None:
        """librdkafka refused one ``publish``: dead-letter it (its outcome follows) or raise."""
        core = self._core
        error = core.refuse(pending, exc)
        if error is not None:
            core.untrack(1)
            try:
                raise error from exc.__cause__
            finally:
                del error, exc, pending  # the traceback holds this frame: no cycle through them

    def _batch_encoder(self) -> Callable[[Any, str | None], EncodedEvent]:
        """``encode(event, topic)`` for a batch: codec, then breaker (steps 1 and 2)."""
        encode = self._codec.encode
        breaker = self._core.breaker
        if breaker is None or self._spool is not None:
            return encode

        def encode_checked(event: Any, topic: str | None) -> EncodedEvent:
            encoded = encode(event, topic)
            if not breaker.allows():
                raise self._circuit_open(encoded)
            return encoded

        return encode_checked

    def _queue_full(self, pending: Pending) -> QueueFullError:
        error = queue_full_error(pending.encoded, self._config.queue_full_timeout)
        if self._core.telemetry is not None:
            self._core.telemetry.finish(pending, error)
        return error

    def _report(self, timed_out: bool, *, log: bool = True) -> CloseReport:
        core = self._core
        if core.forked:  # the parent's publisher, copied by os.fork(): nothing of this process
            return CloseReport(
                delivered=0, failed=0, undelivered=0, undelivered_event_ids=(), timed_out=False
            )
        failures, outstanding, failed = core.closing_state()
        spool = self._spool
        if spool is None:
            spooled = 0
            undelivered = len(failures) + outstanding
        else:
            # Failures the spool absorbed (parked, left) are not failures for the caller.
            spooled = undelivered = spool.backlog
            failed = spool.given_up
        report = CloseReport(
            delivered=core.delivered,
            failed=failed,
            undelivered=undelivered,
            undelivered_event_ids=failures,
            timed_out=timed_out,
            spooled=spooled,
        )
        if not log:
            return report
        _log.info(
            "eventwire.publisher_closed",
            delivered=report.delivered,
            failed=report.failed,
            undelivered=report.undelivered,
            spooled=report.spooled,
            timed_out=timed_out,
            first_undelivered_event_ids=report.undelivered_event_ids[:_LOGGED_IDS],
        )
        return report


# -- async ---------------------------------------------------------------------------------


class _FutureDelivery(Pending):
    __slots__ = ("future",)

    def __init__(self, encoded: EncodedEvent, future: asyncio.Future[DeliveryReceipt]) -> None:
        self.encoded = encoded
        self.future = future

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        if self.future.done():  # the caller cancelled its await; the outcome is dropped
            return
        try:
            if isinstance(outcome, DeliveryReceipt):
                self.future.set_result(outcome)
            else:
                self.future.set_exception(outcome)
        except RuntimeError:  # its loop is closed (settled on the poll thread): nobody waits
            if not self.future.get_loop().is_closed():
                raise


class _AcceptedDelivery(_FutureDelivery):
    """The delivery of an ``Accepted`` event; the caller may never ask for it."""

    __slots__ = ()

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        super().settle(outcome)
        if not isinstance(outcome, DeliveryReceipt) and not self.future.cancelled():
            # Marks the exception as retrieved: not awaiting delivered() is a legitimate
            # choice after accept(), not a forgotten error.
            self.future.exception()


def _commit_callback(commit: asyncio.Future[None]) -> Callable[[BaseException | None], None]:
    def committed(failure: BaseException | None) -> None:
        if commit.done():
            return
        if failure is None:
            commit.set_result(None)
        else:
            commit.set_exception(failure)

    return committed


class _LoopSettler:
    """Settles the poll thread's report batches on the loop, at most one per loop iteration.

    The first batch of an iteration is settled at once (no added latency); batches arriving in
    the same iteration wait for the next ones, in order, so the loop's other tasks run in
    between (a burst of 100,000 reports is ~25 batches).

    Batches handed over stay listed until settled: if the loop closes first (its pending
    callbacks are dropped), ``rescue`` settles them on the calling thread.
    """

    __slots__ = ("_core_settle", "_handed", "_loop", "_queued", "_rescue_lock", "_settling")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, settle: Callable[[list[Pending]], None]
    ) -> None:
        self._loop = loop
        self._core_settle = settle
        self._queued: deque[list[Pending]] = deque()
        self._settling = False
        self._handed: deque[list[Pending]] = deque()
        self._rescue_lock = threading.Lock()

    def hand_over(self, batch: list[Pending]) -> bool:
        """Poll thread: schedule ``batch`` on the loop; False if the loop is closed."""
        self._handed.append(batch)
        try:
            self._loop.call_soon_threadsafe(self.settle, batch)
        except RuntimeError:
            if not self._loop.is_closed():
                raise
            return False
        return True

    def rescue(self) -> None:
        """The loop is closed: settle on this thread what it never settled, in order."""
        with self._rescue_lock:
            handed = self._handed
            while handed:
                self._core_settle(handed.popleft())

    def _settle_now(self, batch: list[Pending]) -> None:
        handed = self._handed
        if handed and handed[0] is batch:
            handed.popleft()
        self._core_settle(batch)

    def settle(self, batch: list[Pending]) -> None:
        if self._settling:
            self._queued.append(batch)
            return
        self._settling = True
        try:
            self._settle_now(batch)
        finally:  # after the callers' wake-ups the settling scheduled
            self._loop.call_soon(self._next)

    def _next(self) -> None:
        queued = self._queued
        if not queued:
            self._settling = False
            return
        try:
            self._settle_now(queued.popleft())
        finally:
            self._loop.call_soon(self._next)


class _Batch:
    """Outcomes of one ``publish_many`` call; completes when every slot is settled.

    ``remaining`` starts at 1 — the producing caller's own hold — so the batch cannot complete
    while events are still being produced.
    """

    __slots__ = ("done", "outcomes", "remaining")

    def __init__(self, size: int) -> None:
        self.outcomes: list[PublishOutcome | None] = [None] * size
        self.remaining = 1
        self.done: Any = None

    def release(self) -> None:
        self.remaining -= 1
        # A caller cancelled while awaiting has cancelled `done`; the settling goes on (an
        # exception here would abort the rest of the report batch, and its counts).
        if self.remaining == 0 and not self.done.done():
            try:
                self.done.set_result(None)
            except RuntimeError:  # as in _FutureDelivery.settle
                if not self.done.get_loop().is_closed():
                    raise


class _BatchSlot(Pending):
    __slots__ = ("batch", "index")

    def __init__(self, encoded: EncodedEvent, batch: _Batch, index: int) -> None:
        self.encoded = encoded
        self.batch = batch
        self.index = index

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        batch = self.batch
        batch.outcomes[self.index] = outcome
        batch.release()


class AsyncPublisher(_PublisherBase):
    """Publishes events from asyncio code; one ``confluent_kafka.Producer`` underneath.

    Use it as an async context manager, or call ``aclose()``. All methods must be called from
    the event loop the publisher was first used on. Build it in the process that uses it: in
    a child forked after it was built it raises ``PublisherClosedError``.

    Example::

        async with eventwire.AsyncPublisher(config) as publisher:
            receipt = await publisher.publish(OrderPlaced(...))
    """

    def __init__(self, config: PublisherConfig) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settler: _LoopSettler | None = None
        self._room = asyncio.Event()
        self._line = AsyncRoomLine(self._room)

    async def __aenter__(self) -> Self:
        self._bind()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:  # a call from another loop could not be settled on it
            if asyncio.get_running_loop() is not loop:
                self._check_open()
                raise RuntimeError(OTHER_LOOP_MESSAGE)
        else:
            running = asyncio.get_running_loop()
            self._check_open()  # a closed (or forked) publisher starts no poll thread
            loop = self._loop = running
            core = self._core
            call_soon = loop.call_soon_threadsafe
            settler = self._settler = _LoopSettler(loop, core.settle)

            def hand_over(batch: list[Pending]) -> None:
                if not settler.hand_over(batch):
                    # No loop thread is left to settle on: the poll thread counts the
                    # outcomes itself (a close from a later loop reports them).
                    core.loop_closed(len(batch))
                    settler.rescue()

            def on_room() -> None:
                if not loop.is_closed():
                    room.set()

            room = self._room
            core.start(handoff=hand_over, on_room=on_room)
            if self._spool is not None:
                self._spool.start(lambda calls, failure: call_soon(run_callbacks, calls, failure))
        return loop

    async def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> DeliveryReceipt:
        """Publish one event and wait for Kafka's acknowledgement.

        Args:
            event: an instance of a class declared with ``@eventwire.event``.
            topic: send to this topic instead of the declared one (the publisher's remapping
                still applies).
            key: use this Kafka key instead of the event's key field.
            headers: extra record headers (names may repeat; str values are sent UTF-8). The
                headers eventwire sets (``ce_specversion``, ``ce_id``, ``ce_source``,
                ``ce_type``, ``ce_time``, ``ce_eventversion``, ``content-type``, in any case)
                are refused; other ``ce_*`` extensions may be given. When tracing records,
                the span's ``traceparent``/``tracestate`` replace the caller's.

        Returns:
            The receipt: topic, partition, offset, timestamp and event id.

        Raises:
            EventValidationError: the event does not match its schema (nothing was sent).
            QueueFullError: the local queue stayed full for ``queue_full_timeout`` seconds.
            PublishError: delivery failed; the subclass says how (retriable, permanent, fatal,
                ambiguous).
            PublisherClosedError: the publisher was closed.

        While other callers wait for room in a full local queue, this call waits behind them
        (first come, first served), so it never overtakes an earlier event of its key.
        Cancelling the call does not recall an event already handed to Kafka.
        """
        loop = self._bind()
        enc = self._encode(event, topic, key, headers)
        future: asyncio.Future[DeliveryReceipt] = loop.create_future()
        pending = _FutureDelivery(enc, future)
        try:
            if self._spool is not None:
                await self._accept_one(self._spool, pending)
                return await future
            core = self._core
            core.track(1)
            queued = bool(self._line.waiting)  # others wait for room: queue behind them
            try:
                if not queued:
                    core.produce(pending)
            except BufferError:
                queued = True
            except PublishError as exc:
                self._refused(pending, exc)
            if queued:
                try:
                    await self._produce_when_room(pending)
                except BaseException:  # not accepted: refused, or the caller was cancelled
                    core.untrack(1)
                    raise
            return await future
        finally:
            # The error raised has this frame in its traceback: holding it (in the future)
            # here would make a cycle that keeps the event until a full collection.
            del future, pending

    async def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[PublishOutcome]:
        """Publish events in order and wait until every one is settled.

        Returns:
            One outcome per event, in input order: its ``DeliveryReceipt``, or the error it met
            (``EventValidationError``, a ``PublishError`` subclass). Events with the same key
            keep their relative order: when one finds no room in the local queue in time
            (``QueueFullError``), the later events of its key in the call get a
            ``QueueFullError`` too (they would overtake it); other failures cancel nothing.
            Once the call waits for room it keeps its place: events of callers arriving later
            are produced after the rest of the call. An iterator or generator is read whole
            first, and every event and outcome is held until the call returns: for a long
            stream, call it per chunk (500,000 650-byte orders from a generator in one call:
            the process peaked at ~1 GB, ~0.6 GB of it the events).

        A large call lets the loop's other tasks run about every 10 ms while it encodes and
        produces; their events may be produced in between. Cancelling it stops producing:
        the events already handed to Kafka are still delivered.

        Raises:
            PublisherClosedError: the publisher was closed before the call.
        """
        loop = self._bind()
        self._check_open()
        events = event_batch(events, "publish_many")
        batch = _Batch(len(events))
        batch.done = loop.create_future()
        if self._spool is not None:
            await self._spool_batch(self._spool, events, batch, topic)
            batch.release()
            await batch.done
            return detached(batch.outcomes)  # type: ignore[arg-type]  # every slot is filled once done
        core = self._core
        core.track(len(events))
        core.batch_started()
        turn = Turn()
        try:
            refused = await self._produce_batch(events, batch, topic, turn)
        finally:
            core.batch_ended()
            self._line.leave(turn)
        if refused:
            core.untrack(refused)
        batch.release()
        await batch.done
        return detached(batch.outcomes)  # type: ignore[arg-type]  # every slot is filled once done

    async def _produce_batch(
        self, events: Sequence[Any], batch: _Batch, topic: str | None, turn: Turn
    ) -> int:
        """Encode and produce every event into ``batch``; returns how many were not accepted.

        While it runs, ``core.batch_started()`` keeps the poll thread waiting (one burst of
        reports afterwards instead of trading the GIL per delivery callback), except while it
        waits for queue room, which only the poll thread can free.
        """
        outcomes = batch.outcomes
        encode = self._batch_encoder()
        core = self._core
        produce = core.produce
        waiting = self._line.waiting
        blocked: dict[object, QueueFullError] = {}  # keys whose event found no room
        refused = 0
        index = 0
        clock = time.perf_counter
        slice_end = clock() + _LOOP_SLICE
        try:
            for index, event in enumerate(events):
                if not index % _SLICE_CHECK and clock() >= slice_end:
                    # The poll thread keeps standing aside: the reports wait for the batch.
                    await asyncio.sleep(0)
                    slice_end = clock() + _LOOP_SLICE
                    if self._intake_stopped or core.closed:  # closing meanwhile: not the rest
                        refused += _refuse_rest(outcomes, index)
                        break
                try:
                    pending = _BatchSlot(encode(event, topic), batch, index)
                except EventwireError as exc:
                    outcomes[index] = exc
                    refused += 1
                    continue
                if blocked and (overtaking := _overtaking(pending.encoded, blocked)):
                    outcomes[index] = overtaking
                    refused += 1
                    continue
                batch.remaining += 1
                try:
                    if waiting and waiting[0] is not turn:
                        raise BufferError  # others wait for room: queue behind them
                    produce(pending)
                except BufferError:
                    if not await self._produce_in_batch_when_room(pending, turn, blocked):
                        batch.remaining -= 1
                        refused += 1
                        if isinstance(outcomes[index], PublisherClosedError):
                            refused += _refuse_rest(outcomes, index + 1)
                            break
                except PublishError as exc:
                    error = core.refuse(pending, exc)
                    if error is not None:
                        outcomes[index] = error
                        batch.remaining -= 1
                        refused += 1
        except BaseException:  # cancelled while waiting: the rest was not accepted
            core.untrack(refused + len(events) - index)
            raise
        return refused

    async def _produce_in_batch_when_room(
        self, pending: _BatchSlot, turn: Turn, blocked: dict[object, QueueFullError]
    ) -> bool:
        """``_produce_when_room`` for ``_produce_batch``: the poll thread runs meanwhile (only
        it frees room). Returns whether the event was accepted; if not, its outcome is set."""
        core = self._core
        core.batch_ended()
        try:
            await self._produce_when_room(pending, turn)
        except (PublishError, PublisherClosedError) as exc:
            pending.batch.outcomes[pending.index] = exc
            if isinstance(exc, QueueFullError) and pending.encoded.key is not None:
                blocked[pending.encoded.key] = exc
            return False
        finally:
            core.batch_started()
        return True

    async def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> Accepted:
        """Commit one event to the durable spool and return as soon as it is durable.

        A separate method rather than a mode of ``publish``: ``publish`` keeps meaning
        "acknowledged by Kafka" and returns a ``DeliveryReceipt``; ``accept`` means "will reach
        Kafka, even if this process dies now" and returns an ``Accepted`` whose ``delivered()``
        waits for the receipt. Arguments are those of ``publish``.

        Returns:
            The ``Accepted`` handle (event id, topic, ``await delivered()``).

        Raises:
            ConfigError: the publisher has no spool (``PublisherConfig(spool_path=...)``).
            EventValidationError: the event does not match its schema (nothing was written).
            SpoolFullError: the spool stayed full for ``spool_full_timeout`` seconds.
            SpoolError: the spool file could not be written (e.g. disk full).
            PublisherClosedError: the publisher was closed (or is shutting down).

        Cancelling the call after the event was handed to the spool writer does not take it
        back: it may still be committed and delivered.
        """
        spool = self._need_spool()
        loop = self._bind()
        enc = self._encode(event, topic, key, headers)
        future: asyncio.Future[DeliveryReceipt] = loop.create_future()
        await self._accept_one(spool, _AcceptedDelivery(enc, future))
        return Accepted(enc.event_id, enc.topic, future)

    async def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[Accepted | EventwireError]:
        """Commit events to the durable spool in order (few transactions) and return once
        they are durable.

        Returns:
            One entry per event, in input order: its ``Accepted`` handle, or the error that
            kept it out (``EventValidationError``, ``SpoolFullError``).

        Raises:
            ConfigError: the publisher has no spool.
            SpoolError: the spool file could not be written.
            PublisherClosedError: the publisher was closed before the call.
        """
        spool = self._need_spool()
        loop = self._bind()
        self._check_open()
        events = event_batch(events, "accept_many")
        results: list[Accepted | EventwireError] = [None] * len(events)  # type: ignore[list-item]

        def accepted(enc: EncodedEvent, index: int) -> Pending:
            future: asyncio.Future[DeliveryReceipt] = loop.create_future()
            results[index] = Accepted(enc.event_id, enc.topic, future)
            return _AcceptedDelivery(enc, future)

        entries, indexes = await self._spool_entries_sliced(spool, events, topic, results, accepted)
        refused = await self._spool_submit(spool, entries)
        if refused is not None:
            first, error = refused
            for index in indexes[first:]:
                results[index] = error
        return results

    async def _spool_entries_sliced(
        self,
        spool: Spool,
        events: Sequence[Any],
        topic: str | None,
        outcomes: list[Any],
        target: Callable[[EncodedEvent, int], Pending],
    ) -> tuple[list[SpoolEntry], list[int]]:
        """``_spool_entries`` in slices, letting the loop's other tasks run in between."""
        entries: list[SpoolEntry] = []
        indexes: list[int] = []
        size = _SLICE_CHECK * 8
        for start in range(0, len(events), size):
            if start:
                await asyncio.sleep(0)
                if self._intake_stopped or self._core.closed:  # closing meanwhile
                    _refuse_rest(outcomes, start)
                    break
            part = [events[index] for index in range(start, min(start + size, len(events)))]
            more, where = self._spool_entries(spool, part, topic, outcomes, target, first=start)
            entries += more
            indexes += where
        return entries, indexes

    async def _accept_one(self, spool: Spool, target: Pending) -> None:
        refused = await self._spool_submit(spool, [SpoolEntry(target.encoded, spool, target)])
        if refused is not None:
            raise refused[1]

    async def _spool_batch(
        self, spool: Spool, events: Sequence[Any], batch: _Batch, topic: str | None
    ) -> None:
        """``publish_many`` through the spool: every event's slot settles on delivery."""
        outcomes = batch.outcomes

        def slot(enc: EncodedEvent, index: int) -> Pending:
            batch.remaining += 1
            return _BatchSlot(enc, batch, index)

        entries, indexes = await self._spool_entries_sliced(spool, events, topic, outcomes, slot)
        refused = await self._spool_submit(spool, entries)
        if refused is not None:
            first, error = refused
            for index in indexes[first:]:
                outcomes[index] = error
                batch.remaining -= 1

    async def _spool_submit(
        self, spool: Spool, entries: Sequence[SpoolEntry]
    ) -> tuple[int, EventwireError] | None:
        """Hand ``entries`` to the spool writer in order, as room allows, and wait until
        they are committed. Returns ``None``, or ``(first, error)``: entries from ``first``
        on were not accepted (the spool stayed full, or the publisher closed).

        Raises:
            SpoolError: a commit failed.
        """
        loop = self._loop or self._bind()
        commits: list[asyncio.Future[None]] = []
        done = 0
        refused: tuple[int, EventwireError] | None = None
        while done < len(entries):
            if self._intake_stopped or self._core.closed:  # closing began while this call ran
                refused = (done, PublisherClosedError(CLOSED_MESSAGE))
                break
            room = spool.room()
            if room <= 0:
                try:
                    await self._spool_room(spool, entries[done].encoded)
                except (SpoolFullError, PublisherClosedError) as exc:
                    refused = (done, exc)
                    break
                continue
            part = entries[done : done + room]
            commit: asyncio.Future[None] = loop.create_future()
            try:
                spool.submit(part, _commit_callback(commit))
            except PublisherClosedError as exc:  # closed while this call waited or encoded
                refused = (done, exc)
                break
            commits.append(commit)
            done += len(part)
        for commit in commits:
            await commit
        return refused

    async def _spool_room(self, spool: Spool, enc: EncodedEvent) -> None:
        loop = self._loop or self._bind()
        deadline = loop.time() + self._config.spool_full_timeout
        room = self._room
        while spool.room() <= 0:
            self._check_open()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._spool_full(enc)
            room.clear()
            try:
                await asyncio.wait_for(room.wait(), min(remaining, 0.1))
            except TimeoutError:
                continue

    async def _produce_when_room(self, pending: Pending, turn: Turn | None = None) -> None:
        """Wait in line for room in the local queue, then produce (first come, first served:
        see ``_backpressure``); ``QueueFullError`` after the configured timeout (the event is
        then not accepted)."""
        line = self._line
        if not await line.produce(
            self._produce_unless_closing, pending, self._config.queue_full_timeout, turn
        ):
            raise self._queue_full(pending)

    async def aclose(self, timeout: float = 30.0) -> CloseReport:  # noqa: ASYNC109 - the API
        """Stop accepting events, wait up to ``timeout`` seconds for outstanding deliveries,
        then fail whatever is left (its callers get a ``PublishError``). With a spool, what is
        left stays in the spool file instead (``CloseReport.spooled``), delivered on the next
        start; waiting callers get a ``RetriablePublishError`` with ``code="SPOOLED"``.

        Always returns within ``timeout`` + about one second, even with the broker gone and
        hundreds of thousands of events in flight. Events given up get no log line each (the
        close's ``eventwire.publisher_closed`` line counts them, the report lists them);
        those whose purge is still being settled when it returns count as undelivered.
        Calling it again waits for the first close to finish (e.g. one `GracefulShutdown`
        started), within its own ``timeout``, then returns a fresh report.
        """
        core = self._core
        if core.closed:
            if not self._close_done.is_set() and not core.forked:
                await asyncio.to_thread(self._close_done.wait, timeout + 1.0)
            return self._report(timed_out=False, log=False)
        core.begin_close()
        try:
            return await self._close_now(timeout)
        finally:
            self._close_done.set()

    async def _close_now(self, timeout: float) -> CloseReport:  # noqa: ASYNC109 - as aclose
        core = self._core
        loop = self._loop
        if loop is None:  # never used: nothing in flight (replayed rows stay in the spool)
            core.stop_polling(1.0)
            if self._spool is not None:
                self._spool.stop(1.0)
            return self._report(timed_out=False)
        deadline = loop.time() + timeout
        spool = self._spool
        if spool is not None:
            return await self._aclose_spooled(spool, deadline)
        timed_out = not await self._drained(deadline)
        grace = loop.time() + _CLOSE_GRACE
        if timed_out:
            core.abandon()
            await self._drained(grace - _STOP_SHARE)
        await asyncio.to_thread(core.stop_polling, _left(grace, loop.time()))
        # The poll thread may have been busy (a breaker probe blocks it up to probe_timeout):
        # its last reports still count if they are settled within the grace.
        await self._drained(grace)
        return self._report(timed_out)

    async def _aclose_spooled(self, spool: Spool, deadline: float) -> CloseReport:
        """Flush until ``deadline`` (or until nothing can move: breaker open), then leave the
        rest in the spool file. Bounded like ``aclose``."""
        loop = self._loop or self._bind()
        core = self._core
        room = self._room
        while spool.backlog > 0 and not (core.outstanding <= 0 and spool.stalled()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            room.clear()
            try:
                await asyncio.wait_for(room.wait(), min(remaining, 0.1))
            except TimeoutError:
                continue
        timed_out = spool.backlog > 0
        spool.closing = True
        if core.outstanding > 0:
            # Purged reports come back failed: the spool keeps those rows. They are settled
            # by the poll thread's last batch (no wait here: the spool has them anyway).
            core.abandon()
        # That last batch is settled (acks queued) before this returns: the handoff's
        # call_soon_threadsafe callbacks run before to_thread's completion.
        grace = loop.time() + _CLOSE_GRACE
        await asyncio.to_thread(core.stop_polling, _left(grace - _STOP_SHARE, loop.time()))
        await asyncio.to_thread(spool.stop, _left(grace, loop.time()))
        self._settle_left(spool)
        return self._report(timed_out)

    async def _drained(self, deadline: float) -> bool:
        loop = self._loop or self._bind()
        core = self._core
        while core.outstanding > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if asyncio.get_running_loop() is not loop:
                # Closed from a later loop: reports are settled on the poll thread, which
                # never wakes this loop's tasks; what the ended loop dropped is settled here.
                if loop.is_closed() and self._settler is not None:
                    self._settler.rescue()
                await asyncio.to_thread(
                    core.wait_for_room, core.room_generation, min(remaining, 0.1)
                )
                continue
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), min(remaining, 0.1))
            except TimeoutError:
                continue
        return True


# -- sync ----------------------------------------------------------------------------------


class _SyncDelivery(Pending):
    __slots__ = ("event", "outcome")

    def __init__(self, encoded: EncodedEvent) -> None:
        self.encoded = encoded
        self.event = threading.Event()
        self.outcome: DeliveryReceipt | PublishError | None = None

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        self.outcome = outcome
        self.event.set()


class _ThreadFutureDelivery(Pending):
    """The delivery of a ``SyncAccepted`` event: a thread-safe future any thread may wait on."""

    __slots__ = ("future",)

    def __init__(
        self, encoded: EncodedEvent, future: concurrent.futures.Future[DeliveryReceipt]
    ) -> None:
        self.encoded = encoded
        self.future = future

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        if isinstance(outcome, DeliveryReceipt):
            self.future.set_result(outcome)
        else:
            self.future.set_exception(outcome)


def _sync_accepted(enc: EncodedEvent) -> tuple[SyncAccepted, Pending]:
    future: concurrent.futures.Future[DeliveryReceipt] = concurrent.futures.Future()
    return SyncAccepted(enc.event_id, enc.topic, future), _ThreadFutureDelivery(enc, future)


class _SyncBatch(_Batch):
    __slots__ = ("lock",)

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.lock = threading.Lock()
        self.done = threading.Event()

    def release(self, count: int = 1) -> None:
        with self.lock:
            self.remaining -= count
            finished = self.remaining == 0
        if finished:
            self.done.set()

    def hold(self) -> None:
        with self.lock:
            self.remaining += 1


class _Commit:
    """A sync caller waiting for its submission to be committed."""

    __slots__ = ("event", "failure")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.failure: BaseException | None = None

    def __call__(self, failure: BaseException | None) -> None:
        self.failure = failure
        self.event.set()

    def wait(self) -> None:
        self.event.wait()
        if self.failure is not None:
            raise self.failure


class Publisher(_PublisherBase):
    """The synchronous twin of ``AsyncPublisher``: same core, same guarantees.

    Thread-safe: several threads may publish through one instance. Build it in the process
    that uses it: in a child forked after it was built it raises ``PublisherClosedError``.

    Example::

        with eventwire.Publisher(config) as publisher:
            receipt = publisher.publish(OrderPlaced(...))
    """

    def __init__(self, config: PublisherConfig) -> None:
        super().__init__(config)
        self._line = RoomLine(self._core)
        self._core.start()
        if self._spool is not None:
            self._spool.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> DeliveryReceipt:
        """Publish one event and block until Kafka acknowledges it.

        Arguments, result and errors are those of ``AsyncPublisher.publish``. The wait is
        bounded by ``delivery_timeout`` (librdkafka reports every message by then). A call
        that finds other threads waiting for room in a full local queue waits behind them
        (first come, first served); threads that reach a full queue at the same moment are
        not ordered among themselves.
        """
        enc = self._encode(event, topic, key, headers)
        pending = _SyncDelivery(enc)
        core = self._core
        if self._spool is not None:
            refused = self._spool_submit(self._spool, [SpoolEntry(enc, self._spool, pending)])
            if refused is not None:
                raise refused[1]
        else:
            core.track(1)
            try:
                self._produce(pending)
            except PublishError as exc:
                if isinstance(exc, QueueFullError):
                    core.untrack(1)
                    raise
                self._refused(pending, exc)
            except BaseException:  # interrupted (Ctrl-C) while waiting for room: not accepted
                core.untrack(1)
                raise
        pending.event.wait()
        outcome = pending.outcome
        if isinstance(outcome, DeliveryReceipt):
            return outcome
        try:
            raise outcome or PublishError(
                "no outcome", topic=pending.encoded.topic, event_id=pending.encoded.event_id
            )
        finally:
            # The traceback holds this frame: keeping the error here would make a cycle.
            del outcome, pending

    def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[PublishOutcome]:
        """Publish events in order and block until every one is settled.

        Returns and raises as ``AsyncPublisher.publish_many``, with the same order per key.
        Once the call waits for room it keeps its place: events of calls that start waiting
        later (from other threads) are produced after the rest of this call.
        """
        self._check_open()
        events = event_batch(events, "publish_many")
        batch = _SyncBatch(len(events))
        if self._spool is not None:
            self._spool_batch(self._spool, events, batch, topic)
        else:
            self._produce_batch(events, batch, topic)
        batch.release()
        batch.done.wait()
        return detached(batch.outcomes)  # type: ignore[arg-type]  # every slot is filled once done

    def _produce_batch(self, events: Sequence[Any], batch: _SyncBatch, topic: str | None) -> None:
        """Encode and produce every event into ``batch`` (the sync twin of
        ``AsyncPublisher._produce_batch``)."""
        outcomes = batch.outcomes
        encode = self._batch_encoder()
        core = self._core
        core.track(len(events))
        # Every event holds the batch from the start (no lock per event); the ones whose
        # outcome does not come through the core give their hold back at the end.
        batch.remaining += len(events)
        turn = Turn()
        blocked: dict[object, QueueFullError] = {}  # keys whose event found no room
        kept = 0  # events whose outcome comes through the core (produced or dead-lettered)
        core.batch_started()
        try:
            for index, event in enumerate(events):
                if core.closed or self._intake_stopped:  # closed by another thread meanwhile
                    _refuse_rest(outcomes, index)
                    break
                try:
                    pending = _BatchSlot(encode(event, topic), batch, index)
                except EventwireError as exc:
                    outcomes[index] = exc
                    continue
                if blocked and (overtaking := _overtaking(pending.encoded, blocked)):
                    outcomes[index] = overtaking
                    continue
                try:
                    self._produce(pending, turn, in_batch=True)
                    kept += 1
                except QueueFullError as exc:
                    outcomes[index] = exc
                    if pending.encoded.key is not None:
                        blocked[pending.encoded.key] = exc
                except PublisherClosedError as exc:  # closed by another thread while waiting
                    outcomes[index] = exc
                    _refuse_rest(outcomes, index + 1)
                    break
                except PublishError as exc:
                    error = core.refuse(pending, exc)
                    if error is None:
                        kept += 1
                    else:
                        outcomes[index] = error
        finally:
            # The rest was refused, or never reached when interrupted (Ctrl-C): a close must
            # not wait for it (untracked before the close that waits for this batch goes on).
            if kept < len(events):
                core.untrack(len(events) - kept)
                batch.release(len(events) - kept)
            core.batch_ended()
            self._line.leave(turn)

    def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> SyncAccepted:
        """Commit one event to the durable spool and return as soon as it is durable.

        The sync twin of ``AsyncPublisher.accept``: arguments and errors are the same;
        returns a ``SyncAccepted`` whose ``wait_delivered(timeout)`` blocks for the receipt.
        """
        spool = self._need_spool()
        enc = self._encode(event, topic, key, headers)
        accepted, target = _sync_accepted(enc)
        refused = self._spool_submit(spool, [SpoolEntry(enc, spool, target)])
        if refused is not None:
            raise refused[1]
        return accepted

    def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[SyncAccepted | EventwireError]:
        """Commit events to the durable spool in order and return once they are durable.

        The sync twin of ``AsyncPublisher.accept_many``: one ``SyncAccepted`` (or the error
        that kept the event out) per event, in input order; raises the same errors.
        """
        spool = self._need_spool()
        self._check_open()
        events = event_batch(events, "accept_many")
        results: list[SyncAccepted | EventwireError] = [None] * len(events)  # type: ignore[list-item]

        def accepted(enc: EncodedEvent, index: int) -> Pending:
            results[index], target = _sync_accepted(enc)
            return target

        entries, indexes = self._spool_entries(spool, events, topic, results, accepted)
        refused = self._spool_submit(spool, entries)
        if refused is not None:
            first, error = refused
            for index in indexes[first:]:
                results[index] = error
        return results

    def _spool_batch(
        self, spool: Spool, events: Sequence[Any], batch: _SyncBatch, topic: str | None
    ) -> None:
        outcomes = batch.outcomes

        def slot(enc: EncodedEvent, index: int) -> Pending:
            batch.hold()
            return _BatchSlot(enc, batch, index)

        entries, indexes = self._spool_entries(spool, events, topic, outcomes, slot)
        refused = self._spool_submit(spool, entries)
        if refused is not None:
            first, error = refused
            for index in indexes[first:]:
                outcomes[index] = error
                batch.release()

    def _spool_submit(
        self, spool: Spool, entries: Sequence[SpoolEntry]
    ) -> tuple[int, EventwireError] | None:
        """The sync twin of ``AsyncPublisher._spool_submit``: blocks until committed."""
        commits: list[_Commit] = []
        done = 0
        refused: tuple[int, EventwireError] | None = None
        while done < len(entries):
            if self._intake_stopped or self._core.closed:  # closed by another thread meanwhile
                refused = (done, PublisherClosedError(CLOSED_MESSAGE))
                break
            room = spool.room()
            if room <= 0:
                try:
                    self._spool_room(spool, entries[done].encoded)
                except (SpoolFullError, PublisherClosedError) as exc:
                    refused = (done, exc)
                    break
                continue
            part = entries[done : done + room]
            commit = _Commit()
            try:
                spool.submit(part, commit)
            except PublisherClosedError as exc:  # closed by another thread meanwhile
                refused = (done, exc)
                break
            commits.append(commit)
            done += len(part)
        for commit in commits:
            commit.wait()
        return refused

    def _spool_room(self, spool: Spool, enc: EncodedEvent) -> None:
        core = self._core
        deadline = time.monotonic() + self._config.spool_full_timeout
        while spool.room() <= 0:
            self._check_open()
            generation = core.room_generation
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._spool_full(enc)
            core.wait_for_room(generation, min(remaining, 0.1))

    def _produce(
        self, pending: Pending, turn: Turn | None = None, *, in_batch: bool = False
    ) -> None:
        """Produce, or wait in line for room (first come, first served: see
        ``_backpressure``); ``QueueFullError`` after the configured timeout.

        ``in_batch``: the caller holds ``core.batch_started()``, given up while it waits (only
        the poll thread frees room, and a caller ahead in line waits for it too).
        """
        core = self._core
        line = self._line
        if line.clear_for(turn):
            try:
                core.produce(pending)
                return
            except BufferError:
                pass
        if in_batch:
            core.batch_ended()
        try:
            produced = line.produce(
                self._produce_unless_closing, pending, self._config.queue_full_timeout, turn
            )
        finally:
            if in_batch:
                core.batch_started()
        if not produced:
            raise self._queue_full(pending)

    def close(self, timeout: float = 30.0) -> CloseReport:
        """Stop accepting events, wait up to ``timeout`` seconds for outstanding deliveries,
        then fail whatever is left. Bounded like ``AsyncPublisher.aclose``; called again, it
        waits for the first close to finish (within its own ``timeout``), then reports."""
        core = self._core
        if core.closed:
            if not core.forked:
                self._close_done.wait(timeout + 1.0)
            return self._report(timed_out=False, log=False)
        core.begin_close()
        try:
            return self._close_now(timeout)
        finally:
            self._close_done.set()

    def _close_now(self, timeout: float) -> CloseReport:
        core = self._core
        deadline = time.monotonic() + timeout
        # A publish_many producing in another thread stops at its next event: what it
        # handed over is drained and counted, and nothing reaches the producer after a purge.
        core.batches_ended(timeout)
        spool = self._spool
        if spool is not None:
            return self._close_spooled(spool, deadline)
        timed_out = not self._drained(deadline)
        grace = time.monotonic() + _CLOSE_GRACE
        if timed_out:
            core.abandon()
            self._drained(grace - _STOP_SHARE)
        core.stop_polling(_left(grace, time.monotonic()))
        self._drained(grace)  # as in AsyncPublisher._close_now
        return self._report(timed_out)

    def _close_spooled(self, spool: Spool, deadline: float) -> CloseReport:
        core = self._core
        while spool.backlog > 0 and not (core.outstanding <= 0 and spool.stalled()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            core.wait_for_room(core.room_generation, min(remaining, 0.1))
        timed_out = spool.backlog > 0
        spool.closing = True
        if core.outstanding > 0:
            core.abandon()  # settled by the poll thread's last batch; the rows stay
        grace = time.monotonic() + _CLOSE_GRACE
        core.stop_polling(_left(grace - _STOP_SHARE, time.monotonic()))
        spool.stop(_left(grace, time.monotonic()))
        self._settle_left(spool)
        return self._report(timed_out)

    def _drained(self, deadline: float) -> bool:
        core = self._core
        while core.outstanding > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            core.wait_for_room(core.room_generation, min(remaining, 0.1))
        return True
