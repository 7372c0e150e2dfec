"""The relay: commits accepted events to a store, produces them, and removes them once done.

An event is *accepted* once its row is committed; it is produced after the commit and its row
is removed after its delivery report (or once it can never be delivered: permanent failure,
dead-lettered). Whatever is left — the process was killed, the close deadline passed, the
broker stayed down — is replayed on the next start, before any new event, in its original
order (``seq``), with the same bytes, key and headers, so it keeps its ``ce_id``.

Threads: one writer thread owns the store. Callers submit events (thread-safe); the writer
takes everything submitted so far, writes it in one transaction with the pending removals
(group commit: the wait for a commit is bounded by the duration of the commit in progress,
and a transaction holds at most ``MAX_BATCH`` events), then hands the commit notifications to
the publisher in one call (the event loop thread, for the async publisher), then produces the
committed events in order. Delivery reports reach ``StoredSink.settle`` on the thread that
settles reports; acks are queued and removed in the next transaction.

While the circuit breaker is open, committed events are *parked* (not produced) and drained,
in ``seq`` order, when it closes. An event whose delivery failed after the retry policy gave
up is parked by the core (a durable record): it stays the head of its key's hold, so later
events of that key wait behind it, and is produced again after ``PARK_DELAY``: it never leaves
the store until Kafka acknowledged it, and nothing of its key overtakes it.

The relay needs of the store only the ``Store`` protocol, and of the producer only ``Sender``.
A store that others write to (the outbox table) is also a ``Source``: at every turn the
writer fetches what it has to produce, and hands those events over like replayed ones.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from eventwire._codec import EncodedEvent
from eventwire._core.decisions import PARK_DELAY
from eventwire._core.record import InFlight, Sink
from eventwire._durable.store import Source, Store, StoredEvent
from eventwire._errors import PublisherClosedError, PublishError, SpoolError
from eventwire._logs import log as _log
from eventwire._messages import CLOSED_MESSAGE, left_in_spool_error
from eventwire._outcome import DeliveryReceipt

if TYPE_CHECKING:
    from eventwire._telemetry import CallTelemetry, Instrumentation


#: Most events written in one transaction.
MAX_BATCH: Final = 20_000
#: How long the writer sleeps when idle; bounds how late acks are removed and parked events
#: are drained.
IDLE_WAIT: Final = 0.05
#: Outcomes after which an event can never be delivered: its row is removed.
_FINAL: Final = frozenset({"permanent", "dead_lettered"})
#: The stamp of events built outside a submission (tests writing a store directly).
_NO_STAMP: Final[list[float]] = [0.0, 0.0]

#: Runs once a submission is durable (``None``) or could not be written (the error).
Callback = Callable[[BaseException | None], None]
Handoff = Callable[[list[Callback], BaseException | None], object]
#: One event to submit: the record, and where its caller waits (``None``: nobody waits), at
#: which slot of that sink.
Submission = tuple[EncodedEvent, Sink | None, int]


class Sender(Protocol):
    """What the relay needs of the producer core."""

    telemetry: Instrumentation | None

    def record(self, encoded: EncodedEvent, sink: Sink, slot: int = 0) -> InFlight: ...

    def produce(self, record: InFlight) -> None: ...

    def allows(self) -> bool: ...

    def room_generation(self) -> int: ...

    def wait_for_room(self, generation: int, timeout: float) -> bool: ...


class StoredSink:
    """The sink of a stored event: its report removes (or parks) its row, then its caller's
    own sink (``target``) is settled."""

    __slots__ = ("relay", "seq", "stamp", "target")

    def __init__(self, relay: Relay, target: Sink | None) -> None:
        self.relay = relay
        self.target = target
        self.seq = 0
        #: ``[accepted at (epoch s), events of that submission not done yet]``, shared by
        #: the events of one submission (for the age of the oldest stored event).
        self.stamp: list[float] = _NO_STAMP

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        relay = self.relay
        target = self.target
        if isinstance(outcome, DeliveryReceipt):
            relay.ack(self)
        elif relay.closing:
            # Purged at the close deadline: the row stays and is replayed on the next start.
            outcome = relay.left_error(record)
        elif outcome.category in _FINAL:
            relay.ack(self, given_up=True)
        else:  # the core parks durable events itself; kept as a safety net
            relay.park(record, failed=True)
            return
        if target is not None:
            target.settle(record, outcome)


def _seq(record: InFlight) -> int:
    sink: StoredSink = record.sink  # type: ignore[assignment]  # every relay record has one
    return sink.seq


class Relay:
    """The writer thread and the bookkeeping around one ``Store``."""

    def __init__(self, store: Store, sender: Sender, max_events: int) -> None:
        self.store = store
        self.max_events = max_events
        self._sender = sender
        self._telemetry = sender.telemetry
        self._replay = store.load()
        self._next_seq = self._replay[-1].seq + 1 if self._replay else 1
        #: Events accepted over the relay's life (replayed ones included) and events done
        #: with (delivered, or never deliverable); their difference is the backlog.
        self.submitted = len(self._replay)
        self.acked = 0
        self.replayed = len(self._replay)
        #: Events removed because they can never be delivered (permanent, dead-lettered).
        self.given_up = 0
        #: Set when the publisher closes: failed reports leave rows in place, nothing new
        #: is produced.
        self.closing = False
        self._queue: list[InFlight] = []
        self._callbacks: list[Callback] = []
        self._acks: deque[int] = deque()
        self._parked: deque[InFlight] = deque()
        self._drain_after = 0.0
        self._cond = threading.Condition(threading.Lock())
        self._ack_lock = threading.Lock()
        self._stamps: deque[list[float]] = deque()
        self._replay_stamps = self._stamp_replay()
        self._source = store if isinstance(store, Source) else None
        self._woken = False
        #: Called with the acceptance time (epoch s) of each event delivered.
        self.on_delivered: Callable[[float], object] | None = None
        self._handoff: Handoff = run_callbacks
        self._thread: threading.Thread | None = None
        self._stop = False
        self._failure: BaseException | None = None

    def _stamp_replay(self) -> list[list[float]]:
        """One stamp per run of replayed rows accepted at the same time (a submission), in
        ``seq`` order; rows of unknown acceptance time count from now."""
        now = time.time()
        stamps: list[list[float]] = []
        for stored in self._replay:
            at = now if stored.accepted_at is None else stored.accepted_at
            if stamps and stamps[-1][0] == at:
                stamps[-1][1] += 1
            else:
                stamps.append([at, 1.0])
        self._stamps.extend(stamps)
        return stamps

    @property
    def backlog(self) -> int:
        """Events accepted and not yet delivered (or given up as undeliverable)."""
        return self.submitted - self.acked

    def room(self) -> int:
        return self.max_events - self.backlog

    @property
    def failure(self) -> BaseException | None:
        """Why the writer stopped (a commit failed, e.g. disk full), or ``None``."""
        return self._failure

    # -- threads ---------------------------------------------------------------------------

    def start(self, handoff: Handoff | None = None) -> None:
        """Start the writer; ``handoff`` runs each commit's notifications (default: on the
        writer thread)."""
        if self._thread is not None:
            return
        if handoff is not None:
            self._handoff = handoff
        self._thread = threading.Thread(target=self._run, name="eventwire-spool", daemon=True)
        self._thread.start()
        if self.replayed:
            _log.info("eventwire.spool_replay", path=self.store.name, events=self.replayed)

    def submit(
        self,
        events: Sequence[Submission],
        on_commit: Callback | None,
        call: CallTelemetry | None = None,
    ) -> None:
        """Queue ``events`` for the next commit; ``on_commit`` runs (through the handoff)
        once they are durable. Runs on the caller's thread, in its context: the spans start
        here, so their parent is the caller's span (not the writer thread's empty context);
        the events of a ``publish_many`` call get their context from its telemetry (``call``).

        Raises:
            PublisherClosedError: the writer was told to stop (nothing was queued).
            SpoolError: an earlier commit failed.
        """
        sender = self._sender
        with self._cond:
            if self._stop:  # the writer commits what it holds, then exits: no commit would come
                raise PublisherClosedError(CLOSED_MESSAGE)
            if self._failure is not None:
                raise SpoolError(f"spool {self.store.name!r} failed: {self._failure}")
            start: Callable[[InFlight], None] | None
            if call is not None:
                start = call.prepare if call.traces else None
            else:
                start = self._telemetry.start if self._telemetry is not None else None
            seq = self._next_seq
            stamp = [time.time(), float(len(events))]
            records = []
            for encoded, target, slot in events:
                sink = StoredSink(self, target)
                sink.seq = seq
                sink.stamp = stamp
                record = sender.record(encoded, sink, slot)
                record.durable = True
                if start is not None:
                    start(record)
                records.append(record)
                seq += 1
            self._stamps.append(stamp)
            self._next_seq = seq
            self.submitted += len(records)
            self._queue.extend(records)
            if on_commit is not None:
                self._callbacks.append(on_commit)
            self._cond.notify()

    def ack(self, sink: StoredSink, *, given_up: bool = False) -> None:
        """The event is done with (``given_up``: it can never be delivered); its row is
        removed by the next commit. Called where reports are settled, and by the writer for
        an event refused for good."""
        self._acks.append(sink.seq)
        on_delivered = self.on_delivered
        if on_delivered is not None and not given_up:
            on_delivered(sink.stamp[0])
        with self._ack_lock:
            self.acked += 1
            self.given_up += given_up
            sink.stamp[1] -= 1

    def status(self) -> tuple[int, float | None]:
        """``(backlog, seconds since the oldest event still stored was accepted)``; a
        replayed event counts from its acceptance in an earlier run. Cheap; any thread."""
        stamps = self._stamps
        with self._ack_lock:
            while stamps and stamps[0][1] <= 0:
                stamps.popleft()
            oldest = stamps[0][0] if stamps else None
        return self.backlog, None if oldest is None else max(0.0, time.time() - oldest)

    def park(self, record: InFlight, *, failed: bool) -> None:
        """Keep ``record`` stored and produce it again later."""
        self._parked.append(record)
        if failed:
            self._drain_after = time.monotonic() + PARK_DELAY

    def take_parked(self) -> list[InFlight]:
        """Remove and return the parked events (after the writer stopped)."""
        parked = list(self._parked)
        self._parked.clear()
        return parked

    def left_error(self, record: InFlight) -> PublishError:
        """The outcome of an event left in the store at close."""
        return left_in_spool_error(
            record.encoded, self.store.name, maybe_written=record.maybe_written
        )

    def wake(self) -> None:
        """Cut the writer's idle wait short (a ``Source`` has events to fetch)."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def stop(self, timeout: float) -> bool:
        """Write the last acks, stop the writer and close the store; False if it did not stop
        within ``timeout`` (the store is then closed when the process exits)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is None:
            self.store.close()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stalled(self) -> bool:
        """Nothing can move now: events are waiting, the breaker keeps them parked."""
        return bool(self._parked) and not self._sender.allows()

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._write()
        except Exception as exc:  # noqa: BLE001 - reported to every waiting and later submit
            # A dead writer must not leave submitters waiting for a commit for ever.
            self._fail(exc, [], [])

    def _write(self) -> None:
        if self._replay:
            self._dispatch(self._replayed())
        while True:
            with self._cond:
                if not (self._queue or self._stop or self._woken):
                    self._cond.wait(IDLE_WAIT)
                self._woken = False
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                # A fresh list each time: the snapshot must not alias the list that later
                # submits append to, or their callbacks would run before their commit.
                callbacks: list[Callback] = []
                if not self._queue:
                    callbacks, self._callbacks = self._callbacks, callbacks
                stopping = self._stop and not self._queue
            done = self._take_acks()
            if batch or done:
                try:
                    self.store.commit([_stored(record) for record in batch], done)
                except Exception as exc:  # noqa: BLE001 - reported to every later submit
                    self._fail(exc, batch, callbacks)
                    return
            if callbacks:
                self._handoff(callbacks, None)
            if batch:
                self._dispatch(batch)
            if self._parked:
                self._drain()
            if self._source is not None and not (self.closing or stopping):
                fetched = self._source.fetch()
                if fetched:
                    self._dispatch(self._take(fetched))
            if stopping:
                break
        self.store.close()

    def _replayed(self) -> list[InFlight]:
        records = []
        stamps = iter(self._replay_stamps)  # made when the store was loaded
        stamp, left = _NO_STAMP, 0.0
        for stored in self._replay:
            if left <= 0:
                stamp = next(stamps)
                left = stamp[1]
            left -= 1
            sink = StoredSink(self, None)
            sink.seq = stored.seq
            sink.stamp = stamp
            record = self._sender.record(stored.encoded, sink)
            record.durable = True
            records.append(record)
        self._replay = []
        return records

    def _take(self, fetched: list[StoredEvent]) -> list[InFlight]:
        """Events fetched from a ``Source``, as records to produce. Their stamps (each its
        own: the acceptance time a delivery is measured from) stay out of ``status()``: a
        source counts its backlog itself, and the stamps would pile up unread."""
        records = []
        sender = self._sender
        now = time.time()
        for stored in fetched:
            sink = StoredSink(self, None)
            sink.seq = stored.seq
            sink.stamp = [stored.accepted_at or now, 1.0]
            record = sender.record(stored.encoded, sink)
            record.durable = True
            records.append(record)
        with self._cond:
            self.submitted += len(records)
        return records

    def _take_acks(self) -> list[tuple[int, int]]:
        acks = self._acks
        if not acks:
            return []
        seqs = sorted(acks.popleft() for _ in range(len(acks)))
        ranges = []
        first = last = seqs[0]
        for seq in seqs[1:]:
            if seq != last + 1:
                ranges.append((first, last))
                first = seq
            last = seq
        ranges.append((first, last))
        return ranges

    def _fail(self, exc: BaseException, batch: list[InFlight], callbacks: list[Callback]) -> None:
        _log.error("eventwire.spool_failed", path=self.store.name, error=str(exc))
        with self._cond:
            self._failure = exc
        self.store.close()
        error = SpoolError(f"spool {self.store.name!r}: the commit failed: {exc}")
        error.__cause__ = exc
        with self._cond:
            callbacks = [*callbacks, *self._callbacks]
            self._callbacks = []
            # Never committed, and their callers get the error: not accepted, so not in the
            # backlog (a close would wait its whole deadline for them and report them spooled).
            lost = [*batch, *self._queue]
            self._queue = []
            self.submitted -= len(lost)
        with self._ack_lock:
            for record in lost:
                record.sink.stamp[1] -= 1  # type: ignore[attr-defined]  # a StoredSink
        telemetry = self._telemetry
        if telemetry is not None:  # their spans started at submit
            for record in lost:
                telemetry.not_sent(record, error)
        if callbacks:
            self._handoff(callbacks, error)

    def _dispatch(self, records: list[InFlight]) -> None:
        if self._parked or self.closing or not self._sender.allows():
            self._parked.extend(records)  # behind what already waits: order per key is kept
            return
        for index, record in enumerate(records):
            if not self._produce(record):
                self._parked.extend(records[index:])
                return

    def _drain(self) -> None:
        if self.closing or not self._sender.allows():
            return
        if time.monotonic() < self._drain_after:
            return
        parked = sorted((self._parked.popleft() for _ in range(len(self._parked))), key=_seq)
        for index, record in enumerate(parked):
            if not self._produce(record):
                self._parked.extendleft(reversed(parked[index:]))
                return

    def _produce(self, record: InFlight) -> bool:
        """Hand one committed event to the core, waiting for queue room; False if it cannot
        go now (closing, breaker opened, refused transiently): the caller parks it."""
        sender = self._sender
        generation = sender.room_generation()
        while True:
            if self.closing:
                return False  # the rest of a batch stays stored; the producer may be closed
            try:
                sender.produce(record)
            except PublisherClosedError:
                if not self.closing:
                    raise
                return False  # the producer was closed between the check and produce()
            except BufferError:
                if self.closing or not sender.allows():
                    return False
                sender.wait_for_room(generation, IDLE_WAIT)
                generation = sender.room_generation()
                continue
            except PublishError as exc:
                if exc.category not in _FINAL:
                    return False
                # Never deliverable as it is (e.g. too large): the caller gets the error.
                sink: StoredSink = record.sink  # type: ignore[assignment]  # a relay record
                self.ack(sink, given_up=True)
                target = sink.target
                if target is not None:
                    self._handoff([functools.partial(_settle_refused, target, record, exc)], None)
            return True


def _stored(record: InFlight) -> StoredEvent:
    sink: StoredSink = record.sink  # type: ignore[assignment]  # every relay record has one
    return StoredEvent(sink.seq, sink.stamp[0] or None, record.encoded)


def _settle_refused(
    target: Sink, record: InFlight, error: PublishError, _failure: BaseException | None
) -> None:
    target.settle(record, error)


def run_callbacks(callbacks: list[Callback], failure: BaseException | None) -> None:
    for callback in callbacks:
        callback(failure)
