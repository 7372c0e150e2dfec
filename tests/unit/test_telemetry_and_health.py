"""Telemetry settings are checked when built; the fakes answer ``health()`` like the real
publishers (the real ones are covered against a broker in tests/integration)."""

from __future__ import annotations

import asyncio
import json
import time

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


def _probed(
    publisher: FakePublisher | AsyncFakePublisher, reachable: bool
) -> eventwire.HealthStatus:
    """The first ``health()`` after the probe (run on the poll thread) says ``reachable``."""
    deadline = time.monotonic() + 10.0
    while (status := publisher.health()).broker_reachable is not reachable:
        assert time.monotonic() < deadline, status
        time.sleep(0.01)
    return status


def test_fake_health_follows_breaker_and_close() -> None:
    publisher = FakePublisher()
    publisher.publish(order(1))
    first = publisher.health()  # as the real one: the probe starts with the first call
    assert (first.ready, first.reasons) == (False, ("broker not probed yet",))
    healthy = _probed(publisher, reachable=True)
    assert healthy.ready
    assert healthy.delivered == 1
    assert json.loads(healthy.to_json()) == healthy.as_dict()
    publisher.open_breaker()
    opened = _probed(publisher, reachable=False)
    assert not opened.ready
    assert opened.breaker_state == "open"
    publisher.close_breaker()
    publisher.close()
    assert publisher.health().reasons[0] == "publisher is closed"


async def test_async_fake_health() -> None:
    async with AsyncFakePublisher() as publisher:
        await publisher.publish(order(1))
        publisher.health()
        assert (await asyncio.to_thread(_probed, publisher, True)).ready
    assert not publisher.health().ready
