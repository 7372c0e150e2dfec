"""RetryPolicy (provisional; being completed)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from eventwire._errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    deadline: float = 60.0
    base: float = 0.2
    cap: float = 10.0
    jitter: float = 0.5
    retry_ambiguous: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("attempts must be >= 1")

    @classmethod
    def never(cls) -> RetryPolicy:
        return cls(attempts=1)

    def backoff(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        delay: float = min(self.cap, self.base * 2.0 ** min(failures - 1, 60))
        return delay * (1 - self.jitter * rand())

    def next_delay(
        self,
        *,
        failures: int,
        first_failure: float,
        now: float,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        if failures >= self.attempts:
            return None
        delay = self.backoff(failures, rand)
        if now + delay > first_failure + self.deadline:
            return None
        return delay

    def should_retry(self, failure_class: str) -> bool:
        return failure_class == "retriable" or (
            failure_class == "ambiguous" and self.retry_ambiguous
        )
