"""Helpers of the secured-cluster tests: one Apache Kafka broker per security mode and module
(``module_cluster``), round trips of 10,000 events, and the failure a publisher reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import eventwire
from eventwire.testing import KafkaCluster
from tests.events import OrderPlaced, order

#: Events per round trip (the acceptance: 10,000 per mechanism).
ROUND_TRIP = 10_000


@contextmanager
def module_cluster(security: str, **kwargs: Any) -> Iterator[KafkaCluster]:
    """One broker with a secured client listener, for a module's tests to share."""
    with KafkaCluster(brokers=1, partitions=3, security=security, **kwargs) as cluster:  # type: ignore[arg-type]
        yield cluster


def orders(count: int) -> list[OrderPlaced]:
    """``count`` orders over 50 keys (order per key is checked on the way back)."""
    return [order(n, key=f"customer-{n % 50}") for n in range(count)]


async def publish_async(config: eventwire.PublisherConfig, events: list[Any]) -> list[Any]:
    async with eventwire.AsyncPublisher(config) as publisher:
        return await publisher.publish_many(events)


def assert_round_trip(
    cluster: KafkaCluster, topic: str, outcomes: list[Any], *, as_user: str | None = "client"
) -> None:
    """Every outcome is a receipt, and exactly those events come back, in order per key,
    read through the secured listener as ``as_user``."""
    failed = [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)]
    assert failed == []
    sent = [o.event_id for o in outcomes]
    records = cluster.consume(topic, count=len(sent), as_user=as_user)
    back = [(r.partition, r.offset, r.header("ce_id")) for r in records]
    assert sorted(r[2].decode() for r in back if r[2] is not None) == sorted(sent)
    assert len(back) == len(sent)
    # Order per key: within each partition, offsets follow the order of publishing.
    position = {event_id: index for index, event_id in enumerate(sent)}
    for partition in {r[0] for r in back}:
        in_partition = [position[r[2].decode()] for r in sorted(back) if r[0] == partition and r[2]]
        assert in_partition == sorted(in_partition)


@dataclass
class Refusal:
    """What publishing to a cluster that refuses the client gave: the first event's error and
    how long it took, the next event's error and how long that took, and the health."""

    error: BaseException
    seconds: float
    next_error: BaseException
    next_seconds: float
    health: eventwire.HealthStatus


def refusal(config: eventwire.PublisherConfig) -> Refusal:
    """Publish two events, one after the other, with a sync publisher (the second once the
    first failed), and read its health (probed until its broker verdict is in)."""
    with eventwire.Publisher(config) as publisher:
        error, seconds = _failure(publisher, order(1))
        next_error, next_seconds = _failure(publisher, order(2))
        health = publisher.health()
        deadline = time.monotonic() + 10.0
        while health.broker_reachable is None and time.monotonic() < deadline:
            time.sleep(0.05)
            health = publisher.health()
        publisher.close(timeout=2.0)
    return Refusal(error, seconds, next_error, next_seconds, health)


def _failure(publisher: eventwire.Publisher, event: Any) -> tuple[BaseException, float]:
    started = time.monotonic()
    try:
        publisher.publish(event)
    except eventwire.PublishError as exc:
        return exc, time.monotonic() - started
    raise AssertionError("the event was delivered")


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def scan_publishing(
    config: eventwire.PublisherConfig, *secrets: str, found_later: list[str] | None = None
) -> list[Any]:
    """Publish a few events (one valid, one too large, one invalid, then one alone) with every
    signal recorded (logs, an OpenTelemetry SDK's spans and metrics with librdkafka
    statistics, reprs, errors and their causes, health, the close report) and assert that
    none of ``secrets`` (nor of ``found_later``, filled while publishing) shows anywhere;
    returns the outcomes."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from eventwire.testing import capture_logs

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = eventwire.Telemetry(
        tracer_provider=tracer_provider, meter_provider=meter_provider, statistics_interval=0.1
    )
    config = config.with_overrides(telemetry=telemetry)
    texts = [repr(config), str(config), repr(config.redacted_librdkafka())]

    async def publish() -> list[Any]:
        async with eventwire.AsyncPublisher(config) as publisher:
            texts.append(repr(publisher))
            outcomes = await publisher.publish_many(
                [order(1), order(2, notes="x" * 1_200_000), order(3, currency="bad")]
            )
            try:
                outcomes.append(await publisher.publish(order(4)))
            except eventwire.EventwireError as exc:
                outcomes.append(exc)
            await asyncio.sleep(0.3)  # a statistics interval or three
            texts.append(publisher.health().to_json())
            texts.append(repr(await publisher.aclose(timeout=2.0)))
        return outcomes

    try:
        with capture_logs() as logs:
            outcomes = asyncio.run(publish())
        for outcome in outcomes:
            texts.append(f"{outcome!r} {outcome}")
            cause = getattr(outcome, "__cause__", None)
            texts.append(f"{cause!r} {cause}")
        texts.extend(repr(entry) for entry in logs)
        texts.extend(span.to_json() for span in spans.get_finished_spans())
        data = reader.get_metrics_data()
        assert data is not None
        texts.append(data.to_json())
    finally:
        meter_provider.shutdown()
        tracer_provider.shutdown()
    everything = "\n".join(texts)
    for secret in (*secrets, *(found_later or ())):
        assert secret not in everything
    # one span per call (the batch of publish_many, the lone publish): the scan saw them
    assert len(spans.get_finished_spans()) >= 2
    return outcomes


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """``python -m eventwire ARGS`` from the repository root (``tests.events`` imports), with
    no ``EVENTWIRE_*`` variable but those of ``env``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    clean = {k: v for k, v in os.environ.items() if not k.startswith("EVENTWIRE_")}
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "eventwire", *args],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=180,
        env={**clean, **(env or {}), "COLUMNS": "200"},
        check=False,
    )
