"""Typing test for the public API: checked by ``mypy --strict`` (``make typecheck``), and
imported by ``tests/unit/test_typing_module.py`` so it also runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import assert_type

import msgspec

import eventwire


@eventwire.event(topic="orders", key="order_id", type="order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    created_at: dt.datetime
    total_price: Decimal


def declaration_keeps_the_class() -> None:
    event = OrderPlaced(order_id="o-1", created_at=dt.datetime.now(dt.UTC), total_price=Decimal(1))
    assert_type(event, OrderPlaced)
    assert_type(eventwire.spec_of(OrderPlaced), eventwire.EventSpec)


async def async_api(config: eventwire.PublisherConfig, event: OrderPlaced) -> None:
    async with eventwire.AsyncPublisher(config) as publisher:
        assert_type(publisher, eventwire.AsyncPublisher)
        receipt = await publisher.publish(event, key="k", headers={"tenant": "acme"})
        assert_type(receipt, eventwire.DeliveryReceipt)
        assert_type(receipt.offset, int)
        assert_type(receipt.timestamp, dt.datetime)
        outcomes = await publisher.publish_many([event, event])
        assert_type(outcomes, list[eventwire.DeliveryReceipt | eventwire.EventwireError])
        report = await publisher.aclose(timeout=5.0)
        assert_type(report, eventwire.CloseReport)


def sync_api(config: eventwire.PublisherConfig, event: OrderPlaced) -> None:
    with eventwire.Publisher(config) as publisher:
        assert_type(publisher.publish(event), eventwire.DeliveryReceipt)
        for outcome in publisher.publish_many([event]):
            if isinstance(outcome, eventwire.PublishError):
                assert_type(outcome.event_id, str)
        assert_type(publisher.close(), eventwire.CloseReport)


def config_is_keyword_only() -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(bootstrap_servers="localhost:9092", preset="throughput")
