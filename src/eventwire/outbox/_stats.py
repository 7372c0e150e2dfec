"""The relay's figures: a snapshot for ``OutboxRelay.stats()``, and the OpenTelemetry
instruments that report them (one set per meter provider, like the publishers')."""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from eventwire import _semconv as sc

#: Latencies kept for the percentiles of ``stats()`` (the most recent ones).
_RESERVOIR: Final = 10_000
#: Bucket boundaries (s) of the latency histogram.
_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """A snapshot of one relay.

    Attributes:
        lease: the relay group's name.
        lease_held: whether this relay holds the lease now (is the one publishing).
        epoch: the lease epoch it holds, or ``None``.
        backlog: rows in the outbox table (not yet acknowledged and deleted), as last
            counted (at most ``stats_interval`` old); ``None`` before the first count.
        oldest_age: seconds since the oldest row was added; ``None`` when empty or not
            counted yet.
        in_flight: rows handed to the producer and not deleted yet.
        published: rows Kafka acknowledged through this relay since it started.
        deleted: rows deleted after their acknowledgement since it started.
        latency_p50: median seconds from ``add()`` to Kafka's acknowledgement, over the last
            10,000 rows (``None`` before the first); ``add()`` runs just before the
            writer's commit, so this bounds the commit-to-acknowledgement latency from above.
        latency_p99: the 99th percentile of the same.
    """

    lease: str
    lease_held: bool
    epoch: int | None
    backlog: int | None
    oldest_age: float | None
    in_flight: int
    published: int
    deleted: int
    latency_p50: float | None
    latency_p99: float | None


class Latencies:
    """Acknowledgement latencies: counted, kept for percentiles, recorded in a histogram."""

    def __init__(self, histogram: Any | None) -> None:
        self.published = 0
        self._recent: deque[float] = deque(maxlen=_RESERVOIR)
        self._histogram = histogram
        self._lock = threading.Lock()

    def delivered(self, added_at: float) -> None:
        latency = max(0.0, time.time() - added_at)
        with self._lock:
            self.published += 1
            self._recent.append(latency)
        if self._histogram is not None:
            self._histogram.record(latency)

    def percentiles(self) -> tuple[float | None, float | None]:
        with self._lock:
            ordered = sorted(self._recent)
        if not ordered:
            return None, None
        return _at(ordered, 0.5), _at(ordered, 0.99)


def _at(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class OutboxInstruments:
    """The instruments of one meter provider; the observable ones read every live relay."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(
            sc.INSTRUMENTATION_NAME, sc.INSTRUMENTATION_VERSION, schema_url=sc.SCHEMA_URL
        )
        self.live: weakref.WeakSet[Any] = weakref.WeakSet()
        self.latency = meter.create_histogram(
            sc.OUTBOX_LATENCY,
            unit="s",
            description="Seconds from outbox.add() to Kafka's acknowledgement of the row.",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        gauges: tuple[tuple[str, str, str, Callable[[OutboxStats], float | None]], ...] = (
            (sc.OUTBOX_BACKLOG, "{message}", "Rows in the outbox table.", _backlog),
            (sc.OUTBOX_OLDEST_AGE, "s", "Age of the oldest row in the outbox.", _age),
            (sc.OUTBOX_LEASE_HELD, "1", "1 while this relay holds the lease.", _held),
        )
        for name, unit, description, read in gauges:
            meter.create_observable_gauge(
                name, callbacks=[self._callback(read)], unit=unit, description=description
            )
        meter.create_observable_counter(
            sc.OUTBOX_PUBLISHED,
            callbacks=[self._callback(_published)],
            unit="{message}",
            description="Rows Kafka acknowledged through this relay.",
        )

    def _callback(self, read: Callable[[OutboxStats], float | None]) -> Any:
        live = self.live

        def observe(options: CallbackOptions) -> Iterator[Observation]:
            for relay in list(live):
                stats = relay.stats()
                value = read(stats)
                if value is not None:
                    yield Observation(value, {"eventwire.outbox.lease": stats.lease})

        return observe


def _backlog(stats: OutboxStats) -> float | None:
    return stats.backlog


def _age(stats: OutboxStats) -> float | None:
    return stats.oldest_age


def _held(stats: OutboxStats) -> float | None:
    return 1.0 if stats.lease_held else 0.0


def _published(stats: OutboxStats) -> float | None:
    return stats.published


_BY_PROVIDER: weakref.WeakKeyDictionary[MeterProvider, OutboxInstruments] = (
    weakref.WeakKeyDictionary()
)
_BY_PROVIDER_LOCK: Final = threading.Lock()


def instruments_for(provider: MeterProvider) -> OutboxInstruments:
    with _BY_PROVIDER_LOCK:
        instruments = _BY_PROVIDER.get(provider)
        if instruments is None:
            instruments = _BY_PROVIDER[provider] = OutboxInstruments(provider)
        return instruments
