from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventwire.testing import AsyncFakePublisher, FakePublisher
from tests.brokers import SharedBroker
from tests.contract.harness import BrokerTarget, FakeTarget, Target


@pytest.fixture(
    params=["fake-async", "fake-sync", "tansu-async", "tansu-sync", "kafka-async", "kafka-sync"]
)
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """Each contract test runs once per implementation: the fakes, and the real publishers on
    Tansu and on Apache Kafka (the reference)."""
    kind: str = request.param
    chosen: Target
    if kind.startswith("fake"):
        chosen = FakeTarget(AsyncFakePublisher if kind == "fake-async" else FakePublisher)
    else:
        fixture = "kafka_cluster" if kind.startswith("kafka") else "eventwire_broker"
        broker: SharedBroker = request.getfixturevalue(fixture)
        chosen = BrokerTarget(broker, kind)
    yield chosen
    await chosen.aclose()
