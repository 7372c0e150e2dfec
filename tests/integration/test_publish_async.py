"""AsyncPublisher against the real local broker; everything is consumed back."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

import eventwire
from eventwire.testing import ProxiedBroker
from tests.brokers import ON_KAFKA_AND_TANSU
from tests.events import BlobStored, OrderPlaced, PaymentCaptured, order, payment
from tests.integration.conftest import PARTITIONS, StatefulBroker, Topics
from tests.murmur2 import java_partition

CE_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")


@ON_KAFKA_AND_TANSU
async def test_publish_returns_receipt_matching_consumed_record(topics: Topics) -> None:
    async with eventwire.AsyncPublisher(topics.config(source="/tests/orders")) as publisher:
        receipt = await publisher.publish(order(1))

    [record] = topics.broker.consume(topics.name("orders"), count=1)
    assert (receipt.topic, receipt.partition, receipt.offset) == (
        record.topic,
        record.partition,
        record.offset,
    )
    assert receipt.timestamp_ms == record.timestamp_ms
    assert record.key == b"ord-000001"
    assert msgspec.json.decode(record.value, type=OrderPlaced) == order(1)
    assert record.header("ce_specversion") == b"1.0"
    assert record.header("ce_id") == receipt.event_id.encode()
    assert record.header("ce_source") == b"/tests/orders"
    assert record.header("ce_type") == b"order.placed"
    assert record.header("ce_eventversion") == b"1"
    assert record.header("content-type") == b"application/json"
    ce_time = record.header("ce_time")
    assert ce_time is not None
    assert ce_time.endswith(b"Z")


@ON_KAFKA_AND_TANSU
async def test_many_keys_land_on_java_murmur2_partitions_in_order(topics: Topics) -> None:
    events = [order(n, key=f"customer-{n % 17}") for n in range(600)]
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        outcomes = await publisher.publish_many(events)

    receipts = [o for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]
    assert len(receipts) == 600
    records = topics.broker.consume(topics.name("orders"), count=600)
    by_position = {(r.partition, r.offset): r for r in records}
    for event, receipt in zip(events, receipts, strict=True):
        record = by_position[(receipt.partition, receipt.offset)]
        assert record.value == msgspec.json.encode(event)
        assert record.header("ce_id") == receipt.event_id.encode()
        assert receipt.partition == java_partition(event.order_id.encode(), PARTITIONS)
    # Order per key: the consumed sequence of each key is the published sequence.
    consumed: dict[bytes, list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key is not None
        consumed[record.key].append(msgspec.json.decode(record.value, type=OrderPlaced).notes or "")
    published: dict[bytes, list[str]] = defaultdict(list)
    for event in events:
        published[event.order_id.encode()].append(event.notes or "")
    assert consumed == published
    assert len({r.event_id for r in receipts}) == 600  # ce_id unique per event


async def test_concurrent_publish_calls_each_get_their_receipt(topics: Topics) -> None:
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        receipts = await asyncio.gather(*(publisher.publish(order(n)) for n in range(200)))
    records = topics.broker.consume(topics.name("orders"), count=200)
    ids = {(r.partition, r.offset): r.header("ce_id") for r in records}
    assert {(r.partition, r.offset): r.event_id.encode() for r in receipts} == ids


@ON_KAFKA_AND_TANSU
async def test_event_types_go_to_their_own_topics(topics: Topics) -> None:
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        outcomes = await publisher.publish_many(
            [order(1), payment(1), order(2), payment(2), payment(3)]
        )
    assert [o.topic for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)] == [
        topics.name("orders"),
        topics.name("payments"),
        topics.name("orders"),
        topics.name("payments"),
        topics.name("payments"),
    ]
    orders = topics.broker.consume(topics.name("orders"), count=2)
    payments = topics.broker.consume(topics.name("payments"), count=3)
    assert {r.header("ce_type") for r in orders} == {b"order.placed"}
    assert {r.header("ce_type") for r in payments} == {b"payment.captured"}
    assert {r.header("ce_eventversion") for r in payments} == {b"2"}
    decoded = {msgspec.json.decode(r.value, type=PaymentCaptured) for r in payments}
    assert decoded == {payment(1), payment(2), payment(3)}


async def test_topic_map_remaps_and_call_override_is_remapped_too(topics: Topics) -> None:
    config = topics.config(topic_map={"orders": "payments"})
    async with eventwire.AsyncPublisher(config) as publisher:
        mapped = await publisher.publish(order(1))
        overridden = await publisher.publish(order(2), topic="blobs")
    assert mapped.topic == topics.name("payments")
    assert overridden.topic == topics.name("blobs")
    assert [r.key for r in topics.broker.consume(topics.name("blobs"), count=1)] == [b"ord-000002"]


@pytest.mark.parametrize("topic", ["", ".", ".."])
async def test_an_illegal_call_topic_is_refused_not_resolved_to_the_prefix(
    topics: Topics, topic: str
) -> None:
    """``topic=""`` (e.g. from an unset setting) went to the topic named by the prefix alone
    (qa5a finding); the call's topic must be a legal name itself."""
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        with pytest.raises(eventwire.ConfigError, match=f"^topic {topic!r} is not a legal"):
            await publisher.publish(order(1), topic=topic)
        [outcome] = await publisher.publish_many([order(2)], topic=topic)
        assert isinstance(outcome, eventwire.ConfigError)
        await publisher.publish(order(3))
    assert [r.key for r in topics.broker.consume(topics.name("orders"), count=1)] == [b"ord-000003"]
    with pytest.raises(ValueError, match="does not exist"):  # nothing went to the prefix alone
        topics.broker.consume(topics.prefix, timeout=5)


