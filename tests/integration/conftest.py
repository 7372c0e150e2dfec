from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

import eventwire
from eventwire.testing import LocalBroker, ProxiedBroker

PARTITIONS = 3


@dataclass(frozen=True)
class Topics:
    """A private namespace of topics for one test: ``prefix + declared name``."""

    broker: LocalBroker
    prefix: str

    def name(self, declared: str) -> str:
        return self.prefix + declared

    def config(self, **changes: object) -> eventwire.PublisherConfig:
        settings: dict[str, object] = {
            "bootstrap_servers": self.broker.bootstrap_servers,
            "topic_prefix": self.prefix,
            "delivery_timeout": 30.0,
        }
        settings.update(changes)
        return eventwire.PublisherConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def topics(eventwire_broker: LocalBroker) -> Topics:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    eventwire_broker.create_topics(
        [prefix + name for name in ("orders", "payments", "blobs")], PARTITIONS
    )
    return Topics(eventwire_broker, prefix)


@pytest.fixture
def proxied() -> Iterator[ProxiedBroker]:
    """A Tansu broker of the test's own, reachable only through a `FaultProxy`."""
    with ProxiedBroker(partitions=PARTITIONS) as broker:
        yield broker


@pytest.fixture
def private_broker() -> Callable[[], LocalBroker]:
    """A broker of the test's own, for tests that stop it; stopped at teardown."""
    started: list[LocalBroker] = []

    def start() -> LocalBroker:
        broker = LocalBroker(partitions=PARTITIONS).start()
        started.append(broker)
        return broker

    yield start  # type: ignore[misc]
    for broker in started:
        broker.stop()
