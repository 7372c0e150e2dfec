"""Spans and metrics of one publisher (``Instrumentation``), and whether anything records."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from eventwire import _semconv as sc
from eventwire._config import PublisherConfig
from eventwire._errors import EventwireError, PublishError
from eventwire._health import Stats
from eventwire._metrics import Instruments, Statistics, instruments_for, parse_statistics
from eventwire._options import Telemetry
from eventwire._outcome import DeliveryReceipt
from eventwire._telemetry.carrier import SETTER, TopicSpan, Traced, text_key

if TYPE_CHECKING:
    from eventwire._codec import EncodedEvent

_PRODUCER_SPAN: Final = SpanKind.PRODUCER


def _tracing_off(provider: TracerProvider) -> bool:
    return isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _metrics_off(provider: MeterProvider) -> bool:
    # The API's proxy provider (no SDK set) is private; its class name is stable.
    return isinstance(provider, metrics.NoOpMeterProvider) or (
        type(provider).__name__ == "_ProxyMeterProvider"
    )


def _drops_unsampled_children(provider: TracerProvider) -> bool:
    """Whether the provider's sampler is parent-based and drops every child of an unsampled
    parent (local or remote): the SDK's default ``ParentBased(ALWAYS_ON)`` and its ratio
    variant. Read from the sampler's description, the one thing the API lets a library see;
    an unknown sampler is asked per span, as usual."""
    sampler = getattr(provider, "sampler", None)
    describe = getattr(sampler, "get_description", None)
    if describe is None:
        return False
    try:
        description = str(describe())
    except Exception:  # noqa: BLE001 - a foreign sampler: take the slow, always right way
        return False
    return description.startswith("ParentBased{") and all(
        f"{which}:AlwaysOffSampler" in description
        for which in ("remoteParentNotSampled", "localParentNotSampled")
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
        batch_spans=options.spans == "batch",
        drops_unsampled=tracing and _drops_unsampled_children(tracer_provider),
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
        batch_spans: bool = True,
        drops_unsampled: bool = False,
    ) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.propagator = propagator
        self.client_id = config.client_id
        self.statistics_interval_ms = round(statistics_interval * 1000)
        #: One span per batch call and topic (else one per message).
        self.batch_spans = batch_spans
        #: The sampler drops every child of an unsampled parent (see the module docstring).
        self.drops_unsampled = drops_unsampled
        host, port = _server(config)
        self._base: dict[str, Any] = {
            sc.MESSAGING_SYSTEM: sc.MESSAGING_SYSTEM_KAFKA,
            sc.MESSAGING_OPERATION_NAME: sc.OPERATION_SEND,
            sc.MESSAGING_OPERATION_TYPE: sc.OPERATION_SEND,
            sc.MESSAGING_CLIENT_ID: config.client_id,
            sc.SERVER_ADDRESS: host,
            sc.SERVER_PORT: port,
        }
        #: Per topic: the span name and the span attributes every send to it has (bounded
        #: as the metric attributes are).
        self._topics: dict[str, tuple[str, dict[str, Any]]] = {}
        self._metric_attrs: dict[tuple[str, str | None], dict[str, Any]] = {}
        #: ``messaging.client.sent.messages`` per topic and outcome, with its attributes,
        #: reported by an observable counter: an SDK ``Counter.add`` cleans and hashes the
        #: attributes every call (~6 us).
        self.sent: dict[tuple[str, str | None], list[Any]] = {}  # [count, attributes]
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
            self.instruments.watch(self)

    # -- a lone send -------------------------------------------------------------------------

    def start(self, pending: Traced) -> None:
        """A lone event is taken (``publish``/``accept``): start its span and inject its
        context into the headers. Once per event."""
        if pending.t0 is not None:
            return
        pending.t0 = time.perf_counter()
        if self.tracer is not None:
            pending.span = self.message_span(pending.encoded, None)

    def message_span(self, enc: EncodedEvent, context: otel_context.Context | None) -> Any:
        """Start the span of one message in ``context`` (default: the current one) and inject
        its context into the message's headers; ``None`` when the sampler's decision is known
        to be "not sampled" (the parent's context is injected instead)."""
        tracer = self.tracer
        assert tracer is not None  # noqa: S101 - called only while tracing
        if self.drops_unsampled:
            parent = trace.get_current_span(context).get_span_context()
            if parent.is_valid and not parent.trace_flags.sampled:
                self.propagator.inject(enc.headers, context=context, setter=SETTER)
                return None
        name, attributes = self._topics.get(enc.topic) or self._topic(enc.topic)
        attributes = attributes.copy()
        attributes[sc.MESSAGING_MESSAGE_ID] = enc.event_id
        attributes[sc.EVENTWIRE_EVENT_TYPE] = enc.event_type
        key = text_key(enc.key)
        if key is not None:
            attributes[sc.MESSAGING_KAFKA_MESSAGE_KEY] = key
        span = tracer.start_span(name, context, _PRODUCER_SPAN, attributes)
        self.propagator.inject(
            enc.headers, context=trace.set_span_in_context(span, context), setter=SETTER
        )
        return span

    def finish(self, pending: Traced, outcome: DeliveryReceipt | PublishError) -> None:
        """The outcome of ``pending`` is settled: end its own span and record its metric
        point, if it has them (once). An event of a batch call has neither: the call records
        its outcomes when it returns."""
        span = pending.span
        if span is not None:
            pending.span = None
            if isinstance(outcome, PublishError):
                span.set_attributes(
                    {
                        sc.ERROR_TYPE: outcome.code or type(outcome).__name__,
                        sc.EVENTWIRE_ERROR_CLASS: outcome.category,
                        sc.EVENTWIRE_ATTEMPTS: outcome.attempts,
                    }
                )
                span.set_status(Status(StatusCode.ERROR, self._scrub(str(outcome))))
            else:
                span.set_attributes(
                    {
                        sc.MESSAGING_DESTINATION_PARTITION_ID: str(outcome.partition),
                        sc.MESSAGING_KAFKA_OFFSET: outcome.offset,
                    }
                )
            span.end()
        t0 = pending.t0
        if t0 is None:
            return
        pending.t0 = None
        if self.instruments is not None:
            error_type = (
                outcome.code or type(outcome).__name__
                if isinstance(outcome, PublishError)
                else None
            )
            self.record(pending.encoded.topic, error_type, 1, time.perf_counter() - t0)

    def record(self, topic: str, error_type: str | None, count: int, seconds: float) -> None:
        """One operation's metric point: ``count`` messages to ``topic`` with that outcome,
        sent in ``seconds``."""
        instruments = self.instruments
        if instruments is None:
            return
        key = (topic, error_type)
        attributes = self._metric_attrs.get(key)
        if attributes is None:
            attributes = self._metric_attributes(topic, error_type)
        instruments.duration.record(seconds, attributes)
        with self._lock:  # the sync publisher settles on the poll thread, refuses on callers'
            sent = self.sent.get(key)
            if sent is None:
                self.sent[key] = [count, attributes]
            else:
                sent[0] += count

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
        span, attributes = self._event_target(pending)
        if span is not None:
            attributes[sc.ERROR_TYPE] = error.code or type(error).__name__
            attributes[sc.EVENTWIRE_ERROR_CLASS] = error.category
            attributes[sc.EVENTWIRE_ATTEMPTS] = error.attempts
            attributes[sc.EVENTWIRE_RETRY_DELAY] = round(delay, 3)
            span.add_event(name, attributes)

    def dead_lettered(self, pending: Traced, dead_letter_topic: str) -> None:
        span, attributes = self._event_target(pending)
        if span is not None:
            if pending.span is not None:  # its own span: the topic is the span's too
                span.set_attribute(sc.EVENTWIRE_DEAD_LETTER_TOPIC, dead_letter_topic)
            attributes[sc.EVENTWIRE_DEAD_LETTER_TOPIC] = dead_letter_topic
            span.add_event(sc.EVENT_DEAD_LETTERED, attributes)

    @staticmethod
    def _event_target(pending: Traced) -> tuple[Any, dict[str, Any]]:
        """The span a message's events go to, and their first attributes: its own span, or
        its batch call's span (the events then name the message)."""
        if pending.span is not None:
            return pending.span, {}
        batch: TopicSpan | None = pending.call_span
        if batch is None:
            return None, {}
        return batch.span, {sc.MESSAGING_MESSAGE_ID: pending.encoded.event_id}

    def rejected(self, enc: EncodedEvent, error: PublishError) -> None:
        """A lone event the circuit breaker refused: an ERROR span of its own (nothing was
        sent, so no metric point)."""
        if self.tracer is None:
            return
        name, attributes = self._topics.get(enc.topic) or self._topic(enc.topic)
        attributes = attributes.copy()
        attributes[sc.MESSAGING_MESSAGE_ID] = enc.event_id
        attributes[sc.EVENTWIRE_EVENT_TYPE] = enc.event_type
        attributes[sc.ERROR_TYPE] = type(error).__name__
        attributes[sc.EVENTWIRE_ERROR_CLASS] = error.category
        span = self.tracer.start_span(name, kind=_PRODUCER_SPAN, attributes=attributes)
        span.add_event(sc.EVENT_CIRCUIT_OPEN)
        span.set_status(Status(StatusCode.ERROR, self._scrub(str(error))))
        span.end()

    # -- helpers ---------------------------------------------------------------------------

    def _topic(self, topic: str) -> tuple[str, dict[str, Any]]:
        attributes = self._base.copy()
        attributes[sc.MESSAGING_DESTINATION_NAME] = topic
        entry = (f"send {topic}", attributes)
        if len(self._topics) < 10_000:  # bounded: topics
            self._topics[topic] = entry
        return entry

    def batch_span(self, topic: str, context: otel_context.Context) -> TopicSpan:
        """Start the span of a batch call's sends to ``topic``, and the headers that carry
        its context."""
        tracer = self.tracer
        assert tracer is not None  # noqa: S101 - called only while tracing
        name, attributes = self._topics.get(topic) or self._topic(topic)
        span = tracer.start_span(name, context, _PRODUCER_SPAN, attributes)
        fields: dict[str, str] = {}
        self.propagator.inject(fields, context=trace.set_span_in_context(span, context))
        return TopicSpan(span, {name: value.encode() for name, value in fields.items()})

    def end_batch_span(
        self, topic_span: TopicSpan, failed: int, first: PublishError | None
    ) -> None:
        span = topic_span.span
        attributes: dict[str, Any] = {sc.MESSAGING_BATCH_MESSAGE_COUNT: topic_span.count}
        if failed:
            attributes[sc.EVENTWIRE_BATCH_FAILED_COUNT] = failed
            if first is not None:
                attributes[sc.ERROR_TYPE] = first.code or type(first).__name__
                attributes[sc.EVENTWIRE_ERROR_CLASS] = first.category
            description = f"{failed} of {topic_span.count} messages failed"
            if first is not None:
                description += f"; the first: {self._scrub(str(first))}"
            span.set_status(Status(StatusCode.ERROR, description))
        span.set_attributes(attributes)
        span.end()

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
