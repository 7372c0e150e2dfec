"""Waiting for room in a full local producer queue, first come, first served.

While any caller waits for room, a caller arriving later queues behind it instead of producing
directly when room has just been freed: a newer event never overtakes an older one (of the same
key) that waits. Only the head of the line produces. A ``publish_many`` call that joined the
line keeps its place (its ``Turn``) until its last event is produced, so a later caller cannot
slip into the middle of the batch either. Each waiting event keeps its own
``queue_full_timeout``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol


class Turn:
    """A caller's place in the line (a ``publish_many`` call keeps one for all its events)."""

    __slots__ = ("queued", "waker")

    def __init__(self) -> None:
        self.queued = False
        #: Resolved when this turn becomes the head (async line only).
        self.waker: asyncio.Future[None] | None = None


def _produced(produce: Callable[[Any], None], pending: Any) -> bool:
    """``produce(pending)``; False if the local queue is full."""
    try:
        produce(pending)
    except BufferError:
        return False
    return True


class _Room(Protocol):
    @property
    def room_generation(self) -> int: ...

    def wait_for_room(self, generation: int, timeout: float) -> bool: ...


class AsyncRoomLine:
    """The line of callers of an ``AsyncPublisher`` (loop thread only).

    ``waiting`` is the line itself, for a cheap check before producing: produce directly only
    when it is empty or headed by the caller's own turn.
    """

    __slots__ = ("_room", "waiting")

    def __init__(self, room: asyncio.Event) -> None:
        self._room = room
        self.waiting: deque[Turn] = deque()

    async def produce(
        self, produce: Callable[[Any], None], pending: Any, limit: float, turn: Turn | None
    ) -> bool:
        """Wait for this caller's turn, then for room, then ``produce(pending)``.

        Returns False when ``limit`` seconds passed first (nothing was produced). Without
        ``turn`` the caller leaves the line at once; with one it keeps its place (``leave``).
        """
        loop = asyncio.get_running_loop()
        keep = turn is not None
        if turn is None:
            turn = Turn()
        if not turn.queued:
            turn.queued = True
            self.waiting.append(turn)
        deadline = loop.time() + limit
        try:
            while self.waiting[0] is not turn:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                waker = turn.waker = loop.create_future()
                try:
                    await asyncio.wait_for(waker, remaining)
                except TimeoutError:
                    return False
            room = self._room
            while not _produced(produce, pending):
                # Settling (which sets the event) runs on this thread: no report slips in
                # between the refusal and the clear.
                room.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(room.wait(), remaining)
                except TimeoutError:
                    return False
            return True
        finally:
            if not keep:
                self.leave(turn)

    def clear_for(self, turn: Turn | None) -> bool:
        """Whether a caller (holding ``turn``, if any) may produce without joining the line:
        nobody waits, or its own turn is the head."""
        waiting = self.waiting
        return not waiting or waiting[0] is turn

    def leave(self, turn: Turn) -> None:
        """Give up ``turn``'s place; the next in line is woken if it was the head."""
        if not turn.queued:
            return
        turn.queued = False
        waiting = self.waiting
        head = waiting[0] is turn
        waiting.remove(turn)
        if head and waiting:
            waker = waiting[0].waker
            if waker is not None and not waker.done():
                waker.set_result(None)


class RoomLine:
    """The line of callers of a sync ``Publisher`` (any thread).

    A thread that finds the line empty produces directly; "arriving later" means checking the
    line after another caller joined it. Threads racing for the first place are not ordered.
    """

    __slots__ = ("_changed", "_room", "waiting")

    def __init__(self, room: _Room) -> None:
        self._room = room
        self._changed = threading.Condition(threading.Lock())
        self.waiting: deque[Turn] = deque()

    def produce(
        self, produce: Callable[[Any], None], pending: Any, limit: float, turn: Turn | None
    ) -> bool:
        """The blocking twin of ``AsyncRoomLine.produce``."""
        keep = turn is not None
        if turn is None:
            turn = Turn()
        deadline = time.monotonic() + limit
        changed = self._changed
        try:
            with changed:
                if not turn.queued:
                    turn.queued = True
                    self.waiting.append(turn)
                while self.waiting[0] is not turn:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    changed.wait(remaining)
            room = self._room
            generation = room.room_generation
            while not _produced(produce, pending):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                room.wait_for_room(generation, min(remaining, 0.5))
                generation = room.room_generation
            return True
        finally:
            if not keep:
                self.leave(turn)

    def clear_for(self, turn: Turn | None) -> bool:
        """Whether a caller (holding ``turn``, if any) may produce without joining the line:
        nobody waits, or its own turn is the head."""
        waiting = self.waiting
        if not waiting:  # the common case, tested first: an exception per event costs ~1 us
            return True
        try:
            return waiting[0] is turn
        except IndexError:  # emptied by another thread since the check
            return True

    def leave(self, turn: Turn) -> None:
        """Give up ``turn``'s place; the others re-check whether they are the head."""
        with self._changed:
            if not turn.queued:
                return
            turn.queued = False
            self.waiting.remove(turn)
            self._changed.notify_all()
