"""The poll thread, and the hand-over of delivery reports to where they are settled.

Threads, in one place:

* callers (the event loop thread, or any thread for the sync publisher) produce;
* one daemon thread polls librdkafka; each delivery callback only stores its report on its
  record and appends the record to a list (``Handover.append``); after each step the whole
  list is handed over at once through the ``handoff`` the publisher chose:
  ``loop.call_soon_threadsafe`` of a settle for the async publisher (futures are only
  touched on the loop thread), a direct settle for the sync publisher;
* the same thread runs the core's other steps (re-sends, dead-letter writes, replacement,
  probes), each guarded on its own: whatever one raises, the thread goes on (a dead poll
  thread would leave every later publish waiting for ever) and the others still run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from eventwire._logs import log as _log

if TYPE_CHECKING:
    from eventwire._core.record import InFlight


#: How long one ``poll()`` blocks when nothing happens; bounds how fast the thread sees a stop
#: or a due retry (seconds).
POLL_INTERVAL: Final = 0.05
#: Most reports handed over in one batch: the event loop settles one batch per iteration, so a
#: burst of reports (a large publish_many) does not stall the loop's other tasks.
HANDOFF_MAX: Final = 4096
#: Back-off of the poll loop while the same step fails again and again: doubles from the base.
_BACKOFF_BASE: Final = 0.005
_BACKOFF_MAX: Final = 0.1

Handoff = Callable[[list["InFlight"]], object]


class Handover:
    """Reports waiting to be settled, and the *room* signal callers wait on when the local
    queue is full (every hand-over may have freed room)."""

    __slots__ = ("_room", "append", "gate_batch", "handoff", "reports", "room_generation")

    def __init__(self, handoff: Handoff) -> None:
        self.reports: list[InFlight] = []
        #: The delivery callbacks' way in (a bound ``list.append``: no lock, no closure).
        self.append = self.reports.append
        self.handoff = handoff
        #: The batch whose settling opens the replacement gate, once handed over (identity).
        self.gate_batch: list[InFlight] | None = None
        self._room = threading.Condition(threading.Lock())
        self.room_generation = 0

    def hand_over(self, *, gate: bool = False) -> None:
        """Hand the reports over in batches of at most ``HANDOFF_MAX``; ``gate``: also when
        there are none, marking the last batch as the one whose settling opens the gate."""
        reports = self.reports
        if reports or gate:
            batches = [reports[at : at + HANDOFF_MAX] for at in range(0, len(reports), HANDOFF_MAX)]
            reports.clear()
            if not batches:
                batches.append([])
            if gate:
                self.gate_batch = batches[-1]
            for batch in batches:
                try:
                    self.handoff(batch)
                except Exception:  # noqa: BLE001 - the poll thread must outlive a bad batch
                    _log.exception("eventwire.settle_failed", reports=len(batch))
        with self._room:
            self.room_generation += 1
            self._room.notify_all()

    def wait_for_room(self, generation: int, timeout: float) -> bool:
        """Block until a hand-over happened after ``generation`` (sync callers)."""
        with self._room:
            return self._room.wait_for(lambda: self.room_generation != generation, timeout)


class PollThread:
    """Runs the core's steps in a loop until stopped, then its stop step."""

    __slots__ = (
        "_batches",
        "_lock",
        "_no_batch",
        "_on_stop",
        "_steps",
        "_stop",
        "_thread",
        "parked",
    )

    def __init__(
        self, steps: Sequence[Callable[[], object]], on_stop: Callable[[LoopErrors], object]
    ) -> None:
        self._steps = tuple(steps)
        self._on_stop = on_stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Clear while a caller produces a batch: the thread then waits, so the two threads do
        #: not trade the GIL for every delivery callback (confluent-kafka takes and drops it
        #: per callback); the reports are served in one burst when the batch is in.
        self._batches = 0
        self._no_batch = threading.Event()
        self._no_batch.set()
        self._lock = threading.Lock()
        #: True while the thread waits for the batches to end, and runs no step: the one
        #: producing caller may then serve the reports itself (``alone_in_batch``).
        self.parked = False

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self, name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Ask the loop to stop (after its current iteration) and wait up to ``timeout``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def request_stop(self) -> None:
        self._stop.set()

    def batch_started(self) -> None:
        """A caller starts producing a batch: the thread waits until it ends."""
        with self._lock:
            self._batches += 1
            self._no_batch.clear()

    def batch_ended(self) -> None:
        """Undo ``batch_started`` (also while the caller waits for room the thread frees)."""
        with self._lock:
            self._batches -= 1
            if self._batches == 0:
                self._no_batch.set()

    def alone_in_batch(self) -> bool:
        """Whether one caller alone produces a batch and the thread stands aside: that caller
        may poll librdkafka and hand the reports over itself (nobody else touches them)."""
        return self.parked and self._batches == 1

    def batches_ended(self, timeout: float) -> bool:
        """Block until no caller is inside a batch (a close: a batch producing in another
        thread sees the close and stops first)."""
        return self._no_batch.wait(timeout)

    def _run(self) -> None:
        errors = LoopErrors()
        stop = self._stop
        steps = self._steps
        while not stop.is_set():
            # Cleared before the batch check and set after it: a caller that sees ``parked``
            # after starting its batch knows this thread runs no step until the batch ends.
            self.parked = False
            if not self._no_batch.is_set():
                self.parked = True
                self._no_batch.wait(POLL_INTERVAL)
                continue
            for step in steps:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - logged; the thread must survive
                    errors.record(getattr(step, "__name__", "step"), exc)
            delay = errors.end_iteration()
            if delay:
                stop.wait(delay)  # the same failure again: do not spin on it
        self.parked = False
        self._on_stop(errors)


class LoopErrors:
    """Failures of the poll loop's steps: each distinct one is logged once
    (``eventwire.poll_loop_error``, with the traceback); a failure that repeats in the next
    iteration makes the loop back off, doubling up to ``_BACKOFF_MAX``."""

    __slots__ = ("_current", "_previous", "_seen", "_streak")

    #: Distinct failures remembered (the oldest is forgotten first, then logged again).
    _REMEMBERED: Final = 64

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], None] = {}
        self._current: set[tuple[str, str, str]] = set()
        self._previous: set[tuple[str, str, str]] = set()
        self._streak = 0

    def record(self, step: str, exc: BaseException) -> None:
        signature = (step.lstrip("_"), type(exc).__qualname__, str(exc))
        self._current.add(signature)
        if signature in self._seen:
            return
        self._seen[signature] = None
        if len(self._seen) > self._REMEMBERED:
            del self._seen[next(iter(self._seen))]
        _log.error(
            "eventwire.poll_loop_error",
            step=signature[0],
            error_type=signature[1],
            exc_info=exc,
        )

    def end_iteration(self) -> float:
        """Seconds to wait before the next iteration (0 unless a failure repeats)."""
        current = self._current
        if not current and not self._streak:
            return 0.0
        if current & self._previous:
            self._streak += 1
        else:
            self._streak = 0
        self._previous, self._current = current, set()
        return min(_BACKOFF_BASE * 2 ** (self._streak - 1), _BACKOFF_MAX) if self._streak else 0.0
