"""OpenTelemetry for publishers: a PRODUCER span per event from ``publish()`` to its delivery
report, trace-context injection into the Kafka headers, and metrics.

Only ``opentelemetry-api`` is required; the SDK is the application's choice. The providers
are the global ones unless ``Telemetry`` names others (the seam tests use). Whether anything
records is decided **once**, when the publisher is built: with no SDK configured (the API's
proxy/no-op providers) no ``Instrumentation`` exists and the per-event path pays a single
``is None`` test. Configure the SDK before building publishers.

Spans: one per event, named ``send {topic}``, kind PRODUCER, parent the caller's current
context; ``publish_many`` makes one span per message (no create/send split: every message is
produced and acknowledged on its own, so its span measures exactly that). The span is started
when the core takes the event (with a spool: when the caller hands it to the spool, in the
caller's context, not on the writer thread), its context injected as
``traceparent``/``tracestate`` headers, and it ends on the loop thread when the outcome is
settled: partition and offset on success; status ERROR with ``error.type`` (the librdkafka
code, else the error class) on failure. Retries, parking in the spool and dead-lettering are
span events; a breaker rejection is an ERROR span of its own. No payload and no secret is
ever an attribute.

Metrics: ``messaging.client.operation.duration`` (s, one point per settled event, from
produce to outcome) and ``messaging.client.sent.messages`` (one per settled event, with
``error.type`` on failures); observable instruments for queue depth, outstanding events,
retries, dead-letters, producer recreations, breaker state, spool backlog/age, and librdkafka
statistics (broker RTT, internal queue latency, bytes sent) when ``statistics_interval`` > 0.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.propagators.textmap import Setter, TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from eventwire import _semconv as sc
from eventwire._config import PublisherConfig
from eventwire._errors import EventwireError, PublishError
from eventwire._health import Stats
from eventwire._options import Telemetry

if TYPE_CHECKING:
    from eventwire._codec import EncodedEvent, Headers
    from eventwire._outcome import DeliveryReceipt


class Traced(Protocol):
    """What telemetry keeps on an event in flight: its span and its start time."""

    encoded: EncodedEvent
    span: Any
    t0: float | None


_VERSION: Final = "0.1.0"
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


class _HeaderSetter(Setter["Headers"]):
    """Writes propagation fields into a record's headers, replacing a same-named one."""

    def set(self, carrier: Headers, key: str, value: str) -> None:
        if isinstance(carrier, dict):
            carrier[key] = value.encode()
            return
        carrier[:] = [item for item in carrier if item[0] != key]
        carrier.append((key, value.encode()))


_SETTER: Final = _HeaderSetter()


def _tracing_off(provider: TracerProvider) -> bool:
    return isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _metrics_off(provider: MeterProvider) -> bool:
    # The API's proxy provider (no SDK set) is private; its class name is stable.
    return isinstance(provider, metrics.NoOpMeterProvider) or (
        type(provider).__name__ == "_ProxyMeterProvider"
    )


def instrumentation_for(config: PublisherConfig) -> Instrumentation | None:
    """The instrumentation for a new publisher, or ``None`` when nothing would record."""
    options: Telemetry = config.telemetry
    if not options.enabled:
        return None
    tracer_provider = options.tracer_provider or trace.get_tracer_provider()
    meter_provider = options.meter_provider or metrics.get_meter_provider()
    tracing = not _tracing_off(tracer_provider)
    metering = not _metrics_off(meter_provider)
    if not tracing and not metering:
        return None
    return Instrumentation(
        config,
        tracer=tracer_provider.get_tracer(
            sc.INSTRUMENTATION_NAME, _VERSION, schema_url=sc.SCHEMA_URL
        )
        if tracing
        else None,
        instruments=_instruments(meter_provider) if metering else None,
        propagator=options.propagator or propagate.get_global_textmap(),
        statistics_interval=options.statistics_interval if metering else 0.0,
    )


def _server(config: PublisherConfig) -> tuple[str, int]:
    """``server.address``/``server.port``: the first bootstrap server."""
    first = config.bootstrap_servers.split(",")[0].strip()
    first = first.rpartition("://")[2]
    host, _, port = first.rpartition(":")
    return host.strip("[]"), int(port)


