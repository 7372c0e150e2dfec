"""The OpenTelemetry SDK set-up the telemetry benchmarks measure: every span recorded and handed
to a batch processor whose exporter drops it, every metric aggregated in memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Sampler


class NoOpExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def sdk_providers(sampler: Sampler | None = None) -> tuple[TracerProvider, MeterProvider]:
    """A recording tracer provider (queue large enough that no span is dropped; the SDK's
    default sampler unless ``sampler``) and meter provider; shut both down after use."""
    tracer_provider = TracerProvider() if sampler is None else TracerProvider(sampler=sampler)
    tracer_provider.add_span_processor(BatchSpanProcessor(NoOpExporter(), max_queue_size=1_000_000))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])
