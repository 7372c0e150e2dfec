"""The metrics of publishers: one set of instruments per meter provider, and librdkafka's
statistics they report.

Observable instruments report each live publisher with its ``messaging.client.id``, from a
``Stats`` snapshot the publisher gives (pulled when the metric reader collects), and from the
last librdkafka statistics (broker RTT, internal queue latency, bytes sent) and their running
totals (time the brokers throttled the producer).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from eventwire import _semconv as sc
from eventwire._health import Stats

#: Bucket boundaries (s) the semantic conventions advise for ``*.operation.duration``.
_DURATION_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


class Observed(Protocol):
    """What the instruments read of one publisher's instrumentation."""

    client_id: str
    source: Callable[[], Stats] | None
    statistics: Statistics | None
    #: Seconds each broker throttled the producer (quotas), summed over every statistics.
    throttled: dict[str, float]
    sent: dict[tuple[str, str | None], list[Any]]  # [count, attributes]


class _Window(msgspec.Struct):
    avg: int = 0
    sum: int = 0


class _RawBroker(msgspec.Struct):
    name: str = ""
    nodeid: int = -1
    rtt: _Window = msgspec.field(default_factory=_Window)
    int_latency: _Window = msgspec.field(default_factory=_Window)
    throttle: _Window = msgspec.field(default_factory=_Window)


class _RawStatistics(msgspec.Struct):
    tx_bytes: int = 0
    brokers: dict[str, _RawBroker] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Statistics:
    """The last librdkafka statistics: per broker (``host:port/id``) RTT and internal queue
    latency in seconds, the time it throttled the producer since the previous statistics
    (quota violations, from the ``throttle_time`` of its responses) in seconds, and bytes sent
    to brokers."""

    rtt: dict[str, float]
    queue_latency: dict[str, float]
    throttle: dict[str, float]
    tx_bytes: int

    @classmethod
    def of(cls, raw: _RawStatistics) -> Statistics:
        brokers = [b for b in raw.brokers.values() if b.nodeid >= 0]  # bootstrap entries: -1
        return cls(
            rtt={b.name: b.rtt.avg / 1e6 for b in brokers},
            queue_latency={b.name: b.int_latency.avg / 1e6 for b in brokers},
            # librdkafka keeps RTT and latency in microseconds, throttle times in milliseconds.
            throttle={b.name: b.throttle.sum / 1e3 for b in brokers},
            tx_bytes=raw.tx_bytes,
        )


# -- instruments, one set per meter provider ------------------------------------------------


