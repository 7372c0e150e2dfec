"""Spool and shutdown settings are checked when built; the error names the field."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

import pytest

import eventwire
from eventwire import ConfigError, PublisherConfig
from eventwire.testing import AsyncFakePublisher, FakePublisher
from tests.events import order

SERVERS = "127.0.0.1:1"


def make(**changes: Any) -> PublisherConfig:
    return PublisherConfig(bootstrap_servers=SERVERS, **changes)


def test_spool_is_off_by_default() -> None:
    config = make()
    assert config.spool_path is None
    assert config.spool_max_events == 1_000_000
    assert config.spool_full_timeout == 30.0


def test_spool_settings_are_kept(tmp_path: Path) -> None:
    config = make(spool_path=tmp_path / "s.db", spool_max_events=10, spool_full_timeout=0.5)
    assert config.spool_path == tmp_path / "s.db"
    assert (config.spool_max_events, config.spool_full_timeout) == (10, 0.5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"spool_path": ""}, "spool_path must be a non-empty path or None, got ''"),
        ({"spool_path": 42}, "spool_path must be a non-empty path or None, got 42"),
        ({"spool_max_events": 0}, "spool_max_events must be an int >= 1, got 0"),
        ({"spool_max_events": True}, "spool_max_events must be an int >= 1, got True"),
        ({"spool_max_events": 1.5}, "spool_max_events must be an int >= 1, got 1.5"),
        (
            {"spool_full_timeout": 0},
            "spool_full_timeout must be a finite number of seconds greater than 0, got 0",
        ),
        (
            {"spool_full_timeout": float("inf")},
            "spool_full_timeout must be a finite number of seconds greater than 0, got inf",
        ),
    ],
)
def test_bad_spool_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        make(**changes)


def test_spool_directory_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "s.db"
    with pytest.raises(ConfigError, match="does not exist"):
        make(spool_path=missing)
    afile = tmp_path / "afile"
    afile.touch()
    with pytest.raises(ConfigError, match=r"afile' is not a directory$"):  # not "does not exist"
        make(spool_path=afile / "s.db")


async def test_accept_needs_a_spool() -> None:
    publisher = eventwire.AsyncPublisher(make())
    with pytest.raises(ConfigError, match=r"accept\(\) needs a durable spool"):
        await publisher.accept(object())
    await publisher.aclose(timeout=0.1)


@pytest.mark.parametrize("deadline", [0, -1, float("nan")])
def test_shutdown_deadline_is_checked(deadline: float) -> None:
    publisher = eventwire.Publisher(make())
    try:
        with pytest.raises(ConfigError, match="deadline must be a finite number"):
            eventwire.GracefulShutdown(publisher, deadline=deadline)
    finally:
        publisher.close(timeout=0.1)


async def test_shutdown_twin_must_match_the_publisher() -> None:
    publisher = eventwire.Publisher(make())
    try:
        with pytest.raises(TypeError, match="sync Publisher"):
            async with eventwire.GracefulShutdown(publisher):
                pass
    finally:
        publisher.close(timeout=0.1)


def test_shutdown_refuses_what_is_not_a_publisher() -> None:
    with pytest.raises(TypeError, match=r"AsyncPublisher or .*, not object"):
        eventwire.GracefulShutdown(object())  # type: ignore[arg-type]


def test_shutdown_of_a_fake_publisher_stops_intake_and_closes_it() -> None:
    """A service's sync shutdown loop can be unit-tested with the fake."""
    fake = FakePublisher()
    with eventwire.GracefulShutdown(fake, deadline=5.0) as shutdown:
        fake.publish(order(0))
        signal.raise_signal(signal.SIGTERM)  # the handler only sets the flag
        assert shutdown.wait_sync(5.0)
        with pytest.raises(eventwire.PublisherClosedError):
            fake.publish(order(1))
    assert fake.closed
    assert shutdown.signal == signal.SIGTERM
    assert shutdown.report is not None
    assert (shutdown.report.delivered, shutdown.report.failed) == (1, 0)
    assert [r.event for r in fake.published()] == [order(0)]


async def test_shutdown_of_an_async_fake_publisher_stops_intake_and_closes_it() -> None:
    fake = AsyncFakePublisher()
    async with eventwire.GracefulShutdown(fake, deadline=5.0) as shutdown:
        await fake.publish(order(0))
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(shutdown.wait(), 5.0)
        with pytest.raises(eventwire.PublisherClosedError):
            await fake.publish(order(1))
    assert fake.closed
    assert shutdown.report is not None
    assert shutdown.report.delivered == 1


def test_the_sync_twin_refuses_an_async_fake() -> None:
    with (
        pytest.raises(TypeError, match="async with"),
        eventwire.GracefulShutdown(AsyncFakePublisher()),
    ):
        pass
