"""FakePublisher and AsyncFakePublisher: the real publishers over an in-memory cluster.

They are ``Publisher`` and ``AsyncPublisher`` with an in-memory transport
(``MemoryBroker``), so everything the real ones do happens for real: validation, encoding,
keys placed with the Java client's murmur2, CloudEvents headers, topic remapping, retries,
dead-letter writes, producer replacement, the breaker and the close. On top they keep what
was delivered for assertions and can inject failures. ``tests/contract`` runs one suite
against these and the real publishers on a broker so the two cannot drift.

The fakes' default configuration retries after milliseconds, not seconds, and lets its
breaker probe again after 0.1 s: an injected failure then costs a test little time. With a
configuration of your own, its policies apply as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import eventwire
from eventwire.codec import EncodedEvent, UserHeaders
from eventwire.testing._fake_assertions import Assertions
from eventwire.testing._memory import MemoryBroker

_E = TypeVar("_E")

#: A bootstrap address that is never contacted (``.invalid`` is reserved, RFC 2606).
FAKE_BOOTSTRAP: Final = "fake.invalid:9092"


def fake_config() -> eventwire.PublisherConfig:
    """The fakes' default configuration: fast retries and breaker probes (see the module)."""
    return eventwire.PublisherConfig(
        bootstrap_servers=FAKE_BOOTSTRAP,
        retry=eventwire.RetryPolicy(base=0.001, cap=0.01),
        breaker=eventwire.BreakerPolicy(cooldown=0.1, probe_timeout=0.1),
    )


class AsyncFakePublisher(Assertions, eventwire.AsyncPublisher):
    """``AsyncPublisher`` over an in-memory cluster, for unit tests: same methods, errors and
    behaviour, no broker; plus assertions on what was delivered and failure injection.

    Args:
        config: the configuration to honour; the bootstrap address is never contacted.
            ``None``: ``fake_config()`` (fast retries and breaker probes).
        partitions: partitions per topic, or a mapping from topic (after remapping) to its
            partition count; topics not in the mapping have 3.
        broker: the in-memory cluster to publish to (several fakes may share one);
            ``None``: a new one with ``partitions``.

    Raises:
        ValueError: a partition count below 1.

    Example::

        publisher = AsyncFakePublisher()
        await service.place_order(publisher, ...)
        publisher.assert_published(OrderPlaced(...))
    """

    def __init__(
        self,
        config: eventwire.PublisherConfig | None = None,
        *,
        partitions: int | Mapping[str, int] = 3,
        broker: MemoryBroker | None = None,
    ) -> None:
        super().__init__(config or fake_config(), transport=self._set_up(partitions, broker))

    def _started(self) -> bool:
        return self._loop is not None

    def open_breaker(self, reason: str = "_ALL_BROKERS_DOWN") -> None:
        """As ``FakePublisher.open_breaker``; called in a running event loop, it starts the
        publisher on that loop first (the breaker is probed from its poll thread)."""
        if self._loop is None:
            # Without a running loop the breaker opens once the publisher is used.
            with contextlib.suppress(RuntimeError):
                self._bind()
        super().open_breaker(reason)

    async def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call bound, as the sync twin's
    ) -> eventwire.DeliveryReceipt:
        """As ``AsyncPublisher.publish``, delivered in memory."""
        receipt = await super().publish(
            event, topic=topic, key=key, headers=headers, timeout=timeout
        )
        self._keep([event], [receipt.event_id])
        return receipt

    async def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[eventwire.PublishOutcome]:
        """As ``AsyncPublisher.publish_many``, delivered in memory."""
        events = _as_sequence(events)
        outcomes = await super().publish_many(events, topic=topic)
        self._keep(events, [_receipt_id(outcome) for outcome in outcomes])
        return outcomes

    def transaction(self) -> eventwire.transactions.AsyncTransaction:
        """As ``AsyncPublisher.transaction`` (a ``transactional_id`` in the config), on the
        in-memory cluster: ``published()`` shows what committed, never what aborted."""
        super().transaction()  # the base's check: a ConfigError without a transactional_id
        return _AsyncFakeTransaction(self)

    async def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> eventwire.Accepted:
        """As ``AsyncPublisher.accept`` (a real spool file: ``spool_path`` in the config)."""
        accepted = await super().accept(event, topic=topic, key=key, headers=headers)
        self._keep([event], [accepted.event_id])
        return accepted

    async def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[eventwire.Accepted | eventwire.EventwireError]:
        """As ``AsyncPublisher.accept_many``."""
        events = _as_sequence(events)
        results = await super().accept_many(events, topic=topic)
        self._keep(events, [getattr(result, "event_id", None) for result in results])
        return results