class Instruments:
    """The instruments of one meter provider, shared by every publisher using it: the
    observable ones report each live publisher with its ``messaging.client.id``."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(
            sc.INSTRUMENTATION_NAME, sc.INSTRUMENTATION_VERSION, schema_url=sc.SCHEMA_URL
        )
        self.live: weakref.WeakSet[Any] = weakref.WeakSet()
        #: What publishers gone since counted (``sent.messages`` is a cumulative counter: a
        #: closed publisher's messages stay counted), per attribute set.
        self._retired: dict[frozenset[tuple[str, Any]], tuple[int, dict[str, Any]]] = {}
        self._retired_lock = threading.Lock()
        self.duration = meter.create_histogram(
            sc.MESSAGING_CLIENT_OPERATION_DURATION,
            unit="s",
            description="Duration of a send, from produce to its delivery report.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        meter.create_observable_counter(
            sc.MESSAGING_CLIENT_SENT_MESSAGES,
            callbacks=[self._observe_sent],
            unit="{message}",
            description="Messages the producer attempted to send, counted when settled.",
        )
        gauges = (
            (sc.QUEUE_MESSAGES, "{message}", "Messages in librdkafka's queue.", _queue),
            (sc.OUTSTANDING, "{message}", "Accepted events not settled yet.", _outstanding),
            (sc.BREAKER_STATE, "1", "-1 disabled, 0 closed, 1 half-open, 2 open.", _breaker),
            (sc.SPOOL_BACKLOG, "{message}", "Events in the durable spool.", _spool_backlog),
            (sc.SPOOL_OLDEST_AGE, "s", "Age of the oldest spooled event.", _spool_age),
            (
                sc.KAFKA_BROKER_RTT,
                "s",
                "Broker round-trip time (librdkafka avg).",
                _broker_figure("rtt"),
            ),
            (
                sc.KAFKA_QUEUE_LATENCY,
                "s",
                "librdkafka internal queue latency (avg).",
                _broker_figure("queue_latency"),
            ),
        )
        for name, unit, description, read in gauges:
            meter.create_observable_gauge(
                name, callbacks=[self._callback(read)], unit=unit, description=description
            )
        counters = (
            (sc.RETRIES, "{retry}", "Re-sends scheduled after a failed delivery.", _retries),
            (sc.DEAD_LETTERED, "{message}", "Events written to the dead-letter topic.", _dead),
            (sc.RECREATIONS, "{producer}", "Producers replaced after fatal errors.", _recreated),
            (sc.KAFKA_TX_BYTES, "By", "Bytes sent to brokers (librdkafka).", _tx_bytes),
            (
                sc.KAFKA_BROKER_THROTTLE_TIME,
                "s",
                "Time the broker throttled the producer (quota), per broker (librdkafka).",
                _throttle_time,
            ),
        )
        for name, unit, description, read in counters:
            meter.create_observable_counter(
                name, callbacks=[self._callback(read)], unit=unit, description=description
            )

    def watch(self, instrumentation: Observed) -> None:
        """Report ``instrumentation`` while it lives; then keep what it counted."""
        self.live.add(instrumentation)
        # The dict, not the instrumentation: the finalizer must not keep it alive.
        weakref.finalize(instrumentation, self._retire, instrumentation.sent)

    def _retire(self, sent: dict[Any, list[Any]]) -> None:
        with self._retired_lock:
            _add_series(self._retired, list(sent.values()))

    def _observe_sent(self, options: CallbackOptions) -> Iterator[Observation]:
        # Publishers with the same attributes (same topic and server) share one series.
        with self._retired_lock:
            totals = dict(self._retired)
            for instrumentation in list(self.live):
                _add_series(totals, list(instrumentation.sent.values()))
        for count, attributes in totals.values():
            yield Observation(count, attributes)

    def _callback(self, read: _Reader) -> Any:
        live = self.live

        def observe(options: CallbackOptions) -> Iterator[Observation]:
            for instrumentation in list(live):
                source = instrumentation.source
                if source is None:
                    continue
                base = {sc.MESSAGING_CLIENT_ID: instrumentation.client_id}
                for value, extra in read(source(), instrumentation):
                    yield Observation(value, {**base, **extra} if extra else base)

        return observe


def _add_series(
    totals: dict[frozenset[tuple[str, Any]], tuple[int, dict[str, Any]]],
    counted: list[list[Any]],
) -> None:
    for count, attributes in counted:
        series = frozenset(attributes.items())
        previous = totals[series][0] if series in totals else 0
        totals[series] = (previous + count, attributes)


_Reader = Any  # Callable[[Stats, Observed], Iterable[tuple[float, dict]]]
_Point = Iterable[tuple[float, dict[str, str]]]


def _queue(stats: Stats, _: Observed) -> _Point:
    return [(stats.queue_depth, {})]


def _outstanding(stats: Stats, _: Observed) -> _Point:
    return [(stats.outstanding, {})]


def _breaker(stats: Stats, _: Observed) -> _Point:
    return [(sc.BREAKER_STATE_VALUES[stats.breaker_state], {})]


def _spool_backlog(stats: Stats, _: Observed) -> _Point:
    return [] if stats.spool_backlog is None else [(stats.spool_backlog, {})]


def _spool_age(stats: Stats, _: Observed) -> _Point:
    age = stats.spool_oldest_age
    return [] if age is None else [(age, {})]


def _retries(stats: Stats, _: Observed) -> _Point:
    return [(stats.retries, {})]


def _dead(stats: Stats, _: Observed) -> _Point:
    return [(stats.dead_lettered, {})]


def _recreated(stats: Stats, _: Observed) -> _Point:
    return [(stats.recreations, {})]


def _broker_figure(figure: str) -> _Reader:
    """A reader of one per-broker figure of the last librdkafka statistics."""

    def read(_: Stats, instrumentation: Observed) -> _Point:
        stats = instrumentation.statistics
        if stats is None:
            return []
        per_broker: dict[str, float] = getattr(stats, figure)
        return [(value, {sc.KAFKA_BROKER: name}) for name, value in per_broker.items()]

    return read


def _tx_bytes(_: Stats, instrumentation: Observed) -> _Point:
    stats = instrumentation.statistics
    return [] if stats is None else [(stats.tx_bytes, {})]


def _throttle_time(_: Stats, instrumentation: Observed) -> _Point:
    return [
        (seconds, {sc.KAFKA_BROKER: name}) for name, seconds in instrumentation.throttled.items()
    ]


_BY_PROVIDER: weakref.WeakKeyDictionary[MeterProvider, Instruments] = weakref.WeakKeyDictionary()
_BY_PROVIDER_LOCK: Final = threading.Lock()


def instruments_for(provider: MeterProvider) -> Instruments:
    with _BY_PROVIDER_LOCK:
        instruments = _BY_PROVIDER.get(provider)
        if instruments is None:
            instruments = _BY_PROVIDER[provider] = Instruments(provider)
        return instruments


def parse_statistics(payload: str) -> Statistics | None:
    """The figures of one librdkafka statistics payload, or ``None`` if it does not parse."""
    try:
        return Statistics.of(msgspec.json.decode(payload, type=_RawStatistics))
    except msgspec.DecodeError:
        return None