@ON_KAFKA_AND_TANSU
async def test_null_key_events_and_extra_headers(topics: Topics) -> None:
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        receipt = await publisher.publish(
            BlobStored(name="a", data="x"), headers={"tenant": "acme", "trace": b"\x00\x01"}
        )
        with pytest.raises(eventwire.EventValidationError, match="'ce_id' is set by eventwire"):
            await publisher.publish(BlobStored(name="b", data="y"), headers={"ce_id": "mine"})
    [record] = topics.broker.consume(topics.name("blobs"), count=1)
    assert record.key is None
    assert record.offset == receipt.offset
    assert record.header("tenant") == b"acme"
    assert record.header("trace") == b"\x00\x01"
    assert all(record.header(h) is not None for h in CE_HEADERS)


@ON_KAFKA_AND_TANSU
async def test_msgpack_encoding_round_trips(topics: Topics) -> None:
    async with eventwire.AsyncPublisher(topics.config(encoding="msgpack")) as publisher:
        await publisher.publish(order(7))
    [record] = topics.broker.consume(topics.name("orders"), count=1)
    assert record.header("content-type") == b"application/msgpack"
    assert msgspec.msgpack.decode(record.value, type=OrderPlaced) == order(7)


@ON_KAFKA_AND_TANSU
async def test_oversized_event_fails_alone_in_publish_many(topics: Topics) -> None:
    events = [order(n) for n in range(10)]
    events[4] = order(4, notes="x" * 1_200_000)  # over librdkafka's message.max.bytes (1 MB)
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        outcomes = await publisher.publish_many(events)

    error = outcomes[4]
    assert isinstance(error, eventwire.PermanentPublishError)
    assert error.code == "MSG_SIZE_TOO_LARGE"
    assert "over the producer's limit message.max.bytes=1,000,000" in str(error)
    assert error.topic == topics.name("orders")
    assert [isinstance(o, eventwire.DeliveryReceipt) for o in outcomes] == [
        i != 4 for i in range(10)
    ]
    records = topics.broker.consume(topics.name("orders"), count=9)
    assert sorted(r.key for r in records) == sorted(  # type: ignore[type-var]
        f"ord-{n:06d}".encode() for n in range(10) if n != 4
    )


async def test_publish_after_close_raises(topics: Topics) -> None:
    publisher = eventwire.AsyncPublisher(topics.config())
    await publisher.publish(order(1))
    report = await publisher.aclose()
    assert (report.delivered, report.undelivered, report.timed_out) == (1, 0, False)
    with pytest.raises(eventwire.PublisherClosedError, match="publisher is closed"):
        await publisher.publish(order(2))
    with pytest.raises(eventwire.PublisherClosedError):
        await publisher.publish_many([order(3)])
    assert topics.broker.consume(topics.name("orders"), count=1)[0].key == b"ord-000001"


