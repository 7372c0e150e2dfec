from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

import eventwire
from eventwire.testing import LocalBroker, ProxiedBroker
from eventwire.testing._noida import NoidaBroker
from tests.brokers import Proxied, ProxiedKafka, SharedBroker

PARTITIONS = 3


@dataclass(frozen=True)
class Topics:
    """A private namespace of topics for one test: ``prefix + declared name``."""

    broker: SharedBroker
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
def topics(shared_broker: SharedBroker) -> Topics:
    """Fresh topics on the session's Tansu, or on the Kafka cluster (see `tests.brokers`)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    shared_broker.create_topics(
        [prefix + name for name in ("orders", "payments", "blobs")], PARTITIONS
    )
    return Topics(shared_broker, prefix)


@pytest.fixture
def proxied(request: pytest.FixtureRequest) -> Iterator[Proxied]:
    """A Tansu broker of the test's own, reachable only through a `FaultProxy`; or
    (parametrized ``"kafka"``, see `tests.brokers`) one Apache Kafka broker the same way."""
    kind = getattr(request, "param", "tansu")
    with (
        ProxiedKafka(PARTITIONS)
        if kind == "kafka"
        else ProxiedBroker(partitions=PARTITIONS) as broker
    ):
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


@dataclass(frozen=True)
class StatefulBroker:
    """A broker that behaves like Kafka where Tansu does not (it refuses records over its size
    limit, deletes topics for real), with a topic prefix private to the test."""

    broker: SharedBroker | NoidaBroker
    prefix: str

    def name(self, declared: str) -> str:
        return self.prefix + declared


@pytest.fixture(params=["kafka", "noida"])
def stateful_broker(request: pytest.FixtureRequest) -> Iterator[StatefulBroker]:
    """The session's Apache Kafka cluster (the reference), then a noida-db of the test's own.
    Tansu has no broker-side size limit and acknowledges writes to a deleted topic."""
    if request.param == "kafka":
        yield StatefulBroker(request.getfixturevalue("kafka_cluster"), f"t{uuid.uuid4().hex[:10]}.")
    else:
        with NoidaBroker(partitions=PARTITIONS) as broker:
            yield StatefulBroker(broker, "")
