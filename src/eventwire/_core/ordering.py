"""Order per key while events are retried, and the gate of a producer replacement.

A structure with no producer inside: the core hands it a ``send`` callable when it is time to
produce. Thread-safe: callers producing new events, and the poll thread settling reports and
re-sending, meet here under one lock.

* **Holds.** When an event fails and is scheduled for a re-send, its key enters a *hold*:
  events of that key accepted later wait behind it (``held``), and failed ones wait in
  acceptance order (``failed``). After the head's re-send is acknowledged, everything is
  released in order, so no event overtakes an earlier one of its key. An event without a key
  is a lane of its own.
* **Due heap.** Heads waiting for their backoff, by due time.
* **Gate.** Closed while a replaced producer's reports are being settled: events accepted
  meanwhile wait in one queue, in order, then join their key's hold (or a new one) when it
  opens, so none overtakes a purged older event of its key.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from eventwire._core.record import InFlight

#: How soon a re-send that found the local queue full is tried again (seconds).
QUEUE_FULL_RETRY: Final = 0.01

#: Produces one record now; raises ``BufferError`` when the local queue is full. A refusal
#: must become the record's synthetic failed report, not an exception.
Send = Callable[["InFlight"], None]


class KeyHold:
    """Events of one key while one of them is being retried.

    ``failed`` are failed events awaiting a re-send, in the order they were accepted
    (``failed[0]`` is the head, the one re-sent first); ``held`` were accepted later and never
    produced yet.
    """

    __slots__ = ("failed", "head_in_flight", "held")

    def __init__(self) -> None:
        self.failed: deque[InFlight] = deque()
        self.held: deque[InFlight] = deque()
        self.head_in_flight = False

    def insert_failed(self, record: InFlight) -> None:
        """Put a failed event in its place among the failed events of its key. Failures can
        be reported out of order: after a producer replacement, purge reports of a partition
        came back with newer events before older ones (the fault suite saw keys re-sent out of
        order). A head already re-sent keeps its place."""
        failed = self.failed
        index = len(failed)
        first = 1 if self.head_in_flight else 0
        while index > first and failed[index - 1].order > record.order:
            index -= 1
        failed.insert(index, record)


def lane(record: InFlight) -> object:
    """The key a record is ordered by: its Kafka key, or the record itself without one."""
    key = record.encoded.key
    return key if key is not None else record


class KeyOrdering:
    """Holds, the due heap and the replacement gate (see the module docstring)."""

    __slots__ = ("_due", "_gated", "_lock", "_releases", "_sequence", "gate_closed", "holds")

    def __init__(self) -> None:
        #: Read without the lock as a cheap "anything held?" test before producing.
        self.holds: dict[object, KeyHold] = {}
        self._due: list[tuple[float, int, object]] = []
        self._releases: deque[object] = deque()
        self._sequence = itertools.count()
        #: Closed while a producer replacement is under way (read without the lock, as
        #: ``holds``; ``hold_at_gate`` decides under it).
        self.gate_closed = False
        self._gated: deque[InFlight] = deque()
        self._lock = threading.Lock()

    # -- accepting ---------------------------------------------------------------------------

    def close_gate(self) -> None:
        """A producer replacement began: new events wait until ``open_gate``."""
        self.gate_closed = True

    def hold_at_gate(self, record: InFlight) -> bool:
        """Queue ``record`` behind the closed gate; False if the gate is open."""
        with self._lock:
            if not self.gate_closed:
                return False
            self._gated.append(record)
            return True

    def hold_if_retrying(self, record: InFlight) -> bool:
        """Queue ``record`` behind a retry of its key; False if its key is not held."""
        with self._lock:
            hold = self.holds.get(record.encoded.key)
            if hold is None:
                return False
            hold.held.append(record)
            return True

    def open_gate(self) -> None:
        """The replaced producers' reports are settled (their keys on hold where retried):
        the events accepted meanwhile join their key's hold, or a new one, in order, and are
        released by the next ``send_due`` like any hold."""
        with self._lock:
            self.gate_closed = False
            gated, self._gated = self._gated, deque()
            for record in gated:
                key = lane(record)
                hold = self.holds.get(key)
                if hold is None:
                    hold = self.holds[key] = KeyHold()
                    self._releases.append(key)
                hold.held.append(record)

    # -- failures and successes --------------------------------------------------------------

    def failed(self, record: InFlight, delay: float | None, now: float) -> None:
        """``record``'s attempt failed: with a ``delay`` it is re-sent then (its key held
        meanwhile); without, it is done with, and its key's hold moves on."""
        key = lane(record)
        with self._lock:
            hold = self.holds.get(key)
            is_head = hold is not None and bool(hold.failed) and hold.failed[0] is record
            if delay is not None:
                if hold is None:
                    hold = self.holds[key] = KeyHold()
                    hold.failed.append(record)
                    self._push_due(now + delay, key)
                elif is_head:
                    hold.head_in_flight = False
                    self._push_due(now + delay, key)
                else:
                    hold.insert_failed(record)
            elif is_head and hold is not None:
                hold.failed.popleft()
                hold.head_in_flight = False
                self._advance(key, hold)

    def succeeded(self, record: InFlight) -> None:
        """A re-sent record was acknowledged: if it heads its key's hold, release the rest."""
        key = lane(record)
        with self._lock:
            hold = self.holds.get(key)
            if hold is not None and hold.failed and hold.failed[0] is record:
                hold.failed.popleft()
                hold.head_in_flight = False
                self._advance(key, hold)

    # -- the poll thread's producing ---------------------------------------------------------

    def has_work(self) -> bool:
        """Whether a re-send or a release may be due."""
        return bool(self._due or self._releases)

    def next_due(self) -> float | None:
        """When the earliest re-send is due (epoch seconds), or ``None``."""
        due = self._due
        return due[0][0] if due else None

    def send_due(self, now: float, send: Send) -> None:
        """Re-send every head that is due, then release every key whose head was acknowledged
        (failed then held events, in order). ``send`` runs under the lock, so an event of the
        same key accepted meanwhile cannot slip in between."""
        with self._lock:
            due = self._due
            while due and due[0][0] <= now:
                key = heapq.heappop(due)[2]
                hold = self.holds.get(key)
                if hold is None or not hold.failed or hold.head_in_flight:
                    continue
                try:
                    send(hold.failed[0])
                except BufferError:
                    self._push_due(now + QUEUE_FULL_RETRY, key)
                    continue
                except BaseException:
                    # Unexpected (the poll loop logs it): the key must stay due, or its
                    # events would wait for ever.
                    self._push_due(now + QUEUE_FULL_RETRY, key)
                    raise
                hold.head_in_flight = True
            for _ in range(len(self._releases)):
                key = self._releases.popleft()
                hold = self.holds.get(key)
                try:
                    released = hold is None or self._release(key, hold, send)
                except BaseException:
                    self._releases.append(key)  # as above: released on a later call
                    raise
                if not released:
                    self._releases.append(key)  # queue full: go on next time

    def _release(self, key: object, hold: KeyHold, send: Send) -> bool:
        """Produce every failed then held event of ``key`` in order and end the hold (lock
        held). False if the queue filled up first (the rest stays held)."""
        for queue in (hold.failed, hold.held):
            while queue:
                try:
                    send(queue[0])
                except BufferError:
                    return False
                queue.popleft()
        del self.holds[key]
        return True

    # -- closing -----------------------------------------------------------------------------

    def abandon(self) -> list[InFlight]:
        """Empty everything: the records waiting in holds and behind the gate (a head being
        re-sent is in librdkafka, and not returned: its purge report settles it)."""
        with self._lock:
            waiting: list[InFlight] = []
            for hold in self.holds.values():
                failed = list(hold.failed)[1:] if hold.head_in_flight else hold.failed
                waiting.extend((*failed, *hold.held))
            waiting.extend(self._gated)
            self._gated.clear()
            self.holds.clear()
            self._due.clear()
            self._releases.clear()
        return waiting

    # -- helpers -----------------------------------------------------------------------------

    def _push_due(self, when: float, key: object) -> None:
        heapq.heappush(self._due, (when, next(self._sequence), key))

    def _advance(self, key: object, hold: KeyHold) -> None:
        """After the head of a hold is settled: release the rest, or end the hold."""
        if hold.failed or hold.held:
            self._releases.append(key)
        else:
            del self.holds[key]
