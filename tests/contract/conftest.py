from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventwire.testing import AsyncFakePublisher, FakePublisher, LocalBroker
from tests.contract.harness import BrokerTarget, FakeTarget, Target


@pytest.fixture(params=["fake-async", "fake-sync", "real-async", "real-sync"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """Each contract test runs once per implementation."""
    kind: str = request.param
    chosen: Target
    if kind.startswith("fake"):
        chosen = FakeTarget(AsyncFakePublisher if kind == "fake-async" else FakePublisher)
    else:
        broker: LocalBroker = request.getfixturevalue("eventwire_broker")
        chosen = BrokerTarget(broker, asynchronous=kind == "real-async")
    yield chosen
    await chosen.aclose()
