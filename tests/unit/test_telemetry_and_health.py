"""Telemetry settings are checked when built; the fakes answer ``health()`` like the real
publishers (the real ones are covered against a broker in tests/integration)."""

from __future__ import annotations

import json

import pytest

import eventwire
from eventwire.testing import AsyncFakePublisher, FakePublisher
from tests.events import order


@pytest.mark.parametrize("interval", [-1, float("nan"), float("inf"), True, "5"])
def test_statistics_interval_is_checked(interval: object) -> None:
    with pytest.raises(eventwire.ConfigError, match="statistics_interval"):
        eventwire.Telemetry(statistics_interval=interval)  # type: ignore[arg-type]


def test_config_refuses_a_telemetry_of_another_type() -> None:
    with pytest.raises(eventwire.ConfigError, match="telemetry must be a Telemetry"):
        eventwire.PublisherConfig(bootstrap_servers="localhost:9092", telemetry={})  # type: ignore[arg-type]


def test_fake_health_follows_breaker_and_close() -> None:
    publisher = FakePublisher()
    publisher.publish(order(1))
    healthy = publisher.health()
    assert healthy.ready
    assert healthy.delivered == 1
    assert json.loads(healthy.to_json()) == healthy.as_dict()
    publisher.open_breaker()
    opened = publisher.health()
    assert not opened.ready
    assert opened.breaker_state == "open"
    assert opened.broker_reachable is False
    publisher.close_breaker()
    publisher.close()
    assert publisher.health().reasons == ("publisher is closed",)


async def test_async_fake_health() -> None:
    async with AsyncFakePublisher() as publisher:
        await publisher.publish(order(1))
        assert publisher.health().ready
    assert not publisher.health().ready
