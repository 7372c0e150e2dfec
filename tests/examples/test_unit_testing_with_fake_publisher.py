"""The fake-publisher example: its own unit tests run here as written, and the same service
runs with the real publisher on the local broker, checked by consuming what was delivered."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import msgspec
import pytest

# The example's unit tests, collected and run as they are written there.
from examples.unit_testing_with_fake_publisher import (  # noqa: F401
    test_a_failed_delivery_parks_the_order,
    test_an_invalid_cart_is_refused_before_publishing,
    test_an_open_breaker_parks_orders,
    test_checkout_publishes_order_placed,
    test_orders_of_one_key_share_a_partition,
)

import eventwire
from eventwire.testing import LocalBroker
from examples import unit_testing_with_fake_publisher as example


async def test_the_service_on_a_real_broker_delivers_what_the_fake_recorded(
    eventwire_broker: LocalBroker,
) -> None:
    prefix = f"ex{uuid.uuid4().hex[:8]}."
    topic = eventwire_broker.create_topic(prefix + "orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=eventwire_broker.bootstrap_servers, topic_prefix=prefix
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        real = await example.service_with(publisher).checkout("cust-7", example.CART)
    async with eventwire.testing.AsyncFakePublisher(config) as fake:
        faked = await example.service_with(fake).checkout("cust-7", example.CART)

    assert real == faked == example.CheckoutResult(order_id="ord-1", status="placed", offset=0)
    [record] = eventwire_broker.consume(topic)
    [recorded] = fake.published()
    assert msgspec.json.decode(record.value or b"", type=example.OrderPlaced) == recorded.event
    assert (record.topic, record.partition, record.key) == (
        recorded.topic,
        recorded.partition,
        recorded.key,
    )
    assert [name for name, _ in record.headers] == [name for name, _ in recorded.headers]
    assert record.header("channel") == b"web"


async def test_main_runs_in_memory(capsys: pytest.CaptureFixture[str]) -> None:
    await example.main([])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("orders[")
    assert '"customer_id":"cust-1"' in lines[0]
    assert [line.rsplit(": ", 1)[1] for line in lines[2:]] == ["placed", "placed"]


async def test_main_publishes_to_a_broker(
    eventwire_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    await example.main(["--bootstrap-servers", eventwire_broker.bootstrap_servers])
    out = capsys.readouterr().out  # also holds the publisher's log lines
    results = dict(re.findall(r"^(ord-\w+): (\w+)$", out, flags=re.MULTILINE))
    assert list(results.values()) == ["placed", "placed"]

    # The topic is the declared "orders", shared with other runs: pick this run's orders by key.
    records = [r for r in eventwire_broker.consume("orders") if (r.key or b"").decode() in results]
    delivered = [msgspec.json.decode(r.value or b"", type=example.OrderPlaced) for r in records]
    assert sorted((e.customer_id, e.total) for e in delivered) == [
        ("cust-1", Decimal("38.99")),
        ("cust-2", Decimal("19.00")),
    ]
    assert {r.header("ce_type") for r in records} == {b"shop.order.placed"}
