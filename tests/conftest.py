from __future__ import annotations

import pytest

from tests.brokers import SharedBroker


@pytest.fixture
def shared_broker(request: pytest.FixtureRequest) -> SharedBroker:
    """The session's Tansu broker, or (parametrized ``"kafka"``, see `tests.brokers`) the
    session's Apache Kafka cluster."""
    kind = getattr(request, "param", "tansu")
    assert kind in ("tansu", "kafka"), kind
    name = "kafka_cluster" if kind == "kafka" else "eventwire_broker"
    broker: SharedBroker = request.getfixturevalue(name)
    return broker