class Instrumentation:
    """Spans and metrics of one publisher. Per-event methods run on the thread that settles
    outcomes (the loop thread for ``AsyncPublisher``); ``on_statistics`` on the poll thread."""

    def __init__(
        self,
        config: PublisherConfig,
        *,
        tracer: trace.Tracer | None,
        instruments: _Instruments | None,
        propagator: TextMapPropagator,
        statistics_interval: float,
    ) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.propagator = propagator
        self.client_id = config.client_id
        self.statistics_interval_ms = round(statistics_interval * 1000)
        host, port = _server(config)
        self._base: dict[str, Any] = {
            sc.MESSAGING_SYSTEM: sc.MESSAGING_SYSTEM_KAFKA,
            sc.MESSAGING_OPERATION_NAME: sc.OPERATION_SEND,
            sc.MESSAGING_OPERATION_TYPE: sc.OPERATION_SEND,
            sc.MESSAGING_CLIENT_ID: config.client_id,
            sc.SERVER_ADDRESS: host,
            sc.SERVER_PORT: port,
        }
        self._metric_attrs: dict[tuple[str, str | None], dict[str, Any]] = {}
        #: ``messaging.client.sent.messages`` per attribute set, reported by an observable
        #: counter: an SDK ``Counter.add`` cleans and hashes the attributes every call (~6 us).
        self.sent: dict[tuple[str, str | None], int] = {}
        self._secrets = [
            str(value)
            for (key, value), (_, shown) in zip(
                config._to_librdkafka().items(), config.redacted_librdkafka().items(), strict=True
            )
            if shown != value and str(value)
        ]
        #: The publisher's counters, read by the observable instruments.
        self.source: Callable[[], Stats] | None = None
        self.statistics: _Statistics | None = None
        self._lock = threading.Lock()

    def observe(self, source: Callable[[], Stats]) -> None:
        """Report ``source()``'s figures through the observable instruments."""
        self.source = source
        if self.instruments is not None:
            self.instruments.live.add(self)

    # -- per event -------------------------------------------------------------------------

    def start(self, pending: Traced) -> None:
        """The core took ``pending``: start its span and inject its context into the headers.
        Once per event: a produce tried again after a full queue keeps the first span."""
        if getattr(pending, "t0", None) is not None:
            return
        pending.t0 = time.perf_counter()
        tracer = self.tracer
        if tracer is None:
            pending.span = None
            return
        enc = pending.encoded
        attributes = self._base.copy()
        attributes[sc.MESSAGING_DESTINATION_NAME] = enc.topic
        attributes[sc.MESSAGING_MESSAGE_ID] = enc.event_id
        attributes[sc.EVENTWIRE_EVENT_TYPE] = enc.event_type
        key = _text_key(enc.key)
        if key is not None:
            attributes[sc.MESSAGING_KAFKA_MESSAGE_KEY] = key
        span = tracer.start_span(f"send {enc.topic}", kind=SpanKind.PRODUCER, attributes=attributes)
        self.propagator.inject(enc.headers, context=trace.set_span_in_context(span), setter=_SETTER)
        pending.span = span

    def finish(self, pending: Traced, outcome: DeliveryReceipt | PublishError) -> None:
        """The outcome of ``pending`` is settled: record it and end its span (once)."""
        t0 = getattr(pending, "t0", None)
        if t0 is None:
            return
        pending.t0 = None
        span = pending.span
        pending.span = None
        topic = pending.encoded.topic
        if isinstance(outcome, PublishError):
            error_type = outcome.code or type(outcome).__name__
            if span is not None:
                span.set_attribute(sc.ERROR_TYPE, error_type)
                span.set_attribute(sc.EVENTWIRE_ERROR_CLASS, outcome.category)
                span.set_attribute(sc.EVENTWIRE_ATTEMPTS, outcome.attempts)
                span.set_status(Status(StatusCode.ERROR, self._scrub(str(outcome))))
        else:
            error_type = None
            if span is not None:
                span.set_attribute(sc.MESSAGING_DESTINATION_PARTITION_ID, str(outcome.partition))
                span.set_attribute(sc.MESSAGING_KAFKA_OFFSET, outcome.offset)
        if span is not None:
            span.end()
        instruments = self.instruments
        if instruments is not None:
            key = (topic, error_type)
            attributes = self._metric_attrs.get(key)
            if attributes is None:
                attributes = self._metric_attributes(topic, error_type)
            instruments.duration.record(time.perf_counter() - t0, attributes)
            with self._lock:  # the sync publisher settles on the poll thread, refuses on callers'
                self.sent[key] = self.sent.get(key, 0) + 1

    def not_sent(self, pending: Traced, error: EventwireError) -> None:
        """``pending`` will never be sent (its spool commit failed): end its span with the
        error, and record no metric point, as for an event the breaker refused."""
        span = getattr(pending, "span", None)
        pending.t0 = pending.span = None
        if span is not None:
            span.set_attribute(sc.ERROR_TYPE, type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, self._scrub(str(error))))
            span.end()

    def retry_scheduled(self, pending: Traced, error: PublishError, delay: float) -> None:
        self._failed_attempt(sc.EVENT_RETRY_SCHEDULED, pending, error, delay)

    def parked(self, pending: Traced, error: PublishError, delay: float) -> None:
        """A spooled event whose retries ran out waits in the spool: a span event, not the
        end of its span (its final outcome ends it)."""
        self._failed_attempt(sc.EVENT_SPOOLED_FOR_RETRY, pending, error, delay)

    def _failed_attempt(
        self, name: str, pending: Traced, error: PublishError, delay: float
    ) -> None:
        span = getattr(pending, "span", None)
        if span is not None:
            span.add_event(
                name,
                {
                    sc.ERROR_TYPE: error.code or type(error).__name__,
                    sc.EVENTWIRE_ERROR_CLASS: error.category,
                    sc.EVENTWIRE_ATTEMPTS: error.attempts,
                    sc.EVENTWIRE_RETRY_DELAY: round(delay, 3),
                },
            )

    def dead_lettered(self, pending: Traced, dead_letter_topic: str) -> None:
        span = getattr(pending, "span", None)
        if span is not None:
            span.set_attribute(sc.EVENTWIRE_DEAD_LETTER_TOPIC, dead_letter_topic)
            span.add_event(
                sc.EVENT_DEAD_LETTERED, {sc.EVENTWIRE_DEAD_LETTER_TOPIC: dead_letter_topic}
            )

    def rejected(self, enc: EncodedEvent, error: PublishError) -> None:
        """An event the circuit breaker refused: an ERROR span of its own (nothing was sent,
        so no metric point)."""
        if self.tracer is None:
            return
        attributes = self._base.copy()
        attributes[sc.MESSAGING_DESTINATION_NAME] = enc.topic
        attributes[sc.MESSAGING_MESSAGE_ID] = enc.event_id
        attributes[sc.EVENTWIRE_EVENT_TYPE] = enc.event_type
        attributes[sc.ERROR_TYPE] = type(error).__name__
        attributes[sc.EVENTWIRE_ERROR_CLASS] = error.category
        span = self.tracer.start_span(
            f"send {enc.topic}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        span.add_event(sc.EVENT_CIRCUIT_OPEN)
        span.set_status(Status(StatusCode.ERROR, self._scrub(str(error))))
        span.end()

    # -- helpers ---------------------------------------------------------------------------

    def _metric_attributes(self, topic: str, error_type: str | None) -> dict[str, Any]:
        # messaging.client.id is not a metric attribute in the conventions: two publishers
        # sending to one topic share a series.
        attributes = {
            key: value for key, value in self._base.items() if key != sc.MESSAGING_CLIENT_ID
        }
        attributes[sc.MESSAGING_DESTINATION_NAME] = topic
        if error_type is not None:
            attributes[sc.ERROR_TYPE] = error_type
        if len(self._metric_attrs) < 10_000:  # bounded: topics x error types
            self._metric_attrs[(topic, error_type)] = attributes
        return attributes

    def attributes_of(self, key: tuple[str, str | None]) -> dict[str, Any]:
        return self._metric_attrs.get(key) or self._metric_attributes(*key)

    def _scrub(self, text: str) -> str:
        """``text`` without any secret of the publisher's configuration."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def on_statistics(self, payload: str) -> None:
        """librdkafka's ``stats_cb`` (poll thread): keep the figures the metrics report."""
        try:
            stats = msgspec.json.decode(payload, type=_RawStatistics)
        except msgspec.DecodeError:
            return
        self.statistics = _Statistics.of(stats)


# -- librdkafka statistics ----------------------------------------------------------------


class _Window(msgspec.Struct):
    avg: int = 0


class _RawBroker(msgspec.Struct):
    name: str = ""
    nodeid: int = -1
    rtt: _Window = msgspec.field(default_factory=_Window)
    int_latency: _Window = msgspec.field(default_factory=_Window)


class _RawStatistics(msgspec.Struct):
    tx_bytes: int = 0
    brokers: dict[str, _RawBroker] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Statistics:
    """The last librdkafka statistics: per broker (``host:port/id``) RTT and internal queue
    latency in seconds, and bytes sent to brokers."""

    rtt: dict[str, float]
    queue_latency: dict[str, float]
    tx_bytes: int

    @classmethod
    def of(cls, raw: _RawStatistics) -> _Statistics:
        brokers = [b for b in raw.brokers.values() if b.nodeid >= 0]  # bootstrap entries: -1
        return cls(
            rtt={b.name: b.rtt.avg / 1e6 for b in brokers},
            queue_latency={b.name: b.int_latency.avg / 1e6 for b in brokers},
            tx_bytes=raw.tx_bytes,
        )


# -- instruments, one set per meter provider ------------------------------------------------


class _Instruments:
    """The instruments of one meter provider, shared by every publisher using it: the
    observable ones report each live publisher with its ``messaging.client.id``."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(sc.INSTRUMENTATION_NAME, _VERSION, schema_url=sc.SCHEMA_URL)
        self.live: weakref.WeakSet[Instrumentation] = weakref.WeakSet()
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
        )
        for name, unit, description, read in counters:
            meter.create_observable_counter(
                name, callbacks=[self._callback(read)], unit=unit, description=description
            )

    def _observe_sent(self, options: CallbackOptions) -> Iterator[Observation]:
        # Publishers with the same attributes (same topic and server) share one series.
        totals: dict[frozenset[tuple[str, Any]], tuple[int, dict[str, Any]]] = {}
        for instrumentation in list(self.live):
            for key, count in list(instrumentation.sent.items()):
                attributes = instrumentation.attributes_of(key)
                series = frozenset(attributes.items())
                previous = totals[series][0] if series in totals else 0
                totals[series] = (previous + count, attributes)
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


_Reader = Any  # Callable[[Stats, Instrumentation], Iterable[tuple[float, dict]]]
_Point = Iterable[tuple[float, dict[str, str]]]


def _queue(stats: Stats, _: Instrumentation) -> _Point:
    return [(stats.queue_depth, {})]


def _outstanding(stats: Stats, _: Instrumentation) -> _Point:
    return [(stats.outstanding, {})]


def _breaker(stats: Stats, _: Instrumentation) -> _Point:
    return [(sc.BREAKER_STATE_VALUES[stats.breaker_state], {})]


def _spool_backlog(stats: Stats, _: Instrumentation) -> _Point:
    return [] if stats.spool_backlog is None else [(stats.spool_backlog, {})]


def _spool_age(stats: Stats, _: Instrumentation) -> _Point:
    age = stats.spool_oldest_age
    return [] if age is None else [(age, {})]


def _retries(stats: Stats, _: Instrumentation) -> _Point:
    return [(stats.retries, {})]


def _dead(stats: Stats, _: Instrumentation) -> _Point:
    return [(stats.dead_lettered, {})]


def _recreated(stats: Stats, _: Instrumentation) -> _Point:
    return [(stats.recreations, {})]


def _broker_figure(figure: str) -> _Reader:
    """A reader of one per-broker figure of the last librdkafka statistics."""

    def read(_: Stats, instrumentation: Instrumentation) -> _Point:
        stats = instrumentation.statistics
        if stats is None:
            return []
        per_broker: dict[str, float] = getattr(stats, figure)
        return [(value, {sc.KAFKA_BROKER: name}) for name, value in per_broker.items()]

    return read


def _tx_bytes(_: Stats, instrumentation: Instrumentation) -> _Point:
    stats = instrumentation.statistics
    return [] if stats is None else [(stats.tx_bytes, {})]


_BY_PROVIDER: weakref.WeakKeyDictionary[MeterProvider, _Instruments] = weakref.WeakKeyDictionary()
_BY_PROVIDER_LOCK: Final = threading.Lock()


def _instruments(provider: MeterProvider) -> _Instruments:
    with _BY_PROVIDER_LOCK:
        instruments = _BY_PROVIDER.get(provider)
        if instruments is None:
            instruments = _BY_PROVIDER[provider] = _Instruments(provider)
        return instruments


def _text_key(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:  # no canonical text form: the conventions say leave it out
        return None
