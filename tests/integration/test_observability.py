"""Observability against a real broker: spans end on the delivery report, trace context
travels in the headers, metric points by value, health follows the broker, and no secret
leaks into any signal. The OTel SDK records into in-memory exporters/readers passed through
``eventwire.Telemetry`` (no global provider is touched)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
)

import eventwire
from eventwire.security import OidcClientCredentials, SaslScram, Secret
from eventwire.testing import LocalBroker, ProxiedBroker, capture_logs
from tests.brokers import ON_KAFKA_AND_TANSU
from tests.events import order
from tests.integration.conftest import Topics
from tests.integration.test_spool import _accept_into, _disk_full_past


@dataclass
class Otel:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    telemetry: eventwire.Telemetry

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if name is None or s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        found.extend(item.data.data_points)
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = eventwire.Telemetry(
        tracer_provider=tracer_provider, meter_provider=meter_provider, statistics_interval=0.1
    )
    yield Otel(spans, reader, tracer_provider, telemetry)
    meter_provider.shutdown()
    tracer_provider.shutdown()


# -- spans -----------------------------------------------------------------------------------


@ON_KAFKA_AND_TANSU
async def test_a_lone_publish_has_a_producer_span_with_every_attribute(
    topics: Topics, otel: Otel
) -> None:
    config = topics.config(telemetry=otel.telemetry, client_id="shop-api")
    async with eventwire.AsyncPublisher(config) as publisher:
        receipt = await publisher.publish(order(1))
    topic = topics.name("orders")
    [span] = otel.finished()
    host, port = topics.broker.bootstrap_servers.split(",")[0].rsplit(":", 1)
    assert span.name == f"send {topic}"
    assert span.kind is SpanKind.PRODUCER
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(receipt.partition),
        "messaging.kafka.message.key": "ord-000001",
        "messaging.kafka.offset": receipt.offset,
        "messaging.message.id": receipt.event_id,
        "messaging.client.id": "shop-api",
        "server.address": host,
        "server.port": int(port),
        "eventwire.event.type": "order.placed",
    }
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url == "https://opentelemetry.io/schemas/1.44.0"


async def test_publish_many_has_one_span_per_topic_whose_context_every_message_carries(
    topics: Topics, otel: Otel
) -> None:
    config = topics.config(telemetry=otel.telemetry, client_id="shop-api")
    other = topics.name("refunds")
    topics.broker.create_topic(other, 1)
    async with eventwire.AsyncPublisher(config) as publisher:
        outcomes = await publisher.publish_many([order(n) for n in range(2, 7)])
        refunds = await publisher.publish_many([order(7), order(8)], topic="refunds")
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in [*outcomes, *refunds])
    topic = topics.name("orders")
    by_name = {s.name: s for s in otel.finished()}
    assert sorted(by_name) == sorted([f"send {topic}", f"send {other}"])  # one per call, topic
    span = by_name[f"send {topic}"]
    host, port = topics.broker.bootstrap_servers.split(",")[0].rsplit(":", 1)
    assert span.kind is SpanKind.PRODUCER
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
        "messaging.batch.message_count": 5,
        "messaging.client.id": "shop-api",
        "server.address": host,
        "server.port": int(port),
    }
    assert (by_name[f"send {other}"].attributes or {})["messaging.batch.message_count"] == 2
    for name, count in ((topic, 5), (other, 2)):
        records = topics.broker.consume(name, count=count)
        parents = {_consumer_parent(otel, record) for record in records}
        context = by_name[f"send {name}"].context
        assert context is not None
        assert parents == {(context.trace_id, context.span_id)}


async def test_per_message_spans_when_asked(topics: Topics, otel: Otel) -> None:
    telemetry = dataclasses.replace(otel.telemetry, spans="message")
    async with eventwire.AsyncPublisher(topics.config(telemetry=telemetry)) as publisher:
        batch = await publisher.publish_many([order(n) for n in range(2, 7)])
    spans = otel.finished()
    assert [s.name for s in spans] == [f"send {topics.name('orders')}"] * 5
    by_id = {s.attributes["messaging.message.id"]: s for s in spans}
    for outcome in batch:
        assert isinstance(outcome, eventwire.DeliveryReceipt)
        attributes = by_id[outcome.event_id].attributes or {}
        assert attributes["messaging.kafka.offset"] == outcome.offset
        assert attributes["messaging.destination.partition.id"] == str(outcome.partition)
    records = topics.broker.consume(topics.name("orders"), count=5)
    for record in records:
        span = by_id[(record.header("ce_id") or b"").decode()]
        assert span.context is not None
        assert _consumer_parent(otel, record) == (span.context.trace_id, span.context.span_id)


async def test_a_batch_with_a_failure_is_an_error_span_that_counts_it(
    topics: Topics, otel: Otel
) -> None:
    async with eventwire.AsyncPublisher(topics.config(telemetry=otel.telemetry)) as publisher:
        outcomes = await publisher.publish_many(
            [order(1), order(2, notes="x" * 1_200_000), order(3)]
        )
    assert isinstance(outcomes[1], eventwire.PermanentPublishError)
    [span] = otel.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None
    assert span.status.description.startswith("1 of 3 messages failed; the first: ")
    attributes = span.attributes or {}
    assert attributes["messaging.batch.message_count"] == 3
    assert attributes["eventwire.batch.failed_count"] == 1
    assert attributes["error.type"] == "MSG_SIZE_TOO_LARGE"


async def test_an_unsampled_caller_gets_no_spans_and_its_context_travels_on(
    topics: Topics, otel: Otel
) -> None:
    # A request whose trace was not sampled upstream (a remote parent, sampled flag off):
    # the SDK's default sampler drops every child, so no span is made per message.
    parent = SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(0))
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    for spans in ("batch", "message"):
        telemetry = dataclasses.replace(otel.telemetry, spans=spans)
        async with eventwire.AsyncPublisher(topics.config(telemetry=telemetry)) as publisher:
            token = otel_context.attach(context)
            try:
                outcomes = await publisher.publish_many([order(n) for n in range(3)])
                lone = await publisher.publish(order(3))
            finally:
                otel_context.detach(token)
        assert all(isinstance(o, eventwire.DeliveryReceipt) for o in [*outcomes, lone])
    assert otel.finished() == []
    records = topics.broker.consume(topics.name("orders"), count=8)
    assert {_consumer_parent(otel, record, sampled=False) for record in records} == {
        (0x1234, 0x5678)
    }
    sent = otel.points("messaging.client.sent.messages")
    # Metrics are recorded all the same, and the first publisher's stay counted once it is
    # gone (a cumulative counter never goes back).
    assert [p.value for p in sent] == [8]


def _consumer_parent(otel: Otel, record: Any, *, sampled: bool = True) -> tuple[int, int]:
    """What a consumer continuing the trace from ``record`` gets as its parent: (trace id,
    span id), checked by starting a CONSUMER span in the extracted context."""
    carrier = {name: value.decode() for name, value in record.headers if value is not None}
    assert "traceparent" in carrier
    extracted = propagate.extract(carrier)
    parent = trace.get_current_span(extracted).get_span_context()
    assert parent.is_valid
    assert parent.trace_flags.sampled is sampled
    tracer = otel.tracer_provider.get_tracer("test-consumer")
    span = tracer.start_span("process", context=extracted, kind=SpanKind.CONSUMER)
    consumer = span.get_span_context()
    assert consumer.trace_id == parent.trace_id
    return parent.trace_id, parent.span_id


def test_sync_publisher_spans(topics: Topics, otel: Otel) -> None:
    with eventwire.Publisher(topics.config(telemetry=otel.telemetry)) as publisher:
        receipt = publisher.publish(order(1))
        batch_receipts = publisher.publish_many([order(2), order(3)])
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in batch_receipts)
    lone, batch = otel.finished()
    assert lone.kind is batch.kind is SpanKind.PRODUCER
    assert (lone.attributes or {})["messaging.kafka.offset"] == receipt.offset
    assert (batch.attributes or {})["messaging.batch.message_count"] == 2
    records = topics.broker.consume(topics.name("orders"), count=3)
    by_id = {(record.header("ce_id") or b"").decode(): record for record in records}
    for outcome, span in ((receipt, lone), *((o, batch) for o in batch_receipts)):
        assert isinstance(outcome, eventwire.DeliveryReceipt)
        assert span.context is not None
        parent = _consumer_parent(otel, by_id[outcome.event_id])
        assert parent == (span.context.trace_id, span.context.span_id)


async def test_span_ends_on_the_delivery_report_not_on_produce(
    proxied: ProxiedBroker, otel: Otel
) -> None:
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers, telemetry=otel.telemetry
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(0))  # connection and producer id set up before timing
        latency = 0.25
        proxied.proxy.set_latency(latency)  # each direction: the ack takes >= 2 x latency
        started = time.time_ns()
        await publisher.publish(order(1))
        delivery_ns = time.time_ns() - started
        proxied.proxy.set_latency(0)
    span = otel.finished()[-1]
    assert span.start_time is not None
    assert span.end_time is not None
    duration_ns = span.end_time - span.start_time
    # produce() returns in microseconds; the span lasts until the broker's ack came back.
    assert duration_ns >= 2 * latency * 1e9
    assert started <= span.start_time <= span.end_time <= started + delivery_ns
    assert duration_ns >= 0.9 * delivery_ns  # the span covers (almost) the whole publish


async def test_failed_delivery_is_an_error_span_with_error_type(
    proxied: ProxiedBroker, otel: Otel
) -> None:
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        telemetry=otel.telemetry,
        delivery_timeout=1.0,
        retry=eventwire.RetryPolicy(attempts=2, deadline=30.0, base=0.05, cap=0.1),
        breaker=None,
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(0))
        proxied.proxy.cut()
        with pytest.raises(eventwire.AmbiguousPublishError) as caught:
            await publisher.publish(order(1))
        proxied.proxy.restore()
    span = otel.finished()[-1]
    assert (span.attributes or {})["messaging.message.id"] == caught.value.event_id
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "_MSG_TIMED_OUT"
    assert (span.attributes or {})["eventwire.attempts"] == 2
    assert "messaging.kafka.offset" not in (span.attributes or {})
    [retry] = [e for e in span.events if e.name == "eventwire.retry_scheduled"]
    assert (retry.attributes or {})["error.type"] == "_MSG_TIMED_OUT"


async def test_refused_and_dead_lettered_events_are_visible_on_their_spans(
    topics: Topics, otel: Otel
) -> None:
    big = order(9, notes="x" * 1_200_000)
    async with eventwire.AsyncPublisher(topics.config(telemetry=otel.telemetry)) as publisher:
        with pytest.raises(eventwire.PermanentPublishError):
            await publisher.publish(big)
    topics.broker.create_topic(topics.name("orders.dlq"), 1)
    config = topics.config(telemetry=otel.telemetry, dead_letter=eventwire.DeadLetterPolicy())
    async with eventwire.AsyncPublisher(config) as publisher:
        with pytest.raises(eventwire.DeadLetteredError):
            await publisher.publish(big)
    refused, dead = otel.finished()
    for span in (refused, dead):
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "MSG_SIZE_TOO_LARGE"
    assert [e.name for e in dead.events] == ["eventwire.dead_lettered"]
    assert (dead.attributes or {})["eventwire.dead_letter.topic"] == topics.name("orders.dlq")


async def test_breaker_rejection_is_an_error_span(proxied: ProxiedBroker, otel: Otel) -> None:
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        telemetry=otel.telemetry,
        breaker=eventwire.BreakerPolicy(cooldown=30.0),
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(0))
        proxied.proxy.cut()
        await _until(lambda: publisher.breaker_state == "open", 10.0)
        with pytest.raises(eventwire.CircuitOpenError):
            await publisher.publish(order(1))
        proxied.proxy.restore()
        await publisher.aclose(timeout=0.1)
    [rejected] = [s for s in otel.finished() if s.events]
    assert rejected.status.status_code is StatusCode.ERROR
    assert (rejected.attributes or {})["error.type"] == "CircuitOpenError"
    assert [e.name for e in rejected.events] == ["eventwire.circuit_open"]


async def test_an_event_whose_spool_commit_failed_ends_its_span_as_an_error(
    topics: Topics, otel: Otel, tmp_path: Path
) -> None:
    # Its span started when it was handed to the spool writer and was never ended.
    config = topics.config(spool_path=tmp_path / "s.db", telemetry=otel.telemetry)
    async with eventwire.AsyncPublisher(config) as publisher:
        await (await publisher.accept(order(0))).delivered()
        handles: list[eventwire.Accepted] = []
        with _disk_full_past(1_000_000), pytest.raises(eventwire.SpoolError) as caught:
            await _accept_into(publisher, handles, 20_000)
        await asyncio.gather(*(a.delivered() for a in handles))
    spans = otel.finished(f"send {topics.name('orders')}")
    assert len(spans) == len(handles) + 2  # the first, the accepted, the one refused
    [failed] = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    assert (failed.attributes or {})["error.type"] == "SpoolError"
    assert failed.status.description == str(caught.value)
    assert otel.points("messaging.client.sent.messages")[0].value == len(handles) + 1


async def test_without_an_sdk_nothing_is_recorded_or_injected(topics: Topics, otel: Otel) -> None:
    # This process configures no global SDK: the API's proxy providers are detected once.
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        await publisher.publish(order(1))
    off = eventwire.Telemetry(
        enabled=False, tracer_provider=otel.tracer_provider, meter_provider=None
    )
    async with eventwire.AsyncPublisher(topics.config(telemetry=off)) as publisher:
        await publisher.publish(order(2))
    records = topics.broker.consume(topics.name("orders"), count=2)
    assert len(records) == 2
    for record in records:
        assert record.header("traceparent") is None
        assert record.header("ce_id") is not None
    assert otel.finished() == []


# -- propagation -----------------------------------------------------------------------------


@ON_KAFKA_AND_TANSU
async def test_consumer_continues_the_producer_trace(topics: Topics, otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    config = topics.config(telemetry=otel.telemetry)
    async with eventwire.AsyncPublisher(config) as publisher:
        with tracer.start_as_current_span("handle request") as request:
            receipt = await publisher.publish(order(1))
    [record] = topics.broker.consume(topics.name("orders"), count=1)
    assert record.offset == receipt.offset
    carrier = {name: value.decode() for name, value in record.headers if value is not None}
    assert "traceparent" in carrier
    with tracer.start_as_current_span(
        f"process {record.topic}", context=propagate.extract(carrier), kind=SpanKind.CONSUMER
    ):
        pass
    producer = otel.finished(f"send {topics.name('orders')}")[0]
    consumer = otel.finished(f"process {record.topic}")[0]
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id
    assert consumer.parent is not None
    assert consumer.context is not None
    assert producer.context is not None
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent.span_id == producer.context.span_id


# -- metrics -----------------------------------------------------------------------------------


async def test_metric_points_by_value(topics: Topics, otel: Otel) -> None:
    config = topics.config(telemetry=otel.telemetry, client_id="metrics-test")
    async with eventwire.AsyncPublisher(config) as publisher:
        for n in range(5):
            await publisher.publish(order(n))
        outcomes = await publisher.publish_many([order(n) for n in range(5, 25)])
        assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes)
        with pytest.raises(eventwire.PermanentPublishError):
            await publisher.publish(order(99, notes="x" * 1_200_000))
        # librdkafka statistics arrive every 0.1 s: wait for one taken after the sends.
        await _until(lambda: _value(otel.points("eventwire.kafka.tx_bytes")) > 25 * 500, 10.0)
        queue = otel.points("eventwire.producer.queue.messages")
        outstanding = otel.points("eventwire.publisher.outstanding")
        breaker = otel.points("eventwire.breaker.state")
        retries = otel.points("eventwire.publisher.retries")
        tx_bytes = otel.points("eventwire.kafka.tx_bytes")
        rtt = otel.points("eventwire.kafka.broker.rtt")
    topic = topics.name("orders")
    sent = {
        point.attributes.get("error.type"): point
        for point in otel.points("messaging.client.sent.messages")
    }
    assert sent[None].value == 25
    assert sent["MSG_SIZE_TOO_LARGE"].value == 1
    assert dict(sent[None].attributes) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
        "server.address": topics.broker.bootstrap_servers.rsplit(":", 1)[0],
        "server.port": int(topics.broker.bootstrap_servers.rsplit(":", 1)[1]),
    }
    durations = {
        point.attributes.get("error.type"): point
        for point in otel.points("messaging.client.operation.duration")
    }
    assert durations[None].count == 6  # one point per operation: 5 publishes, 1 batch call
    assert 0 < durations[None].sum < 6 * 30
    assert durations["MSG_SIZE_TOO_LARGE"].count == 1
    assert [(p.value, p.attributes["messaging.client.id"]) for p in queue] == [(0, "metrics-test")]
    assert [p.value for p in outstanding] == [0]
    assert [p.value for p in breaker] == [0]  # closed
    assert [p.value for p in retries] == [0]
    assert tx_bytes[0].value > 25 * 500  # 25 orders of ~650 bytes went over the wire
    assert all(0 <= p.value < 5 for p in rtt)
    assert otel.points("eventwire.spool.backlog") == []  # no spool on this publisher


# -- health ----------------------------------------------------------------------------------


async def test_health_follows_the_broker_within_two_seconds(proxied: ProxiedBroker) -> None:
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        breaker=eventwire.BreakerPolicy(cooldown=0.5, probe_timeout=0.5),
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        first = publisher.health()
        assert first.broker_reachable is None
        assert not first.ready
        await publisher.publish(order(0))
        await _until(lambda: publisher.health().ready, 5.0)
        healthy = publisher.health()
        assert healthy.reasons == ()
        assert healthy.breaker_state == "closed"
        assert healthy.spool_backlog is None
        assert healthy.spool_oldest_age is None
        assert healthy.delivered == 1
        assert json.loads(healthy.to_json()) == healthy.as_dict()

        proxied.proxy.cut()
        cut_at = time.monotonic()
        await _until(lambda: not publisher.health().ready, 2.0)
        assert time.monotonic() - cut_at <= 2.0
        down = publisher.health()
        assert down.reasons
        assert down.last_error is not None
        assert down.last_error_at is not None

        proxied.proxy.restore()
        await _until(lambda: publisher.health().ready, 10.0)
        await publisher.publish(order(1))
    assert not publisher.health().ready
    assert publisher.health().reasons == ("publisher is closed",)


async def test_health_when_the_broker_process_stops_and_restarts(
    private_broker: Callable[[], LocalBroker],
) -> None:
    broker = private_broker()
    broker.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers,
        breaker=eventwire.BreakerPolicy(cooldown=0.5, probe_timeout=0.5),
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        publisher.health()
        await publisher.publish(order(0))
        await _until(lambda: publisher.health().ready, 5.0)
        broker.stop()
        stopped_at = time.monotonic()
        await _until(lambda: not publisher.health().ready, 2.0)
        assert time.monotonic() - stopped_at <= 2.0
        # Tansu comes back empty (no producer ids): readiness is about reaching the cluster.
        broker.restart()
        await _until(lambda: publisher.health().ready, 10.0)
        assert publisher.health().broker_reachable is True
        await publisher.aclose(timeout=0.5)


def test_sync_publisher_health(topics: Topics) -> None:
    with eventwire.Publisher(topics.config()) as publisher:
        publisher.publish(order(0))
        deadline = time.monotonic() + 5.0
        while not publisher.health().ready:
            assert time.monotonic() < deadline
            time.sleep(0.05)  # a readiness probe's cadence, not synchronisation
        status = publisher.health()
    assert status.broker_reachable is True
    assert json.loads(status.to_json())["ready"] is True


# -- logs --------------------------------------------------------------------------------------


async def test_lifecycle_log_lines(topics: Topics) -> None:
    config = topics.config(preset="low_latency", client_id="shop-api")
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            await publisher.publish(order(1))
            await publisher.publish_many([order(2), order(3)])
    started = [e for e in logs if e["event"] == "eventwire.publisher_started"]
    closed = [e for e in logs if e["event"] == "eventwire.publisher_closed"]
    assert len(started) == 1
    assert started[0]["preset"] == "low_latency"
    assert started[0]["bootstrap_servers"] == topics.broker.bootstrap_servers
    assert started[0]["client_id"] == "shop-api"
    assert len(closed) == 1
    assert (closed[0]["delivered"], closed[0]["failed"], closed[0]["undelivered"]) == (3, 0, 0)
    assert all(e["event"].startswith("eventwire.") for e in logs)


# -- secrets ---------------------------------------------------------------------------------

SECRET = "pa55-W0rd-never-shown-4242"  # noqa: S105 - the value the scan looks for


async def test_no_secret_in_logs_spans_metrics_reprs_or_errors(topics: Topics, otel: Otel) -> None:
    texts: list[str] = []
    # Tansu has no SASL: a secret carried through librdkafka but unused on PLAINTEXT...
    carried = topics.config(
        telemetry=otel.telemetry, librdkafka_overrides={"ssl.key.password": SECRET}
    )
    # ...and a SASL password that is really used (the broker cannot authenticate: errors).
    sasl = topics.config(
        telemetry=otel.telemetry,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="shop",
        sasl_password=SECRET,
        delivery_timeout=2.0,
        retry=eventwire.RetryPolicy.never(),
    )
    # The security= variants declare their secrets: a SCRAM password refused the same way,
    # and an OIDC client secret whose token endpoint does not answer.
    scram = topics.config(
        telemetry=otel.telemetry,
        security=SaslScram(username="shop", password=Secret(SECRET), tls=None),
        delivery_timeout=2.0,
        retry=eventwire.RetryPolicy.never(),
    )
    oidc = topics.config(
        telemetry=otel.telemetry,
        security=OidcClientCredentials(
            token_endpoint_url="http://127.0.0.1:9/token",  # noqa: S106 - a URL
            client_id="shop",
            client_secret=Secret(SECRET),
            tls=None,
        ),
        delivery_timeout=2.0,
        retry=eventwire.RetryPolicy.never(),
    )
    with capture_logs() as logs:
        for config in (carried, sasl, scram, oidc):
            texts.append(repr(config))
            async with eventwire.AsyncPublisher(config) as publisher:
                texts.append(repr(publisher))
                outcomes = await publisher.publish_many(
                    [order(1), order(2, notes="x" * 1_200_000), order(3, currency="bad")]
                )
                texts.extend(f"{o!r} {o}" for o in outcomes)
                try:
                    texts.append(repr(await publisher.publish(order(4))))
                except eventwire.EventwireError as exc:
                    texts.append(f"{exc!r} {exc} {exc.__cause__!r}")
                texts.append(publisher.health().to_json())
                texts.append(repr(await publisher.aclose(timeout=2.0)))
    assert isinstance(outcomes[0], eventwire.PublishError)  # SASL did fail
    texts.extend(repr(entry) for entry in logs)
    for span in otel.finished():
        texts.append(span.to_json())
    data = otel.reader.get_metrics_data()
    assert data is not None
    texts.append(data.to_json())
    everything = "\n".join(texts)
    assert SECRET not in everything
    assert len(otel.finished()) >= 8  # the scan did see the spans of every publisher


def _value(points: list[Any]) -> float:
    return sum(point.value for point in points)


async def _until(condition: Any, within: float) -> None:
    """Wait for ``condition()`` like a readiness probe would: check, yield, check again."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_callers_traceparent_header_is_replaced_by_the_spans(
    topics: Topics, otel: Otel
) -> None:
    """One ``traceparent`` per record: the caller's is replaced when tracing records (as the
    publish docstring says), kept when it does not; other headers stay in order."""
    stale = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    headers = [("traceparent", stale), ("x-tenant", "t1"), ("x-tenant", b"t2")]
    async with eventwire.AsyncPublisher(topics.config(telemetry=otel.telemetry)) as traced:
        receipt = await traced.publish(order(1), headers=headers)
    async with eventwire.AsyncPublisher(topics.config()) as plain:
        untraced = await plain.publish(order(2), headers=headers)
    records = {r.header("ce_id"): r for r in topics.broker.consume(topics.name("orders"), count=2)}
    traced_record = records[receipt.event_id.encode()]
    [span] = otel.finished()
    names = [name for name, _ in traced_record.headers]
    assert names.count("traceparent") == 1
    assert f"{span.context.trace_id:032x}".encode() in (traced_record.header("traceparent") or b"")
    assert [v for n, v in traced_record.headers if n == "x-tenant"] == [b"t1", b"t2"]
    plain_record = records[untraced.event_id.encode()]
    assert [v for n, v in plain_record.headers if n == "traceparent"] == [stale.encode()]
