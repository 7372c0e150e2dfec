"""Policies and options: what a publisher is told to do, checked when built.

A leaf module: frozen, keyword-only values that depend on nothing of eventwire but its error
types, so that the configuration, the core and the telemetry all import them from here (and
never from each other).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from opentelemetry.metrics import MeterProvider
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import TracerProvider

from eventwire._errors import ConfigError
from eventwire._topics import topic_problem


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


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerPolicy:
    """When the breaker opens and how it recovers.

    Args:
        failures: delivery failures (retriable or ambiguous) within ``window`` that open it.
            The producer core feeds only failures that say the cluster is down: not those of
            events handed over before an event the cluster acknowledged, not fatal errors, not
            the purges of a replaced producer.
        window: seconds over which failures are counted; a success clears the count.
        cooldown: seconds it stays open before a probe (a metadata request) is tried.
        probe_timeout: seconds the probe may take; also bounds the confirmation below.

    Both the failures and ``_ALL_BROKERS_DOWN`` from librdkafka open it only once *confirmed*:
    the poll thread then runs a metadata probe (within ``probe_timeout``) and the breaker opens
    if that fails. With one broker every connection reset is reported as ``_ALL_BROKERS_DOWN``
    and librdkafka reconnects at once; and a broker restarted without its state (it no longer
    knows the producer id) times out every event in flight while it answers and takes new
    writes: either alone would make publishing fail fast for a whole cool-down. A good probe
    also starts the failure count over.
    """

    failures: int = 5
    window: float = 10.0
    cooldown: float = 5.0
    probe_timeout: float = 1.0

    def __post_init__(self) -> None:
        if (
            not isinstance(self.failures, int)
            or isinstance(self.failures, bool)
            or self.failures < 1
        ):
            raise ConfigError(f"BreakerPolicy.failures must be an int >= 1, got {self.failures!r}")
        for name in ("window", "cooldown", "probe_timeout"):
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(
                    f"BreakerPolicy.{name} must be a finite number > 0, got {value!r}"
                )


@dataclass(frozen=True, kw_only=True, slots=True)
class DeadLetterPolicy:
    """Where permanent failures and exhausted retries are written.

    Args:
        topic: a format string with ``{topic}`` (default ``"{topic}.dlq"``), or a callable
            from the original topic to the dead-letter topic. When the callable raises or
            returns an invalid name, the event is not dead-lettered: its caller gets the
            original error and ``eventwire.dead_letter_failed`` is logged with the reason.
    """

    topic: str | Callable[[str], str] = "{topic}.dlq"

    def __post_init__(self) -> None:
        if isinstance(self.topic, str):
            try:
                sample = self.topic.format(topic="orders")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"DeadLetterPolicy.topic {self.topic!r} must be a format string using only "
                    f"{{topic}}: {exc}"
                ) from None
            problem = topic_problem(sample)
            if problem is not None:
                raise ConfigError(
                    f"DeadLetterPolicy.topic {self.topic!r} gives topic names Kafka refuses "
                    f"({sample!r} for 'orders'): {problem}"
                )
        elif not callable(self.topic):
            raise ConfigError("DeadLetterPolicy.topic must be a format string or a callable")

    def topic_for(self, original: str) -> str:
        """The dead-letter topic for events of ``original``."""
        if isinstance(self.topic, str):
            name = self.topic.format(topic=original)
        else:
            name = self.topic(original)
        problem = topic_problem(name)
        if problem is not None:
            raise ConfigError(
                f"dead-letter topic {name!r} for {original!r} is not a legal Kafka topic name: "
                f"{problem}"
            )
        return name


@dataclass(frozen=True, kw_only=True, slots=True)
class Telemetry:
    """Where a publisher sends its OpenTelemetry signals.

    Args:
        enabled: ``False`` turns spans, trace-context headers and metrics off.
        tracer_provider: the provider of spans; ``None`` means the global one.
        meter_provider: the provider of metrics; ``None`` means the global one.
        propagator: injects the trace context into the Kafka headers; ``None`` means the
            global propagator (W3C ``traceparent``/``tracestate`` by default).
        statistics_interval: seconds between librdkafka statistics (broker RTT, queue
            latency, bytes sent) while metrics are recorded; ``0`` turns them off. An explicit
            ``statistics.interval.ms`` in ``librdkafka_overrides`` wins.
        spans: ``"batch"`` (the default): one ``send`` span per ``publish_many`` /
            ``accept_many`` call and topic, whose context every message of it carries (the
            semantic conventions' batch pattern); a lone ``publish`` / ``accept`` gets a span
            of its own. ``"message"``: one span per message, ``publish_many`` included (about
            an SDK span's cost per message: see the Observability page).

    Raises:
        ConfigError: ``statistics_interval`` is negative or not finite, or ``spans`` is
            neither ``"batch"`` nor ``"message"``.
    """

    enabled: bool = True
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    propagator: TextMapPropagator | None = None
    statistics_interval: float = 5.0
    spans: Literal["batch", "message"] = "batch"

    def __post_init__(self) -> None:
        if self.spans not in ("batch", "message"):
            raise ConfigError(f"Telemetry.spans must be 'batch' or 'message', got {self.spans!r}")
        interval = self.statistics_interval
        if (
            not isinstance(interval, int | float)
            or isinstance(interval, bool)
            or not math.isfinite(interval)
            or interval < 0
        ):
            raise ConfigError(
                f"Telemetry.statistics_interval must be a finite number of seconds >= 0, "
                f"got {interval!r}"
            )


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
