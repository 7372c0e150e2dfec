"""The core's counters, kept by the core alone (health and telemetry read a ``Stats``).

``outstanding`` counts records the core took and has not settled yet: ``take`` when a record
goes to librdkafka (or waits behind a retry or the replacement gate), ``give_back`` when the
transport refused it after all, ``settled`` when its outcome is settled. Callers never keep
these counts by hand.
"""

from __future__ import annotations

import threading


class Counters:
    """The live counters (thread-safe)."""

    __slots__ = (
        "_closing_failures",
        "_lock",
        "dead_lettered",
        "delivered",
        "failed",
        "outstanding",
        "recreations",
        "retries",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outstanding = self.delivered = self.failed = 0
        self.retries = self.dead_lettered = self.recreations = 0
        #: The ids given up since a close began (``None`` before).
        self._closing_failures: list[str] | None = None

    def take(self, count: int = 1) -> None:
        """``count`` records were taken: their outcomes will be settled."""
        with self._lock:
            self.outstanding += count

    def give_back(self, count: int = 1) -> None:
        """Undo ``take`` for records the transport refused after all."""
        with self._lock:
            self.outstanding -= count

    def settled(self, ok: int, bad: int, kept: int, dead: int, given_up: list[str]) -> None:
        """One batch of outcomes: ``ok`` delivered, ``bad`` failed (``dead`` of them
        dead-lettered), ``kept`` left in the spool at close; ``given_up`` their ids at close."""
        with self._lock:
            # The ids given up at close go with the counters, under the lock: a close report
            # read meanwhile (the poll thread may still settle when a sync close stops waiting)
            # counted a batch twice (undelivered 53,960 of a 50,000 backlog).
            if given_up and self._closing_failures is not None:
                self._closing_failures.extend(given_up)
            self.outstanding -= ok + bad + kept
            self.delivered += ok
            self.failed += bad
            self.dead_lettered += dead

    def refused(self) -> None:
        """An event refused before it was taken (e.g. too large): a failure all the same, so
        ``delivered + failed`` counts every event settled."""
        with self._lock:
            self.failed += 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def recreated(self) -> None:
        with self._lock:
            self.recreations += 1

    def begin_close(self) -> None:
        with self._lock:
            self._closing_failures = []

    def closing_state(self) -> tuple[tuple[str, ...], int, int]:
        """``(ids given up since the close began, outstanding, failed)``, read together."""
        with self._lock:
            return tuple(self._closing_failures or ()), self.outstanding, self.failed
