from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

import eventwire
from eventwire.testing import ConsumedRecord, LocalBroker


@dataclass(frozen=True)
class ExampleTopics:
    """Command-line arguments that point an example at the test broker, under a private topic
    prefix, and a way to read back what it delivered."""

    broker: LocalBroker
    prefix: str

    @property
    def argv(self) -> list[str]:
        return ["--bootstrap-servers", self.broker.bootstrap_servers, "--topic-prefix", self.prefix]

    def config(self, **settings: Any) -> eventwire.PublisherConfig:
        return eventwire.PublisherConfig(
            bootstrap_servers=self.broker.bootstrap_servers, topic_prefix=self.prefix, **settings
        )

    def consume(self, topic: str, **options: Any) -> list[ConsumedRecord]:
        return self.broker.consume(self.prefix + topic, **options)


@pytest.fixture
def example_topics(eventwire_broker: LocalBroker) -> ExampleTopics:
    return ExampleTopics(eventwire_broker, f"ex{uuid.uuid4().hex[:10]}.")
