"""The sync Publisher: same core, same guarantees; consumed back."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, overload

import msgspec
import pytest

import eventwire
from eventwire.testing import ProxiedBroker
from tests.brokers import ON_KAFKA_AND_TANSU
from tests.events import OrderPlaced, order, payment
from tests.integration.conftest import PARTITIONS, Topics
from tests.murmur2 import java_partition


@ON_KAFKA_AND_TANSU
def test_publish_returns_receipt_of_the_consumed_record(topics: Topics) -> None:
    with eventwire.Publisher(topics.config()) as publisher:
        receipt = publisher.publish(order(3))
    [record] = topics.broker.consume(topics.name("orders"), count=1)
    assert (record.partition, record.offset) == (receipt.partition, receipt.offset)
    assert receipt.partition == java_partition(b"ord-000003", PARTITIONS)
    assert msgspec.json.decode(record.value, type=OrderPlaced) == order(3)
    assert record.header("ce_id") == receipt.event_id.encode()


@ON_KAFKA_AND_TANSU
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


def test_a_second_close_waits_for_the_first(proxied: ProxiedBroker) -> None:
    """A close already under way (e.g. GracefulShutdown's thread) is waited for: the second
    caller gets the final counts, not a snapshot taken while the first still drains."""
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(bootstrap_servers=proxied.bootstrap_servers, breaker=None)
    publisher = eventwire.Publisher(config)
    publisher.publish(order(0))
    proxied.proxy.cut()  # the next event cannot be delivered
    outcome: list[object] = []
    blocked = threading.Thread(target=lambda: outcome.append(_outcome(publisher, order(1))))
    blocked.start()
    first: list[eventwire.CloseReport] = []
    closer = threading.Thread(target=lambda: first.append(publisher.close(timeout=1.0)))
    closer.start()
    while not publisher.closed:  # the first close has begun (no event to await for that)
        closer.join(0.001)
    second = publisher.close(timeout=10.0)
    closer.join()
    blocked.join()
    assert first[0].timed_out
    assert (first[0].delivered, first[0].failed, first[0].undelivered) == (1, 1, 1)
    assert (second.delivered, second.failed, second.undelivered) == (1, 1, 1)
    assert isinstance(outcome[0], eventwire.PublishError)


def _outcome(publisher: eventwire.Publisher, event: OrderPlaced) -> object:
    try:
        return publisher.publish(event)
    except eventwire.PublishError as error:
        return error
