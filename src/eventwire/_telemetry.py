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
statistics (broker RTT, internal queue latency, bytes sent, time throttled by quotas) when
``statistics_interval`` > 0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.propagators.textmap import Setter, TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from eventwire import _semconv as sc
from eventwire._config import PublisherConfig
from eventwire._errors import EventwireError, PublishError
from eventwire._health import Stats
from eventwire._metrics import Instruments, Statistics, instruments_for, parse_statistics
from eventwire._options import Telemetry

if TYPE_CHECKING:
    from eventwire._codec import EncodedEvent, Headers
    from eventwire._outcome import DeliveryReceipt


class Traced(Protocol):
    """What telemetry keeps on an event in flight: its span and its start time."""

    encoded: EncodedEvent
    span: Any
    t0: float | None


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
            sc.INSTRUMENTATION_NAME, sc.INSTRUMENTATION_VERSION, schema_url=sc.SCHEMA_URL
        )
        if tracing
        else None,
        instruments=instruments_for(meter_provider) if metering else None,
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
        instruments: Instruments | None,
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
        #: ``text`` without any secret of the publisher's configuration (the config's own).
        self._scrub = config._scrub
        #: The publisher's counters, read by the observable instruments.
        self.source: Callable[[], Stats] | None = None
        self.statistics: Statistics | None = None
        self.throttled: dict[str, float] = {}
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
        if pending.t0 is not None:
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
        t0 = pending.t0
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
        span = pending.span
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
        span = pending.span
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
        span = pending.span
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

    def on_statistics(self, payload: str) -> None:
        """librdkafka's ``stats_cb`` (poll thread): keep the figures the metrics report."""
        statistics = parse_statistics(payload)
        if statistics is not None:
            # Each payload covers the time since the previous one: the counter is their sum.
            throttled = dict(self.throttled)
            for broker, seconds in statistics.throttle.items():
                throttled[broker] = throttled.get(broker, 0.0) + seconds
            self.throttled = throttled  # replaced whole: the metric reader's thread reads it
            self.statistics = statistics


def _text_key(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:  # no canonical text form: the conventions say leave it out
        return None
