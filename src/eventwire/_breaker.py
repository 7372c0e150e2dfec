"""CircuitBreaker (provisional; being completed)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerPolicy:
    failures: int = 5
    window: float = 10.0
    cooldown: float = 5.0
    probe_timeout: float = 1.0


class CircuitBreaker:
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
        self._failures: deque[float] = deque()
        self._lock = threading.Lock()
        self.opened_at: float | None = None
        self.last_reason: str | None = None

    @property
    def state(self) -> BreakerState:
        return self._state

    def allows(self) -> bool:
        return self._state == "closed"

    def _move(self, new: BreakerState, reason: str) -> None:
        old, self._state = self._state, new
        if new == "open":
            self.opened_at = self._clock()
            self.last_reason = reason
        if old != new and self._on_change is not None:
            self._on_change(old, new, reason)

    def record_failure(self) -> None:
        with self._lock:
            now = self._clock()
            self._failures.append(now)
            while self._failures and self._failures[0] < now - self.policy.window:
                self._failures.popleft()
            if self._state == "closed" and len(self._failures) >= self.policy.failures:
                self._move("open", "delivery failures")

    def record_success(self) -> None:
        with self._lock:
            self._failures.clear()

    def record_unreachable(self, reason: str) -> None:
        with self._lock:
            if self._state != "open":
                self._move("open", reason)

    def probe_due(self) -> bool:
        with self._lock:
            opened = self.opened_at
            if self._state == "open" and opened is not None:
                if self._clock() - opened < self.policy.cooldown:
                    return False
                self._move("half_open", "cooldown elapsed")
                return True
            return False

    def probe_result(self, ok: bool) -> None:
        with self._lock:
            if self._state == "half_open":
                self._failures.clear()
                self._move("closed" if ok else "open", "probe " + ("ok" if ok else "failed"))