@pytest.mark.parametrize("size", [2000, 20_000])
async def test_cancelled_publish_many_leaves_the_publisher_settling(
    topics: Topics, size: int
) -> None:
    """A caller cancelled while its batch is in flight (2000: all of it handed over in the
    first slice, most likely) or still being produced (20,000: the call lets the loop run
    every 10 ms): what was handed to Kafka is delivered and counted, in order, the rest was
    never sent, later events are delivered, and closing does not wait for a lost outcome."""
    events = [order(n) for n in range(size)]
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        task = asyncio.create_task(publisher.publish_many(events))
        await asyncio.sleep(0)  # one loop turn: the task produces its first slice
        assert publisher.outstanding > 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        receipt = await publisher.publish(order(50_000))
        report = await publisher.aclose(timeout=20.0)
    assert receipt.event_id
    assert not report.timed_out
    assert (report.failed, report.undelivered) == (0, 0)
    sent = report.delivered - 1
    assert 0 < sent <= size
    if size == 20_000:
        assert sent < size  # cancelled mid-production: the rest was never handed over
    records = topics.broker.consume(topics.name("orders"), count=sent + 1)
    assert len(records) == sent + 1
    consumed = sorted(
        (msgspec.json.decode(r.value, type=OrderPlaced) for r in records if r.key != b"ord-050000"),
        key=lambda event: event.created_at,
    )
    assert consumed == events[:sent]  # a prefix of the call: nothing skipped


async def test_publish_from_another_event_loop_is_refused_before_sending(topics: Topics) -> None:
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        await publisher.publish(order(1))
        errors: list[BaseException] = []

        async def elsewhere() -> None:
            for call in (
                lambda: publisher.publish(order(2)),
                lambda: publisher.publish_many([order(3)]),
            ):
                try:
                    await call()
                except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                    errors.append(exc)

        thread = threading.Thread(target=asyncio.run, args=(elsewhere(),))
        thread.start()
        await asyncio.to_thread(thread.join)
        assert [type(e) for e in errors] == [RuntimeError, RuntimeError]
        assert all("event loop" in str(e) and "first used" in str(e) for e in errors)
        assert publisher.outstanding == 0
        await publisher.publish(order(4))
    records = topics.broker.consume(topics.name("orders"))
    assert sorted(r.key for r in records) == [b"ord-000001", b"ord-000004"]


async def test_a_second_aclose_waits_for_the_first(proxied: ProxiedBroker) -> None:
    """As `test_a_second_close_waits_for_the_first` (sync): GracefulShutdown's close task
    and the caller's own aclose, one after the other."""
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(bootstrap_servers=proxied.bootstrap_servers, breaker=None)
    publisher = eventwire.AsyncPublisher(config)
    await publisher.publish(order(0))
    proxied.proxy.cut()  # the next event cannot be delivered
    blocked = asyncio.create_task(publisher.publish(order(1)))
    await asyncio.sleep(0)  # let it produce
    first = asyncio.create_task(publisher.aclose(timeout=1.0))
    await asyncio.sleep(0)  # the first close begins
    assert publisher.closed
    second = await publisher.aclose(timeout=10.0)
    report = await first
    assert report.timed_out
    assert (report.delivered, report.failed, report.undelivered) == (1, 1, 1)
    assert (second.delivered, second.failed, second.undelivered) == (1, 1, 1)
    with pytest.raises(eventwire.PublishError):
        await blocked


@pytest.mark.parametrize("spooled", [False, True], ids=["no-spool", "spool"])
async def test_a_large_publish_many_lets_other_tasks_publish_meanwhile(
    topics: Topics, tmp_path: Path, spooled: bool
) -> None:
    # One key, so every event lands on one partition and offsets give the produce order.
    events = [order(n, key="one-key") for n in range(20_000)]
    other = order(99_999, key="one-key")
    spool: dict[str, object] = {"spool_path": tmp_path / "spool.db"} if spooled else {}
    async with eventwire.AsyncPublisher(topics.config(**spool)) as publisher:
        many = asyncio.create_task(publisher.publish_many(events))
        await asyncio.sleep(0)  # publish_many starts encoding and producing
        receipt = await publisher.publish(other)
        outcomes = await many

    receipts = [o for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]
    assert len(receipts) == len(events)
    # The other task ran while the batch was being encoded and produced, not after all of it
    # (the loop was not blocked for the whole call).
    assert receipt.offset < max(r.offset for r in receipts)
    records = topics.broker.consume(topics.name("orders"), count=len(events) + 1)
    by_offset = {r.offset: r for r in records}
    assert by_offset[receipt.offset].header("ce_id") == receipt.event_id.encode()
    batch_order = [by_offset[r.offset] for r in sorted(receipts, key=lambda r: r.offset)]
    assert [msgspec.json.decode(r.value, type=OrderPlaced) for r in batch_order] == events


