"""Key fields of every allowed type, and per-call keys, reach Kafka as the bytes the payload
names and land on the partition Java's murmur2 gives those bytes."""

from __future__ import annotations

import enum
import uuid

import msgspec

import eventwire
from tests.brokers import ON_KAFKA_AND_TANSU
from tests.integration.conftest import PARTITIONS, Topics
from tests.murmur2 import java_partition


class Tier(enum.IntEnum):
    GOLD = 2


class Shard(int, enum.Enum):  # a mixed-in enum: str() gives 'Shard.EAST', not its value
    EAST = 7


@eventwire.event(topic="orders", key="shard", type="order.sharded")
class Sharded(msgspec.Struct, frozen=True):
    shard: Shard


@eventwire.event(topic="orders", key="tier", type="order.tiered")
class Tiered(msgspec.Struct, frozen=True):
    tier: Tier


@eventwire.event(topic="orders", key="number", type="order.numbered")
class Numbered(msgspec.Struct, frozen=True):
    number: int


@eventwire.event(topic="orders", key="ref", type="order.referenced")
class Referenced(msgspec.Struct, frozen=True):
    ref: uuid.UUID


@eventwire.event(topic="orders", key="name", type="order.named")
class Named(msgspec.Struct, frozen=True):
    name: str


@ON_KAFKA_AND_TANSU
async def test_key_bytes_are_the_payload_value_and_placed_by_murmur2(topics: Topics) -> None:
    ref = uuid.UUID("12345678-1234-5678-1234-567812345678")
    cases: list[tuple[object, bytes]] = [
        (Sharded(Shard.EAST), b"7"),
        (Tiered(Tier.GOLD), b"2"),
        (Numbered(-5), b"-5"),
        (Referenced(ref), str(ref).encode()),
        (Named(""), b""),
        (Named("заказ-ü"), "заказ-ü".encode()),
    ]
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        receipts = [await publisher.publish(event) for event, _ in cases]
        per_call = await publisher.publish(Named("ignored"), key=b"\x00\xffbin")
    records = {
        r.header("ce_id"): r
        for r in topics.broker.consume(topics.name("orders"), count=len(cases) + 1)
    }
    expected = [key for _, key in cases] + [b"\x00\xffbin"]
    for receipt, key in zip([*receipts, per_call], expected, strict=True):
        record = records[receipt.event_id.encode()]
        assert record.key == key
        assert record.partition == receipt.partition == java_partition(key, PARTITIONS)
    assert msgspec.json.decode(records[receipts[0].event_id.encode()].value or b"") == {"shard": 7}
