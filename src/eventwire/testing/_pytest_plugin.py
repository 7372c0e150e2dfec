"""pytest plugin (entry point ``pytest11``): fixtures for testing code that uses eventwire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from eventwire.testing import LocalBroker


@pytest.fixture(scope="session")
def eventwire_broker() -> Iterator[LocalBroker]:
    """A local Kafka-compatible broker (Tansu) for the whole session, stopped at the end.

    Create your own topics on it (``broker.unique_topic()``) so tests do not share data.
    """
    from eventwire.testing import LocalBroker

    with LocalBroker(partitions=3) as broker:
        yield broker
