"""What a publish returns: a delivery receipt, or an error as a value (``publish_many``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as _dt
from typing import Final

import msgspec

from eventwire._errors import EventwireError


class DeliveryReceipt(msgspec.Struct, frozen=True, gc=False):
    """Proof that Kafka acknowledged an event (``acks=all``).

    Attributes:
        topic: the topic it was written to.
        partition: the partition it was written to.
        offset: its offset in that partition.
        timestamp_ms: the record timestamp, milliseconds since the Unix epoch (UTC).
        event_id: the CloudEvents ``ce_id`` header of the record.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    event_id: str

    @property
    def timestamp(self) -> _dt.datetime:
        """The record timestamp as a timezone-aware UTC ``datetime``."""
        return _dt.datetime.fromtimestamp(self.timestamp_ms / 1000, tz=_dt.UTC)


#: One entry of ``publish_many``'s result: the receipt, or the error that event met.
PublishOutcome = DeliveryReceipt | EventwireError


def detached(outcomes: list[PublishOutcome]) -> list[PublishOutcome]:
    """``outcomes`` with no traceback left on their errors (nor on their causes and contexts).

    An error caught while a ``publish_many`` call produced is stored, not raised: its
    traceback's frames hold the call's events and outcomes, which hold the error back. That
    cycle kept every event of a call with one failure alive until a full collection; the
    outcome is a value, and where it was caught says nothing to the caller.
    """
    for outcome in outcomes:
        if isinstance(outcome, DeliveryReceipt):
            continue
        chain: list[BaseException | None] = [outcome]
        seen: set[int] = set()  # a chain can loop
        while chain:
            error = chain.pop()
            if error is not None and id(error) not in seen:
                seen.add(id(error))
                error.__traceback__ = None
                chain += (error.__cause__, error.__context__)
    return outcomes


_IDS_SHOWN: Final = 5


class CloseReport(msgspec.Struct, frozen=True):
    """What ``close``/``aclose`` could and could not do.

    Attributes:
        delivered: events acknowledged over the publisher's lifetime.
        failed: events whose delivery failed over the publisher's lifetime (their callers got
            the error). Without a spool this includes the ``undelivered`` ones, so
            ``delivered + failed`` counts every event settled; with a spool it does not.
        undelivered: events accepted but not acknowledged when the close deadline passed; their
            callers got an error (``PublishError``) rather than a receipt. Without a spool they
            are counted in ``failed`` too; with a spool they are the ``spooled`` ones.
        undelivered_event_ids: the ``ce_id`` of each of those events.
        timed_out: whether the deadline passed before every event was settled.
        spooled: events left in the durable spool (accepted, not acknowledged yet); they are
            delivered on the next start with the same ``spool_path``. Always 0 without a
            spool. Their ids are in ``undelivered_event_ids`` when they were in this run's
            hands; replayed events not delivered again are only counted.
    """

    delivered: int
    failed: int
    undelivered: int
    undelivered_event_ids: tuple[str, ...]
    timed_out: bool
    spooled: int = 0

    def __repr__(self) -> str:
        # A close with a large backlog leaves up to hundreds of thousands of ids: a report
        # printed or logged shows the first few and how many more there are.
        ids = self.undelivered_event_ids
        shown = ", ".join(repr(event_id) for event_id in ids[:_IDS_SHOWN])
        if len(ids) > _IDS_SHOWN:
            shown += f", ... {len(ids) - _IDS_SHOWN:,} more"
        elif len(ids) == 1:
            shown += ","
        return (
            f"CloseReport(delivered={self.delivered}, failed={self.failed}, "
            f"undelivered={self.undelivered}, undelivered_event_ids=({shown}), "
            f"timed_out={self.timed_out}, spooled={self.spooled})"
        )


class Accepted:
    """An event committed to the durable spool: it reaches Kafka even if the process dies
    now (it is then replayed on the next start with the same ``spool_path``).

    Returned by ``AsyncPublisher.accept``. ``await accepted.delivered()`` waits for Kafka's
    acknowledgement; cancelling that wait changes nothing for the event. The sync twin is
    ``SyncAccepted``.

    Attributes:
        event_id: the CloudEvents ``ce_id`` of the event (kept across replays).
        topic: the topic it is produced to.
    """

    __slots__ = ("_future", "event_id", "topic")

    def __init__(self, event_id: str, topic: str, future: asyncio.Future[DeliveryReceipt]) -> None:
        self.event_id = event_id
        self.topic = topic
        self._future = future

    async def delivered(self) -> DeliveryReceipt:
        """Wait until Kafka acknowledged the event.

        Returns:
            The delivery receipt.

        Raises:
            PublishError: the event can never be delivered (permanent failure, or
                ``DeadLetteredError``), or the publisher closed first (``code="SPOOLED"``:
                the event stays in the spool and is delivered on the next start).
        """
        return await asyncio.shield(self._future)

    def done(self) -> bool:
        """Whether the outcome is known (``delivered()`` would not wait)."""
        return self._future.done()

    def __repr__(self) -> str:
        return f"Accepted(event_id={self.event_id!r}, topic={self.topic!r})"


class SyncAccepted:
    """The sync twin of ``Accepted``, returned by ``Publisher.accept``: an event committed to
    the durable spool. ``accepted.wait_delivered(timeout)`` blocks until Kafka acknowledged
    it; giving up that wait changes nothing for the event.

    Attributes:
        event_id: the CloudEvents ``ce_id`` of the event (kept across replays).
        topic: the topic it is produced to.
    """

    __slots__ = ("_future", "event_id", "topic")

    def __init__(
        self, event_id: str, topic: str, future: concurrent.futures.Future[DeliveryReceipt]
    ) -> None:
        self.event_id = event_id
        self.topic = topic
        self._future = future

    def wait_delivered(self, timeout: float | None = None) -> DeliveryReceipt:
        """Block until Kafka acknowledged the event.

        Args:
            timeout: most seconds to wait; ``None`` waits as long as it takes.

        Returns:
            The delivery receipt.

        Raises:
            TimeoutError: the outcome was not known within ``timeout`` (the event is still
                on its way).
            PublishError: as ``Accepted.delivered``.
        """
        return self._future.result(timeout)

    def done(self) -> bool:
        """Whether the outcome is known (``wait_delivered()`` would not block)."""
        return self._future.done()

    def __repr__(self) -> str:
        return f"SyncAccepted(event_id={self.event_id!r}, topic={self.topic!r})"
