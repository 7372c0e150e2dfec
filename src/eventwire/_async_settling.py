"""How outcomes reach an ``AsyncPublisher``'s callers: futures settled on the event loop.

The poll thread hands each batch of delivery reports to the loop (``LoopSettler``); each
record's sink settles its caller's future (``FutureSink``, ``AcceptedSink``) or its share of
a ``publish_many`` call (``Batch``). Futures are only touched on the loop thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable

from eventwire._core.record import InFlight
from eventwire._errors import PublishError
from eventwire._outcome import DeliveryReceipt, PublishOutcome


class FutureSink:
    """The outcome of one ``publish`` call, for its future."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[DeliveryReceipt]) -> None:
        self.future = future

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        future = self.future
        if future.done():  # the caller cancelled its await; the outcome is dropped
            return
        try:
            if isinstance(outcome, DeliveryReceipt):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)
        except RuntimeError:  # its loop is closed (settled on the poll thread): nobody waits
            if not future.get_loop().is_closed():
                raise


class AcceptedSink(FutureSink):
    """The delivery of an ``Accepted`` event; the caller may never ask for it."""

    __slots__ = ()

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        super().settle(record, outcome)
        if not isinstance(outcome, DeliveryReceipt) and not self.future.cancelled():
            # Marks the exception as retrieved: not awaiting delivered() is a legitimate
            # choice after accept(), not a forgotten error.
            self.future.exception()


class Batch:
    """Outcomes of one ``publish_many`` call (loop thread only); done when every hold is
    released."""

    __slots__ = ("outcomes", "remaining", "waitable")

    def __init__(self, size: int, done: asyncio.Future[None]) -> None:
        self.outcomes: list[PublishOutcome | None] = [None] * size
        self.remaining = 1  # the producing caller's own hold
        self.waitable = done

    def hold(self, count: int) -> None:
        self.remaining += count

    def release(self, count: int = 1) -> None:
        self.remaining -= count
        done = self.waitable
        # A caller cancelled while awaiting has cancelled `done`; the settling goes on (an
        # exception here would abort the rest of the report batch, and its counts).
        if self.remaining == 0 and not done.done():
            try:
                done.set_result(None)
            except RuntimeError:  # as in FutureSink.settle
                if not done.get_loop().is_closed():
                    raise

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        self.outcomes[record.slot] = outcome
        self.remaining -= 1
        if not self.remaining:  # release(), inline: once per event
            self.remaining = 1
            self.release()


class LoopSettler:
    """Settles the poll thread's report batches on the loop, at most one per loop iteration.

    The first batch of an iteration is settled at once (no added latency); batches arriving in
    the same iteration wait for the next ones, in order, so the loop's other tasks run in
    between (a burst of 100,000 reports is ~25 batches).

    Batches handed over stay listed until settled: if the loop closes first (its pending
    callbacks are dropped), ``rescue`` settles them on the calling thread.
    """

    __slots__ = ("_core_settle", "_handed", "_loop", "_queued", "_rescue_lock", "_settling")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, settle: Callable[[list[InFlight]], None]
    ) -> None:
        self._loop = loop
        self._core_settle = settle
        self._queued: deque[list[InFlight]] = deque()
        self._settling = False
        self._handed: deque[list[InFlight]] = deque()
        self._rescue_lock = threading.Lock()

    def hand_over(self, batch: list[InFlight]) -> bool:
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

    def _settle_now(self, batch: list[InFlight]) -> None:
        handed = self._handed
        if handed and handed[0] is batch:
            handed.popleft()
        self._core_settle(batch)

    def settle(self, batch: list[InFlight]) -> None:
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