@pytest.mark.parametrize("spooled", [False, True], ids=["no-spool", "spool"])
async def test_a_close_during_a_large_publish_many_refuses_the_rest(
    topics: Topics, tmp_path: Path, spooled: bool
) -> None:
    """The call lets the loop run while it works, so a close can come in the middle: the
    events handed over before it are delivered, the rest get ``PublisherClosedError``
    (nothing waits for ever, nothing is left unaccounted)."""
    events = [order(n) for n in range(20_000)]
    spool: dict[str, object] = {"spool_path": tmp_path / "spool.db"} if spooled else {}
    publisher = eventwire.AsyncPublisher(topics.config(**spool))
    many = asyncio.create_task(publisher.publish_many(events))
    await asyncio.sleep(0)  # publish_many starts encoding and producing
    report = await asyncio.wait_for(publisher.aclose(timeout=20.0), 60)
    outcomes = await asyncio.wait_for(many, 60)

    sent = sum(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes)
    assert sent < len(events)
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes[:sent])
    assert all(isinstance(o, eventwire.PublisherClosedError) for o in outcomes[sent:])
    assert (report.delivered, report.failed, report.undelivered) == (sent, 0, 0)
    assert (report.timed_out, report.spooled) == (False, 0)
    records = topics.broker.consume(topics.name("orders"))  # to every partition's end
    consumed = sorted(
        (msgspec.json.decode(r.value, type=OrderPlaced) for r in records),
        key=lambda event: event.created_at,
    )
    assert consumed == events[:sent]


async def test_event_over_the_brokers_limit_fails_alone_in_publish_many(
    stateful_broker: StatefulBroker,
) -> None:
    # Tansu has no size limit; Kafka (and noida-db) refuse a record over the broker's limit in
    # the produce response (broker-side MSG_SIZE_TOO_LARGE), after librdkafka's check let it
    # through.
    broker = stateful_broker.broker
    topic = broker.create_topic(stateful_broker.name("orders"), PARTITIONS)
    config = eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=stateful_broker.prefix,
        librdkafka_overrides={"message.max.bytes": 20_000_000},
    )
    events = [order(n, key=f"k{n % 3}") for n in range(10)]
    events[4] = order(4, key="k1", notes="x" * 3_000_000)
    async with eventwire.AsyncPublisher(config) as publisher:
        outcomes = await publisher.publish_many(events)
    records = broker.consume(topic, count=9)
    error = outcomes[4]
    assert isinstance(error, eventwire.PermanentPublishError)
    assert (error.code, error.attempts, error.topic) == ("MSG_SIZE_TOO_LARGE", 1, topic)
    assert "Message size too large" in str(error)
    # ...and what to change: librdkafka's text names no setting.
    assert str(error).endswith(
        "(the broker refused the record as larger than the topic's max.message.bytes (default:"
        " the broker's message.max.bytes, about 1 MB): raise that topic setting, or publish"
        " smaller events)"
    )
    receipts = [o for i, o in enumerate(outcomes) if i != 4]
    assert all(isinstance(r, eventwire.DeliveryReceipt) for r in receipts)
    by_id = {(r.header("ce_id") or b"").decode(): r for r in records}
    assert len(records) == 9
    for i, receipt in enumerate(outcomes):
        if i == 4:
            continue
        assert isinstance(receipt, eventwire.DeliveryReceipt)
        record = by_id[receipt.event_id]
        assert record.value == msgspec.json.encode(events[i])
        assert (record.partition, record.offset) == (receipt.partition, receipt.offset)
