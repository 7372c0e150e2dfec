"""The sync Publisher: same core, same guarantees; consumed back."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, overload

import msgspec
import pytest

import eventwire
from tests.events import OrderPlaced, order, payment
from tests.integration.conftest import PARTITIONS, Topics
from tests.murmur2 import java_partition


def test_publish_returns_receipt_of_the_consumed_record(topics: Topics) -> None:
    with eventwire.Publisher(topics.config()) as publisher:
        receipt = publisher.publish(order(3))
    [record] = topics.broker.consume(topics.name("orders"), count=1)
    assert (record.partition, record.offset) == (receipt.partition, receipt.offset)
    assert receipt.partition == java_partition(b"ord-000003", PARTITIONS)
    assert msgspec.json.decode(record.value, type=OrderPlaced) == order(3)
    assert record.header("ce_id") == receipt.event_id.encode()


def test_publish_many_outcomes_in_input_order(topics: Topics) -> None:
    events = [order(1), order(2, currency="bad"), payment(3), order(4)]
    with eventwire.Publisher(topics.config()) as publisher:
        outcomes = publisher.publish_many(events)
    assert [type(o).__name__ for o in outcomes] == [
        "DeliveryReceipt",
        "EventValidationError",
        "DeliveryReceipt",
        "DeliveryReceipt",
    ]
    assert len(topics.broker.consume(topics.name("orders"), count=2)) == 2
    assert len(topics.broker.consume(topics.name("payments"), count=1)) == 1


def test_many_threads_share_one_publisher(topics: Topics) -> None:
    receipts: list[eventwire.DeliveryReceipt] = []
    lock = threading.Lock()

    def work(base: int) -> None:
        for n in range(base, base + 50):
            receipt = publisher.publish(order(n))
            with lock:
                receipts.append(receipt)

    with eventwire.Publisher(topics.config()) as publisher:
        threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    records = topics.broker.consume(topics.name("orders"), count=200)
    assert {(r.partition, r.offset) for r in records} == {(r.partition, r.offset) for r in receipts}


def test_closed_publisher_refuses(topics: Topics) -> None:
    publisher = eventwire.Publisher(topics.config())
    publisher.close()
    with pytest.raises(eventwire.PublisherClosedError, match="create a new one"):
        publisher.publish(order(1))
    assert publisher.close().delivered == 0


class _InterruptedAt(Sequence[Any]):
    """Events whose iteration is interrupted (as by Ctrl-C) when it reaches ``stop``."""

    def __init__(self, events: list[Any], stop: int) -> None:
        self.events, self.stop = events, stop

    def __len__(self) -> int:
        return len(self.events)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if index == self.stop:
            raise KeyboardInterrupt
        return self.events[index]


def test_publish_many_interrupted_counts_only_what_it_handed_over(topics: Topics) -> None:
    # The events after the interruption were never accepted: close must not wait for them
    # until its timeout, nor report them undelivered.
    publisher = eventwire.Publisher(topics.config())
    with pytest.raises(KeyboardInterrupt):
        publisher.publish_many(_InterruptedAt([order(n) for n in range(10)], stop=5))
    assert publisher.outstanding <= 5
    report = publisher.close(timeout=20.0)
    assert (report.delivered, report.undelivered, report.timed_out) == (5, 0, False)
    records = topics.broker.consume(topics.name("orders"), count=5)
    assert sorted(r.key for r in records) == [f"ord-{n:06d}".encode() for n in range(5)]
