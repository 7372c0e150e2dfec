"""``messaging.client.sent.messages`` is a cumulative counter: what a publisher counted stays
counted after the publisher is closed and collected (it used to drop out of the sum, and the
counter went back)."""

from __future__ import annotations

import gc
from typing import Any, cast

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import eventwire
from eventwire.testing import FakePublisher
from tests.events import order

SENT = "messaging.client.sent.messages"


def _sent(reader: InMemoryMetricReader) -> list[int]:
    data = reader.get_metrics_data()
    return [
        int(cast(Any, point).value)
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == SENT
        for point in metric.data.data_points
    ]


def _publish(provider: MeterProvider, count: int) -> None:
    telemetry = eventwire.Telemetry(meter_provider=provider)
    config = eventwire.PublisherConfig(bootstrap_servers="fake.invalid:9092", telemetry=telemetry)
    with FakePublisher(config) as fake:
        fake.publish_many([order(n) for n in range(count)])


def test_a_closed_and_collected_publishers_messages_stay_counted() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        _publish(provider, 3)
        gc.collect()
        assert _sent(reader) == [3]
        _publish(provider, 2)
        gc.collect()
        assert _sent(reader) == [5]  # one series: same topic, server and outcome
    finally:
        provider.shutdown()


def test_a_live_publisher_is_counted_once() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry = eventwire.Telemetry(meter_provider=provider)
    config = eventwire.PublisherConfig(bootstrap_servers="fake.invalid:9092", telemetry=telemetry)
    try:
        with FakePublisher(config) as fake:
            fake.publish(order(1))
            fake.publish_many([order(2), order(3)])
            assert _sent(reader) == [3]
        assert _sent(reader) == [3]
    finally:
        provider.shutdown()
