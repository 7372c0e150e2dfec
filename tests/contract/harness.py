"""One face over the fake and the real publishers, sync and async, for the contract suite.

A ``Target`` opens publishers on a private set of topics (``orders``, ``payments``, ``blobs``,
3 partitions each) and reads back what was delivered: from the broker by consuming for the
real publishers, from the fake's records for the fakes. Checks only see this face.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from typing import Any

import eventwire
from eventwire.testing import (
    FAKE_BOOTSTRAP,
    AsyncFakePublisher,
    ConsumedRecord,
    FakePublisher,
)
from tests.brokers import SharedBroker

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

    async def accept_many(
        self, events: Iterable[Any], **options: Any
    ) -> list[eventwire.DeliveryReceipt | eventwire.EventwireError]:
        """``accept_many``, then each accepted event's delivery (or the error that kept it
        out)."""
        publisher = self.publisher
        if isinstance(publisher, eventwire.AsyncPublisherProtocol):
            handles = await publisher.accept_many(events, **options)
            return [
                await h.delivered() if isinstance(h, eventwire.Accepted) else h for h in handles
            ]

        def accept_and_wait() -> list[eventwire.DeliveryReceipt | eventwire.EventwireError]:
            handles = publisher.accept_many(events, **options)
            return [
                h.wait_delivered(30.0) if isinstance(h, eventwire.SyncAccepted) else h
                for h in handles
            ]

        return await asyncio.to_thread(accept_and_wait)

    async def accept(self, event: Any) -> object:
        publisher = self.publisher
        if isinstance(publisher, eventwire.AsyncPublisherProtocol):
            return await publisher.accept(event)
        return await asyncio.to_thread(publisher.accept, event)

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
        self._spool_dir: str | None = None

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

    def spool_path(self) -> str:
        """A fresh spool file path (its directory is removed by ``aclose``)."""
        if self._spool_dir is None:
            self._spool_dir = tempfile.mkdtemp(prefix="eventwire-contract-")
        return f"{self._spool_dir}/{uuid.uuid4().hex[:8]}.db"

    async def aclose(self) -> None:
        for driver in self.drivers:
            if not driver.closed:
                await driver.close()
        if self._spool_dir is not None:
            shutil.rmtree(self._spool_dir, ignore_errors=True)

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
    """The real publishers on a session broker (Tansu or Apache Kafka); delivered records are
    consumed."""

    def __init__(self, broker: SharedBroker, name: str) -> None:
        super().__init__()
        self.broker = broker
        self.asynchronous = name.endswith("-async")
        self.name = name
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
