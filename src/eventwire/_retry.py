"""RetryPolicy: how failed deliveries are re-sent after librdkafka gave up. Pure logic."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from eventwire._errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts *and* a deadline.

    Args:
        attempts: total sends of one event, the first included (1 = never retry).
        deadline: seconds after the event's first failure after which no retry starts.
        base: the first backoff, seconds.
        cap: the largest backoff, seconds.
        jitter: fraction in [0, 1]; each delay is drawn uniformly from
            ``[backoff * (1 - jitter), backoff]`` so that many publishers do not retry in step.
        retry_ambiguous: also re-send outcomes that may have been written (e.g. a timed-out
            message). The event keeps its ``ce_id``, so consumers can de-duplicate.

    Raises:
        ConfigError: a value is out of range; the message names the field.
    """

    attempts: int = 5
    deadline: float = 60.0
    base: float = 0.2
    cap: float = 10.0
    jitter: float = 0.5
    retry_ambiguous: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool):
            raise ConfigError(f"RetryPolicy.attempts must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ConfigError(
                f"RetryPolicy.attempts must be >= 1 (1 = never retry), got {self.attempts}"
            )
        for name in ("deadline", "base", "cap"):
            value = getattr(self, name)
            if not _finite_number(value) or value <= 0:
                raise ConfigError(f"RetryPolicy.{name} must be a finite number > 0, got {value!r}")
        if self.cap < self.base:
            raise ConfigError(f"RetryPolicy.cap ({self.cap}) must be >= base ({self.base})")
        if not _finite_number(self.jitter) or not 0 <= self.jitter <= 1:
            raise ConfigError(f"RetryPolicy.jitter must be in [0, 1], got {self.jitter!r}")
        if not isinstance(self.retry_ambiguous, bool):
            raise ConfigError("RetryPolicy.retry_ambiguous must be a bool")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(attempts=1)

    def backoff(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the ``failures``-th failure (>= 1), jittered with ``rand()``
        in [0, 1)."""
        exponent = min(max(failures, 1) - 1, 64)  # 2**64 * base is far past any cap
        full = min(self.cap, self.base * 2.0**exponent)
        return full * (1.0 - self.jitter * rand())

    def next_delay(
        self,
        *,
        failures: int,
        first_failure: float,
        now: float,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """The delay before the next send, or ``None`` when no retry may follow: the attempts
        are used up, or the retry would start after ``first_failure + deadline``."""
        if failures >= self.attempts:
            return None
        delay = self.backoff(failures, rand)
        if now + delay > first_failure + self.deadline:
            return None
        return delay

    def should_retry(self, failure_class: str) -> bool:
        """Whether a failure of this class may be retried (``retriable``; ``ambiguous`` when
        ``retry_ambiguous``)."""
        if failure_class == "retriable":
            return True
        return failure_class == "ambiguous" and self.retry_ambiguous


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
