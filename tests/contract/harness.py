"""One face over the fake and the real publishers, sync and async, for the contract suite.

A ``Target`` opens publishers on a private set of topics (``orders``, ``payments``, ``blobs``,
3 partitions each) and reads back what was delivered: from the broker by consuming for the
real publishers, from the fake's records for the fakes. Checks only see this face.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any

import eventwire
from eventwire.testing import (
    FAKE_BOOTSTRAP,
    AsyncFakePublisher,
    ConsumedRecord,
    FakePublisher,
    LocalBroker,
)

PARTITIONS = 3
TOPICS = ("orders", "payments", "blobs")


# A record as a consumer sees it, whichever side delivered it.
Delivered = ConsumedRecord


class Driver:
    """An async face over one publisher; a sync one runs in a worker thread."""

    def __init__(self, publisher: eventwire.AsyncPublisherProtocol | eventwire.PublisherProtocol):
        self.publisher = publisher

    @property
    def closed(self) -> bool:
        return self.publisher.closed

    @property
    def outstanding(self) -> int:
        return self.publisher.outstanding

    @property
    def breaker_state(self) -> str:
        return self.publisher.breaker_state

    async def publish(self, event: Any, **options: Any) -> eventwire.DeliveryReceipt:
        publisher = self.publisher
        if isinstance(publisher, eventwire.AsyncPublisherProtocol):
            return await publisher.publish(event, **options)
        return await asyncio.to_thread(lambda: publisher.publish(event, **options))

    async def publish_many(
        self, events: Iterable[Any], **options: Any
    ) -> list[eventwire.PublishOutcome]:
        publisher = self.publisher
        if isinstance(publisher, eventwire.AsyncPublisherProtocol):
            return await publisher.publish_many(events, **options)
        return await asyncio.to_thread(lambda: publisher.publish_many(events, **options))

    async def close(self, timeout: float = 10.0) -> eventwire.CloseReport:  # noqa: ASYNC109
        publisher = self.publisher
        if isinstance(publisher, eventwire.AsyncPublisherProtocol):
            return await publisher.aclose(timeout)
        return await asyncio.to_thread(publisher.close, timeout)


class Target:
    """Where a check publishes and reads back; ``name`` shows in test ids."""

    name = "?"

    def __init__(self) -> None:
        self.prefix = f"c{uuid.uuid4().hex[:10]}."
        self.drivers: list[Driver] = []

    def topic(self, declared: str) -> str:
        return self.prefix + declared

    def open(self, **config: Any) -> Driver:
        """A publisher with the test's topic prefix and the given config changes."""
        driver = Driver(self._publisher(**config))
        self.drivers.append(driver)
        return driver

    async def delivered(self, declared: str) -> list[Delivered]:
        """Every record in the topic, in (partition, offset) order."""
        raise NotImplementedError

    async def aclose(self) -> None:
        for driver in self.drivers:
            if not driver.closed:
                await driver.close()

    def _publisher(
        self, **config: Any
    ) -> eventwire.AsyncPublisherProtocol | eventwire.PublisherProtocol:
        raise NotImplementedError


class FakeTarget(Target):
    """The in-memory fakes (or a subclass of them, for the suite's self-test)."""

    def __init__(self, cls: type[AsyncFakePublisher] | type[FakePublisher]) -> None:
        super().__init__()
        self.cls = cls
        self.name = f"fake-{'async' if issubclass(cls, AsyncFakePublisher) else 'sync'}"

    def _publisher(self, **config: Any) -> AsyncFakePublisher | FakePublisher:
        settings: dict[str, Any] = {
            "bootstrap_servers": FAKE_BOOTSTRAP,
            "topic_prefix": self.prefix,
        }
        settings.update(config)
        return self.cls(eventwire.PublisherConfig(**settings), partitions=PARTITIONS)

    async def delivered(self, declared: str) -> list[Delivered]:
        topic = self.topic(declared)
        records = [
            Delivered(r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp_ms)
            for driver in self.drivers
            if isinstance(driver.publisher, AsyncFakePublisher | FakePublisher)
            for r in driver.publisher.published(topic=topic)
        ]
        return sorted(records, key=lambda r: (r.partition, r.offset))


class BrokerTarget(Target):
    """The real publishers on the session's local broker; delivered records are consumed."""

    def __init__(self, broker: LocalBroker, *, asynchronous: bool) -> None:
        super().__init__()
        self.broker = broker
        self.asynchronous = asynchronous
        self.name = f"real-{'async' if asynchronous else 'sync'}"
        broker.create_topics([self.topic(name) for name in TOPICS], PARTITIONS)

    def _publisher(self, **config: Any) -> eventwire.AsyncPublisher | eventwire.Publisher:
        settings: dict[str, Any] = {
            "bootstrap_servers": self.broker.bootstrap_servers,
            "topic_prefix": self.prefix,
            "delivery_timeout": 30.0,
        }
        settings.update(config)
        cls = eventwire.AsyncPublisher if self.asynchronous else eventwire.Publisher
        return cls(eventwire.PublisherConfig(**settings))

    async def delivered(self, declared: str) -> list[Delivered]:
        return await asyncio.to_thread(self.broker.consume, self.topic(declared))
