"""``eventwire.kafka.broker.throttle_time``: the time brokers throttled the producer (quota
violations), summed from librdkafka's statistics. The broker-side check is the quota test in
``tests/faults/test_kafka_cluster_faults.py``."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import eventwire
from eventwire._health import Stats
from eventwire._metrics import parse_statistics
from eventwire._telemetry import instrumentation_for

BROKER = "127.0.0.1:9092/1"


def _payload(throttle_sum_ms: int) -> str:
    window = {"avg": 0, "sum": 0, "max": 0, "cnt": 0}
    broker = {
        "name": BROKER,
        "nodeid": 1,
        "rtt": window,
        "int_latency": window,
        "throttle": {**window, "sum": throttle_sum_ms, "avg": throttle_sum_ms, "cnt": 1},
    }
    bootstrap = {**broker, "name": "127.0.0.1:9092/bootstrap", "nodeid": -1}
    return json.dumps({"tx_bytes": 10, "brokers": {BROKER: broker, "b": bootstrap}})


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_statistics_give_each_brokers_throttle_time_of_the_interval_in_seconds() -> None:
    statistics = parse_statistics(_payload(1_500))
    assert statistics is not None
    assert statistics.throttle == {BROKER: 1.5}  # milliseconds in librdkafka's statistics


def test_the_throttle_time_counter_sums_every_interval_per_broker() -> None:
    reader = InMemoryMetricReader()
    config = eventwire.PublisherConfig(
        bootstrap_servers="127.0.0.1:9092",
        client_id="quoted",
        telemetry=eventwire.Telemetry(meter_provider=MeterProvider(metric_readers=[reader])),
    )
    instrumentation = instrumentation_for(config)
    assert instrumentation is not None
    instrumentation.observe(
        lambda: Stats(
            outstanding=0,
            delivered=0,
            failed=0,
            retries=0,
            dead_lettered=0,
            recreations=0,
            queue_depth=0,
            breaker_state="closed",
        )
    )
    assert _points(reader, "eventwire.kafka.broker.throttle_time") == []  # none yet
    for throttled_ms in (250, 0, 1_000):  # one statistics payload per interval
        instrumentation.on_statistics(_payload(throttled_ms))
    [point] = _points(reader, "eventwire.kafka.broker.throttle_time")
    assert point.value == 1.25
    assert dict(point.attributes) == {
        "messaging.client.id": "quoted",
        "eventwire.kafka.broker": BROKER,
    }
