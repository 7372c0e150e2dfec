"""What a publish returns: a delivery receipt, or an error as a value (``publish_many``)."""

from __future__ import annotations

import datetime as _dt

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


class CloseReport(msgspec.Struct, frozen=True):
    """What ``close``/``aclose`` could and could not do.

    Attributes:
        delivered: events acknowledged over the publisher's lifetime.
        failed: events whose delivery failed over the publisher's lifetime (their callers got
            the error).
        undelivered: events accepted but not acknowledged when the close deadline passed; their
            callers got an error (``PublishError``) rather than a receipt.
        undelivered_event_ids: the ``ce_id`` of each of those events.
        timed_out: whether the deadline passed before every event was settled.
    """

    delivered: int
    failed: int
    undelivered: int
    undelivered_event_ids: tuple[str, ...]
    timed_out: bool
