"""The contract: what any eventwire publisher does, observed from outside.

Each check takes a ``Target`` and asserts on receipts, errors and what a consumer reads back.
``test_contract.py`` runs every check against the fakes and the real publishers;
``test_divergent_fake.py`` proves the checks catch a fake that drifts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal

import msgspec
import pytest

import eventwire
from tests.contract.harness import PARTITIONS, Target
from tests.events import BlobStored, OrderPlaced, PaymentCaptured, order, payment
from tests.murmur2 import java_partition

Check = Callable[[Target], Awaitable[None]]

CE_HEADER_NAMES = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_eventversion",
    "content-type",
    "ce_time",
]
CE_TIME = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _receipts(outcomes: list[eventwire.PublishOutcome]) -> list[eventwire.DeliveryReceipt]:
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]


async def check_receipts_place_keys_by_murmur2_with_increasing_offsets(target: Target) -> None:
    events = [order(n, key=f"customer-{n % 7}") for n in range(40)]
    publisher = target.open()
    receipts = [await publisher.publish(event) for event in events[:10]]
    receipts += _receipts(await publisher.publish_many(events[10:]))
    await publisher.close()

    records = await target.delivered("orders")
    assert len(records) == len(events)
    by_place = {(r.partition, r.offset): r for r in records}
    offsets: dict[int, list[int]] = defaultdict(list)
    for event, receipt in zip(events, receipts, strict=True):
        key = event.order_id.encode()
        assert receipt.topic == target.topic("orders")
        assert receipt.partition == java_partition(key, PARTITIONS)
        record = by_place[(receipt.partition, receipt.offset)]
        assert record.key == key
        assert record.value == msgspec.json.encode(event)
        assert record.header("ce_id") == receipt.event_id.encode()
        assert record.timestamp_ms == receipt.timestamp_ms
        offsets[receipt.partition].append(receipt.offset)
    # A fresh topic: each partition's offsets count up from 0 in publish order.
    assert all(o == list(range(len(o))) for o in offsets.values()), offsets
    assert len({r.event_id for r in receipts}) == len(events)


async def check_cloudevents_headers(target: Target) -> None:
    publisher = target.open(source="/contract/payments")
    receipt = await publisher.publish(payment(1))
    await publisher.close()

    [record] = await target.delivered("payments")
    assert [name for name, _ in record.headers] == CE_HEADER_NAMES
    assert record.header("ce_specversion") == b"1.0"
    assert record.header("ce_id") == receipt.event_id.encode()
    assert record.header("ce_source") == b"/contract/payments"
    assert record.header("ce_type") == b"payment.captured"
    assert record.header("ce_eventversion") == b"2"
    assert record.header("content-type") == b"application/json"
    assert CE_TIME.match(record.header("ce_time") or b"")
    assert msgspec.json.decode(record.value or b"", type=PaymentCaptured) == payment(1)


async def check_msgpack_encoding(target: Target) -> None:
    publisher = target.open(encoding="msgpack")
    await publisher.publish(payment(2))
    await publisher.close()

    [record] = await target.delivered("payments")
    assert record.header("content-type") == b"application/msgpack"
    assert record.value == msgspec.msgpack.encode(payment(2))


async def check_user_headers_follow_and_reserved_ones_are_refused(target: Target) -> None:
    publisher = target.open()
    receipt = await publisher.publish(
        BlobStored(name="a", data="x"), headers={"tenant": "acme", "trace": b"\x00\x01"}
    )
    with pytest.raises(eventwire.EventValidationError) as refused:
        await publisher.publish(BlobStored(name="b", data="y"), headers=[("ce_type", "mine")])
    await publisher.close()

    assert (refused.value.path, str(refused.value)) == (
        "headers",
        "invalid blob.stored event at headers: header 'ce_type' is set by eventwire and "
        "cannot be given",
    )
    [record] = await target.delivered("blobs")
    assert [name for name, _ in record.headers] == [*CE_HEADER_NAMES, "tenant", "trace"]
    assert record.header("tenant") == b"acme"
    assert record.header("trace") == b"\x00\x01"
    assert record.key is None
    assert (record.partition, record.offset) == (receipt.partition, receipt.offset)
    assert 0 <= receipt.partition < PARTITIONS


async def check_header_and_key_of_a_wrong_type_are_refused(target: Target) -> None:
    publisher = target.open()
    refused = []
    for arguments in ({"headers": {"tenant": 7}}, {"key": 7}):
        with pytest.raises(eventwire.EventValidationError) as caught:
            await publisher.publish(BlobStored(name="a", data="x"), **arguments)
        refused.append(caught.value.path)
    await publisher.publish(BlobStored(name="b", data="y"))
    report = await publisher.close()

    assert refused == ["headers", "key"]
    assert (report.delivered, report.undelivered, report.timed_out) == (1, 0, False)
    assert [r.value for r in await target.delivered("blobs")] == [b'{"name":"b","data":"y"}']


async def check_validation_errors_name_the_path_and_send_nothing(target: Target) -> None:
    bad_items = order(2).line_items
    bad_items[1] = msgspec.structs.replace(bad_items[1], quantity=0)
    cases = [
        (order(1, currency="eur"), "$.currency", "Expected `str` matching regex '^[A-Z]{3}$'"),
        (order(2, line_items=bad_items), "$.line_items[1].quantity", "Expected `int` >= 1"),
        (order(3, total_price=1.5), "$.total_price", "Expected a finite `Decimal`, got `float`"),
        (
            order(4, created_at=order(4).created_at.replace(tzinfo=None)),
            "$.created_at",
            "Expected `datetime` with a timezone component",
        ),
    ]
    publisher = target.open()
    for event, path, reason in cases:
        with pytest.raises(eventwire.EventValidationError) as caught:
            await publisher.publish(event)
        assert (caught.value.event_type, caught.value.path, caught.value.reason) == (
            "order.placed",
            path,
            reason,
        )
        assert str(caught.value) == f"invalid order.placed event at {path}: {reason}"
    await publisher.publish(order(5))
    await publisher.close()

    records = await target.delivered("orders")
    assert [msgspec.json.decode(r.value or b"", type=OrderPlaced) for r in records] == [order(5)]


async def check_publish_many_outcomes_in_order_around_a_bad_event(target: Target) -> None:
    events = [
        order(1, key="same"),
        order(2, key="same", total_price=Decimal("NaN")),
        order(3, key="same"),
        payment(1),
        order(4, key="same"),
    ]
    publisher = target.open()
    outcomes = await publisher.publish_many(events)
    await publisher.close()

    assert [type(o).__name__ for o in outcomes] == [
        "DeliveryReceipt",
        "EventValidationError",
        "DeliveryReceipt",
        "DeliveryReceipt",
        "DeliveryReceipt",
    ]
    error = outcomes[1]
    assert isinstance(error, eventwire.EventValidationError)
    assert error.path == "$.total_price"
    assert [o.topic for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)] == [
        target.topic(t) for t in ("orders", "orders", "payments", "orders")
    ]
    records = await target.delivered("orders")
    decoded = [msgspec.json.decode(r.value or b"", type=OrderPlaced) for r in records]
    assert decoded == [events[0], events[2], events[4]]  # one key: one partition, in order
    assert [r.offset for r in records] == [0, 1, 2]


async def check_closed_publisher_refuses_and_reports(target: Target) -> None:
    publisher = target.open()
    await publisher.publish_many([order(1), order(2)])
    assert not publisher.closed
    assert publisher.outstanding == 0
    report = await publisher.close()
    assert report == eventwire.CloseReport(
        delivered=2, failed=0, undelivered=0, undelivered_event_ids=(), timed_out=False
    )
    assert publisher.closed
    with pytest.raises(eventwire.PublisherClosedError, match=r"^publisher is closed; create"):
        await publisher.publish(order(3))
    with pytest.raises(eventwire.PublisherClosedError, match=r"^publisher is closed; create"):
        await publisher.publish_many([order(4)])
    with pytest.raises(eventwire.PublisherClosedError):  # closed wins over validation
        await publisher.publish(order(5, currency="bad"))
    assert (await publisher.close()).delivered == 2
    assert len(await target.delivered("orders")) == 2


async def check_topic_map_prefix_and_call_override(target: Target) -> None:
    publisher = target.open(topic_map={"orders": "payments"})
    mapped = await publisher.publish(order(1))
    overridden = await publisher.publish(order(2), topic="blobs")
    overridden_mapped = await publisher.publish(order(3), topic="orders")
    [many] = _receipts(await publisher.publish_many([order(4)], topic="blobs"))
    await publisher.close()

    assert [mapped.topic, overridden.topic, overridden_mapped.topic, many.topic] == [
        target.topic("payments"),
        target.topic("blobs"),
        target.topic("payments"),
        target.topic("blobs"),
    ]
    assert await target.delivered("orders") == []
    payments = await target.delivered("payments")
    assert sorted(r.key or b"" for r in payments) == [b"ord-000001", b"ord-000003"]
    assert {r.header("ce_type") for r in payments} == {b"order.placed"}
    assert sorted(r.key or b"" for r in await target.delivered("blobs")) == [
        b"ord-000002",
        b"ord-000004",
    ]


async def check_key_override(target: Target) -> None:
    publisher = target.open()
    by_str = await publisher.publish(order(1), key="override-key")
    by_bytes = await publisher.publish(order(2), key=b"\x00\xffbinary")
    keyless_with_key = await publisher.publish(BlobStored(name="n", data="d"), key="blob-key")
    await publisher.close()

    assert by_str.partition == java_partition(b"override-key", PARTITIONS)
    assert by_bytes.partition == java_partition(b"\x00\xffbinary", PARTITIONS)
    assert keyless_with_key.partition == java_partition(b"blob-key", PARTITIONS)
    records = {(r.partition, r.offset): r.key for r in await target.delivered("orders")}
    assert records[(by_str.partition, by_str.offset)] == b"override-key"
    assert records[(by_bytes.partition, by_bytes.offset)] == b"\x00\xffbinary"
    [blob] = await target.delivered("blobs")
    assert blob.key == b"blob-key"


async def check_too_large_event_is_refused(target: Target) -> None:
    publisher = target.open(librdkafka_overrides={"message.max.bytes": 10_000})
    big = BlobStored(name="big", data="x" * 20_000)
    with pytest.raises(eventwire.PermanentPublishError) as caught:
        await publisher.publish(big)
    outcomes = await publisher.publish_many([BlobStored(name="a", data="1"), big])
    await publisher.close()

    error = caught.value
    assert (error.code, error.attempts, error.topic) == (
        "MSG_SIZE_TOO_LARGE",
        0,
        target.topic("blobs"),
    )
    assert str(error) == (
        f"event {error.event_id} (blob.stored) is 20,024 bytes encoded (+ key and headers), "
        "over the producer's limit message.max.bytes=10,000, which librdkafka checks before "
        "compression; it was not sent (raise it with PublisherConfig(librdkafka_overrides="
        "{'message.max.bytes': ...}); the topic's max.message.bytes must allow it too)"
    )
    assert [type(o).__name__ for o in outcomes] == ["DeliveryReceipt", "PermanentPublishError"]
    assert [r.key for r in await target.delivered("blobs")] == [None]


async def check_breaker_state(target: Target) -> None:
    with_breaker = target.open()
    without = target.open(breaker=None)
    assert with_breaker.breaker_state == "closed"
    assert without.breaker_state == "disabled"
    await with_breaker.publish(order(1))
    await without.publish(order(2))
    assert with_breaker.breaker_state == "closed"
    assert (with_breaker.outstanding, without.outstanding) == (0, 0)


async def check_accept_needs_a_spool_and_delivers_like_publish(target: Target) -> None:
    with pytest.raises(eventwire.ConfigError, match="needs a durable spool"):
        await target.open().accept(order(0))
    publisher = target.open(spool_path=target.spool_path())
    events = [order(1, key="same"), order(2, currency="euro"), order(3, key="same"), order(4)]
    outcomes = await publisher.accept_many(events)
    await publisher.close()
    assert [type(o).__name__ for o in outcomes] == [
        "DeliveryReceipt",
        "EventValidationError",
        "DeliveryReceipt",
        "DeliveryReceipt",
    ]
    receipts = [o for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]
    records = await target.delivered("orders")
    assert sorted((r.partition, r.offset) for r in records) == sorted(
        (r.partition, r.offset) for r in receipts
    )
    by_id = {r.header("ce_id"): r for r in records}
    for event, receipt in zip([events[0], events[2], events[3]], receipts, strict=True):
        record = by_id[receipt.event_id.encode()]
        assert record.key == event.order_id.encode()
        assert receipt.partition == java_partition(record.key, PARTITIONS)
        assert record.value == msgspec.json.encode(event)
    same = [r for r in records if r.key == b"same"]
    assert [r.header("ce_id") for r in same] == [
        receipts[0].event_id.encode(),
        receipts[1].event_id.encode(),
    ]


async def check_one_event_and_many_events_calls_point_at_each_other(target: Target) -> None:
    publisher = target.open(spool_path=target.spool_path())
    event = order(1)
    with pytest.raises(eventwire.EventDefinitionError) as one:
        await publisher.publish([event])  # was: "list is not an event: decorate it ..."
    assert str(one.value) == (
        "a list is not an event: publish() and accept() take one event; publish_many(events)"
        " and accept_many(events) take several"
    )
    for method in ("publish_many", "accept_many"):
        with pytest.raises(TypeError) as many:  # was: "'OrderPlaced' object is not iterable"
            await getattr(publisher, method)(event)
        assert str(many.value) == (
            f"{method}() takes an iterable of events, got one OrderPlaced event: use"
            f" {method.removesuffix('_many')}(event), or {method}([event])"
        )
        with pytest.raises(TypeError) as nothing:
            await getattr(publisher, method)(42)
        assert str(nothing.value) == (
            f"{method}() takes an iterable of events (a list, a generator...), got int"
        )
    await publisher.close()
    assert await target.delivered("orders") == []


CHECKS: list[Check] = [
    check_receipts_place_keys_by_murmur2_with_increasing_offsets,
    check_cloudevents_headers,
    check_msgpack_encoding,
    check_user_headers_follow_and_reserved_ones_are_refused,
    check_header_and_key_of_a_wrong_type_are_refused,
    check_validation_errors_name_the_path_and_send_nothing,
    check_publish_many_outcomes_in_order_around_a_bad_event,
    check_closed_publisher_refuses_and_reports,
    check_topic_map_prefix_and_call_override,
    check_key_override,
    check_too_large_event_is_refused,
    check_breaker_state,
    check_accept_needs_a_spool_and_delivers_like_publish,
    check_one_event_and_many_events_calls_point_at_each_other,
]
