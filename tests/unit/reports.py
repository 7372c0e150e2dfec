"""Feeding delivery reports to a ``ProducerCore`` as its poll thread would, for unit tests of
what the core does with them (no broker: the bootstrap address is never contacted)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import eventwire
import eventwire.codec
from eventwire._core.coordinator import ProducerCore
from eventwire._core.record import InFlight
from eventwire._outcome import DeliveryReceipt
from tests.events import order


class RecordingSink:
    """Keeps the outcome a record is settled with."""

    def __init__(self) -> None:
        self.outcome: DeliveryReceipt | eventwire.PublishError | None = None

    def settle(self, record: InFlight, outcome: DeliveryReceipt | eventwire.PublishError) -> None:
        self.outcome = outcome


@contextmanager
def idle_core(**config: Any) -> Iterator[ProducerCore]:
    """A core whose producer never connects (nothing is produced)."""
    core = ProducerCore(eventwire.PublisherConfig(bootstrap_servers="127.0.0.1:9", **config))
    try:
        yield core
    finally:
        core.stop_polling(1.0)


def taken_record(core: ProducerCore, number: int = 1) -> tuple[InFlight, RecordingSink]:
    """A record of an order the core counts as taken, and the sink it settles into."""
    sink = RecordingSink()
    record = core.record(eventwire.codec.EventCodec().encode(order(number)), sink)
    core.counters.take()
    return record, sink