class FakePublisher(Assertions, eventwire.Publisher):
    """``Publisher`` over an in-memory cluster, for unit tests: arguments and behaviour as
    ``AsyncFakePublisher``. Thread-safe like ``Publisher``.

    Example::

        publisher = FakePublisher()
        service.place_order(publisher, ...)
        publisher.assert_published(OrderPlaced(...))
    """

    def __init__(
        self,
        config: eventwire.PublisherConfig | None = None,
        *,
        partitions: int | Mapping[str, int] = 3,
        broker: MemoryBroker | None = None,
    ) -> None:
        super().__init__(config or fake_config(), transport=self._set_up(partitions, broker))

    def _started(self) -> bool:
        return True

    def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
        timeout: float | None = None,
    ) -> eventwire.DeliveryReceipt:
        """As ``Publisher.publish``, delivered in memory."""
        receipt = super().publish(event, topic=topic, key=key, headers=headers, timeout=timeout)
        self._keep([event], [receipt.event_id])
        return receipt

    def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[eventwire.PublishOutcome]:
        """As ``Publisher.publish_many``, delivered in memory."""
        events = _as_sequence(events)
        outcomes = super().publish_many(events, topic=topic)
        self._keep(events, [_receipt_id(outcome) for outcome in outcomes])
        return outcomes

    def transaction(self) -> eventwire.transactions.Transaction:
        """As ``Publisher.transaction`` (a ``transactional_id`` in the config), on the
        in-memory cluster: ``published()`` shows what committed, never what aborted."""
        super().transaction()  # the base's check: a ConfigError without a transactional_id
        return _FakeTransaction(self)

    def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> eventwire.SyncAccepted:
        """As ``Publisher.accept`` (a real spool file: ``spool_path`` in the config)."""
        accepted = super().accept(event, topic=topic, key=key, headers=headers)
        self._keep([event], [accepted.event_id])
        return accepted

    def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[eventwire.SyncAccepted | eventwire.EventwireError]:
        """As ``Publisher.accept_many``."""
        events = _as_sequence(events)
        results = super().accept_many(events, topic=topic)
        self._keep(events, [getattr(result, "event_id", None) for result in results])
        return results


class _AsyncFakeTransaction(eventwire.transactions.AsyncTransaction):
    """An ``AsyncTransaction`` that remembers the events given, as the fake's ``publish``
    does (``published()`` shows them as given)."""

    __slots__ = ("_fake",)

    def __init__(self, fake: AsyncFakePublisher) -> None:
        super().__init__(fake)
        self._fake = fake

    async def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> eventwire.DeliveryReceipt:
        """As ``AsyncTransaction.publish``, in memory."""
        receipt = await super().publish(event, topic=topic, key=key, headers=headers)
        self._fake._keep(*_given([event], [receipt]))
        return receipt

    async def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[eventwire.DeliveryReceipt]:
        """As ``AsyncTransaction.publish_many``, in memory."""
        events = _as_sequence(events)
        receipts = await super().publish_many(events, topic=topic)
        self._fake._keep(*_given(events, receipts))
        return receipts


class _FakeTransaction(eventwire.transactions.Transaction):
    """A ``Transaction`` that remembers the events given (see ``_AsyncFakeTransaction``)."""

    __slots__ = ("_fake",)

    def __init__(self, fake: FakePublisher) -> None:
        super().__init__(fake)
        self._fake = fake

    def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> eventwire.DeliveryReceipt:
        """As ``Transaction.publish``, in memory."""
        receipt = super().publish(event, topic=topic, key=key, headers=headers)
        self._fake._keep(*_given([event], [receipt]))
        return receipt

    def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[eventwire.DeliveryReceipt]:
        """As ``Transaction.publish_many``, in memory."""
        events = _as_sequence(events)
        receipts = super().publish_many(events, topic=topic)
        self._fake._keep(*_given(events, receipts))
        return receipts


def _given(
    events: Iterable[Any], receipts: Sequence[eventwire.DeliveryReceipt]
) -> tuple[list[Any], list[str]]:
    """The events a transaction was given, with their ids; an ``EncodedEvent`` is not the
    event (``published()`` decodes its bytes by its type instead)."""
    kept = [
        (event, receipt.event_id)
        for event, receipt in zip(events, receipts, strict=True)
        if not isinstance(event, EncodedEvent)
    ]
    return [event for event, _ in kept], [event_id for _, event_id in kept]


def _as_sequence(events: Iterable[Any]) -> Any:
    """The events of a batch call, read once (a generator can be read only once); what is
    not an iterable goes to the publisher as given, which says what to call instead."""
    if isinstance(events, Sequence) or not isinstance(events, Iterable):
        return events
    return list(events)


def _receipt_id(outcome: Any) -> str | None:
    return outcome.event_id if isinstance(outcome, eventwire.DeliveryReceipt) else None
