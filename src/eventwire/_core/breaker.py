"""CircuitBreaker: stop sending to an unreachable cluster and fail fast. A pure state machine
over an injected monotonic clock; the producer core feeds it and runs its probes."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from eventwire._options import BreakerPolicy

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """closed → open (failures, or unreachable confirmed by a probe) → half_open (cool-down
    over, probing) → closed (probe ok) or open again (probe failed).

    Thread-safe: fed from librdkafka's poll thread, read from publishing threads. ``allows()``
    and ``closed`` are a single attribute read.
    """

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState, BreakerState, str], None] | None = None,
    ) -> None:
        self.policy = policy if policy is not None else BreakerPolicy()
        self._clock = clock
        self._on_change = on_change
        self._state: BreakerState = "closed"
        #: Whether events may be sent (the state is ``"closed"``): for per-event checks.
        self.closed = True
        self._failures: deque[float] = deque()
        self._lock = threading.Lock()
        self._opened_at: float | None = None
        self._last_reason: str | None = None
        self._suspected: str | None = None

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def opened_at(self) -> float | None:
        """Clock time of the last opening."""
        return self._opened_at

    @property
    def last_reason(self) -> str | None:
        """Why it last opened."""
        return self._last_reason

    def allows(self) -> bool:
        """Whether events may be sent (only when closed)."""
        return self.closed

    def record_failure(self) -> None:
        """A delivery failure; at the threshold within the window the cluster is suspected
        unreachable: ``confirmation_due`` and ``confirm`` decide, as for ``record_unreachable``."""
        with self._lock:
            now = self._clock()
            failures = self._failures
            failures.append(now)
            while failures and failures[0] <= now - self.policy.window:
                failures.popleft()
            if self._state == "closed" and len(failures) >= self.policy.failures:
                # Confirmed by a probe like _ALL_BROKERS_DOWN: timeouts also come from a
                # cluster that answers but no longer knows the producer (a broker restarted
                # empty), and an open breaker would then refuse events it takes.
                self._suspected = f"{len(failures)} delivery failures in {self.policy.window:g} s"

    def record_success(self) -> None:
        """A delivery success: the failure count starts over."""
        if self._failures:
            with self._lock:
                self._failures.clear()

    def record_unreachable(self, reason: str) -> None:
        """The cluster was reported unreachable (e.g. ``_ALL_BROKERS_DOWN``). Nothing changes
        yet: while closed, the report waits for ``confirmation_due`` and ``confirm``."""
        with self._lock:
            if self._state == "closed":
                self._suspected = reason

    def confirmation_due(self) -> bool:
        """True exactly once per unconfirmed ``record_unreachable`` while closed; the caller
        then probes the cluster and reports with ``confirm``."""
        return self._suspected is not None and self._state == "closed"

    def confirm(self, reachable: bool, reason: str | None = None) -> None:
        """The confirming probe's outcome: a failed probe opens the breaker, a good one drops
        the report. ``reason`` replaces the suspicion's (a refusal the probe confirmed)."""
        with self._lock:
            suspected, self._suspected = self._suspected, None
            reason = reason if suspected is not None and reason is not None else suspected
            change = None
            if not reachable and reason is not None and self._state == "closed":
                change = self._move("open", f"{reason} (confirmed by a failed probe)")
            elif reachable:
                self._failures.clear()  # the cluster answers: counting starts over
        self._notify(change)

    def probe_due(self) -> bool:
        """True exactly once per cool-down: moves open → half_open; the caller then probes
        and reports with ``probe_result``."""
        with self._lock:
            opened = self._opened_at
            if self._state != "open" or opened is None:
                return False
            if self._clock() - opened < self.policy.cooldown:
                return False
            change = self._move("half_open", "cool-down elapsed")
        self._notify(change)
        return True

    def probe_result(self, ok: bool) -> None:
        """The probe's outcome: closed on success, open again (cool-down restarts) if not."""
        with self._lock:
            if self._state != "half_open":
                return
            self._failures.clear()
            change = self._move("closed", "probe ok") if ok else self._move("open", "probe failed")
        self._notify(change)

    def _move(self, new: BreakerState, reason: str) -> tuple[BreakerState, BreakerState, str]:
        old, self._state = self._state, new
        self.closed = new == "closed"
        if new != "closed":
            self._suspected = None
        if new == "open":
            self._opened_at = self._clock()
            self._last_reason = reason
        return (old, new, reason)

    def _notify(self, change: tuple[BreakerState, BreakerState, str] | None) -> None:
        if change is None or self._on_change is None or change[0] == change[1]:
            return
        with contextlib.suppress(Exception):  # a failing listener must not break the breaker
            self._on_change(*change)
