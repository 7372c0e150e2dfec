"""librdkafka settings a user sets (compression, tiny batches, message.max.bytes, partition
counts, client_id) against the local broker: what is consumed back is exactly what was sent."""

from __future__ import annotations

from collections import defaultdict

import msgspec
import pytest

import eventwire
import eventwire.codec
from eventwire.testing import LocalBroker
from tests.brokers import ON_KAFKA_AND_TANSU
from tests.events import BlobStored, OrderPlaced, order
from tests.integration.conftest import Topics
from tests.murmur2 import java_partition

COMPRESSIONS = ["none", "gzip", "snappy", "lz4", "zstd"]


def _assert_consumed_exactly(
    broker: LocalBroker,
    topic: str,
    config: eventwire.PublisherConfig,
    events: list[OrderPlaced],
    outcomes: list[eventwire.DeliveryReceipt | eventwire.PublishError],
) -> None:
    """Every event consumed once with its bytes, key, ce_id and receipt position; per key in
    publishing order; each key on its Java murmur2 partition."""
    records = broker.consume(topic, count=len(events))
    assert len(records) == len(events)
    codec = eventwire.codec.EventCodec(resolve_topic=config._resolve_topic)
    by_id = {(r.header("ce_id") or b"").decode(): r for r in records}
    partitions = 1 + max(r.partition for r in records)
    notes_by_key: dict[bytes | None, list[str | None]] = defaultdict(list)
    for event, outcome in zip(events, outcomes, strict=True):
        assert isinstance(outcome, eventwire.DeliveryReceipt), outcome
        record = by_id.pop(outcome.event_id)
        encoded = codec.encode(event)
        assert (record.key, record.value) == (encoded.key, encoded.value)
        assert (record.partition, record.offset) == (outcome.partition, outcome.offset)
        assert record.header("ce_type") == b"order.placed"
        assert record.key is not None
        assert record.partition == java_partition(record.key, partitions)
        notes_by_key[record.key].append(event.notes)
    assert not by_id
    consumed_by_key: dict[bytes | None, list[str | None]] = defaultdict(list)
    for record in records:  # (partition, offset) order
        consumed_by_key[record.key].append(
            msgspec.json.decode(record.value, type=OrderPlaced).notes
        )
    assert consumed_by_key == notes_by_key


@ON_KAFKA_AND_TANSU
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_delivers_the_exact_bytes(topics: Topics, compression: str) -> None:
    config = topics.config(compression=compression)
    events = [order(n, key=f"k{n % 11}") for n in range(300)]
    with eventwire.Publisher(config) as publisher:
        outcomes = publisher.publish_many(events)
    _assert_consumed_exactly(topics.broker, topics.name("orders"), config, events, outcomes)


@ON_KAFKA_AND_TANSU
def test_one_event_per_batch_delivers_everything_in_key_order(topics: Topics) -> None:
    config = topics.config(librdkafka_overrides={"batch.size": 1, "batch.num.messages": 1})
    events = [order(n, key=f"k{n % 7}") for n in range(300)]
    with eventwire.Publisher(config) as publisher:
        outcomes = publisher.publish_many(events)
    _assert_consumed_exactly(topics.broker, topics.name("orders"), config, events, outcomes)


@ON_KAFKA_AND_TANSU
@pytest.mark.parametrize("partitions", [1, 12])
async def test_keys_keep_order_and_murmur2_placement_for_any_partition_count(
    topics: Topics, partitions: int
) -> None:
    topic = topics.broker.create_topic(topics.name(f"orders{partitions}"), partitions)
    config = topics.config(topic_map={"orders": f"orders{partitions}"})
    events = [order(n, key=f"key-{n % 37}") for n in range(1500)]
    async with eventwire.AsyncPublisher(config) as publisher:
        outcomes = await publisher.publish_many(events)
    _assert_consumed_exactly(topics.broker, topic, config, events, outcomes)
    used = {o.partition for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)}
    assert used == set(range(partitions))  # 37 keys spread over every partition


@ON_KAFKA_AND_TANSU
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_message_max_bytes_applies_before_compression(topics: Topics, compression: str) -> None:
    # 200 kB of one letter compresses to a few hundred bytes, yet librdkafka measures the
    # uncompressed size: the event is refused even with gzip, and the error says so.
    config = topics.config(
        compression=compression, librdkafka_overrides={"message.max.bytes": 100_000}
    )
    big = BlobStored(name="big", data="a" * 200_000)
    small = [BlobStored(name=f"small-{n}", data="b" * 1_000) for n in range(3)]
    with eventwire.Publisher(config) as publisher:
        outcomes = publisher.publish_many([small[0], big, small[1], small[2]])
    error = outcomes[1]
    assert isinstance(error, eventwire.PermanentPublishError)
    assert error.code == "MSG_SIZE_TOO_LARGE"
    assert "message.max.bytes=100,000, which librdkafka checks before compression" in str(error)
    records = topics.broker.consume(topics.name("blobs"), count=3)
    assert sorted(r.value for r in records) == sorted(msgspec.json.encode(event) for event in small)


@ON_KAFKA_AND_TANSU
def test_client_id_names_the_default_source(topics: Topics) -> None:
    config = topics.config(client_id="billing-7")
    with eventwire.Publisher(config) as publisher:
        publisher.publish(order(1))
    [record] = topics.broker.consume(topics.name("orders"), count=1)
    assert record.header("ce_source") == b"/eventwire/billing-7"


def test_a_bootstrap_address_with_the_protocol_prefix_delivers(
    eventwire_broker: LocalBroker,
) -> None:
    # PLAINTEXT:// names the configured security protocol: accepted, and librdkafka connects
    # (kafka:// and http:// are refused when the config is built: tests/unit/test_config.py).
    topic = eventwire_broker.unique_topic("scheme")
    config = eventwire.PublisherConfig(
        bootstrap_servers=f"PLAINTEXT://{eventwire_broker.bootstrap_servers}"
    )
    with eventwire.Publisher(config) as publisher:
        receipt = publisher.publish(order(1), topic=topic)
    [record] = eventwire_broker.consume(topic, count=1)
    assert (record.partition, record.offset) == (receipt.partition, receipt.offset)
