"""The publisher API as typing Protocols: type a service against them, and the real publishers
and ``eventwire.testing``'s fakes all fit (checked by ``mypy --strict`` in ``tests/typing``)."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from eventwire._codec import UserHeaders
from eventwire._config import PublisherConfig
from eventwire._errors import EventwireError
from eventwire._health import HealthStatus
from eventwire._outcome import (
    Accepted,
    CloseReport,
    DeliveryReceipt,
    PublishOutcome,
    SyncAccepted,
)


@runtime_checkable
class AsyncPublisherProtocol(Protocol):
    """What ``AsyncPublisher`` and ``eventwire.testing.AsyncFakePublisher`` offer."""

    @property
    def config(self) -> PublisherConfig: ...

    @property
    def closed(self) -> bool: ...

    @property
    def outstanding(self) -> int: ...

    @property
    def breaker_state(self) -> str: ...

    def health(self) -> HealthStatus: ...

    async def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call bound, as the sync twin's
    ) -> DeliveryReceipt: ...

    async def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[PublishOutcome]: ...

    async def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> Accepted: ...

    async def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[Accepted | EventwireError]: ...

    async def aclose(self, timeout: float = 30.0) -> CloseReport: ...  # noqa: ASYNC109

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class PublisherProtocol(Protocol):
    """What ``Publisher`` and ``eventwire.testing.FakePublisher`` offer."""

    @property
    def config(self) -> PublisherConfig: ...

    @property
    def closed(self) -> bool: ...

    @property
    def outstanding(self) -> int: ...

    @property
    def breaker_state(self) -> str: ...

    def health(self) -> HealthStatus: ...

    def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
        timeout: float | None = None,
    ) -> DeliveryReceipt: ...

    def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[PublishOutcome]: ...

    def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> SyncAccepted: ...

    def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[SyncAccepted | EventwireError]: ...

    def close(self, timeout: float = 30.0) -> CloseReport: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
