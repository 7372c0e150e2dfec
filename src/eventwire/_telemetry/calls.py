"""The telemetry of one ``publish_many``/``accept_many`` call: its batch spans (or a span per
message) and, when it returns, its metric points."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace

from eventwire._errors import PublishError
from eventwire._outcome import DeliveryReceipt
from eventwire._telemetry.carrier import SETTER, TopicSpan, Traced
from eventwire._telemetry.instrumentation import Instrumentation

#: What the failures of a batch call are not counted for: never handed to the producer.
NOT_SENT: Final = frozenset({"circuit_open", "spool_full"})


class CallTelemetry:
    """The telemetry of one ``publish_many``/``accept_many`` call: its spans (one per topic,
    or one per message) and, when it returns, its metric points.

    ``prepare`` runs on the caller's thread for each event handed to the core; ``end`` once,
    when the call returns (also when it is cancelled: then with what was settled so far).
    """

    __slots__ = ("_context", "_inst", "_parent_fields", "_started", "_topics", "traces")

    def __init__(self, inst: Instrumentation) -> None:
        self._inst = inst
        self._context = otel_context.get_current()
        self._started = time.perf_counter()
        self._topics: dict[str, TopicSpan] = {}
        #: Whether ``prepare`` does anything (no tracer: the call only records metrics).
        self.traces = inst.tracer is not None
        #: The caller's own context's headers, when no message of the call can be sampled.
        self._parent_fields: dict[str, bytes] | None = None
        if self.traces and inst.drops_unsampled:
            parent = trace.get_current_span(self._context).get_span_context()
            if parent.is_valid and not parent.trace_flags.sampled:
                fields: dict[str, str] = {}
                inst.propagator.inject(fields, context=self._context)
                self._parent_fields = {name: value.encode() for name, value in fields.items()}

    def prepare(self, record: Traced) -> None:
        """``record`` (of this call) is handed to the core: give it its creation context."""
        enc = record.encoded
        fields = self._parent_fields
        if fields is None:
            inst = self._inst
            if not inst.batch_spans:
                record.span = inst.message_span(enc, self._context)
                return
            topic_span = self._topics.get(enc.topic)
            if topic_span is None:
                topic_span = self._topics[enc.topic] = inst.batch_span(enc.topic, self._context)
            topic_span.count += 1
            record.call_span = topic_span
            fields = topic_span.fields
        headers = enc.headers
        if type(headers) is dict:
            headers.update(fields)
        else:
            for name, value in fields.items():
                SETTER.set(headers, name, value.decode())

    def end(self, outcomes: Sequence[object]) -> None:
        """The call returns: end its batch spans and record its metric points, one per topic
        and outcome (outcomes still ``None``, of a cancelled call, are left out)."""
        inst = self._inst
        counts: dict[tuple[str, str | None], int] = {}
        failed: dict[str, int] = {}
        first: dict[str, PublishError] = {}
        for outcome in outcomes:
            if type(outcome) is DeliveryReceipt:
                key: tuple[str, str | None] = (outcome.topic, None)
            elif isinstance(outcome, PublishError) and outcome.category not in NOT_SENT:
                topic = outcome.topic
                key = (topic, outcome.code or type(outcome).__name__)
                failed[topic] = failed.get(topic, 0) + 1
                first.setdefault(topic, outcome)
            else:
                continue
            counts[key] = counts.get(key, 0) + 1
        for topic, topic_span in self._topics.items():
            inst.end_batch_span(topic_span, failed.get(topic, 0), first.get(topic))
        self._topics = {}
        if inst.instruments is not None and counts:
            seconds = time.perf_counter() - self._started
            for (topic, error_type), count in counts.items():
                inst.record(topic, error_type, count, seconds)
