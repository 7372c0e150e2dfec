"""Multi-topic publisher: each event type is routed to its own topic, and topics are remapped
per environment without touching the event declarations.

What it shows:

* three event types declared with their own topics (``orders``, ``payments``,
  ``shipments``); one ``publish_many`` call with a mixed list routes each event to its topic
  and returns one outcome per event, in order;
* ``topic_map`` renames a declared topic (here ``shipments`` → ``logistics.shipments``) and
  ``topic_prefix`` prefixes all of them (``--topic-prefix staging.``);
* ``publish(..., topic=...)`` overrides the topic of one call (the audit copy); the remapping
  still applies to it.

Run it: ``python -m examples.multi_topic_publisher --bootstrap-servers HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

import eventwire
from examples import _common

AT = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)


@eventwire.event(topic="orders", key="order_id", type="shop.order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    total_price: Decimal
    placed_at: dt.datetime


@eventwire.event(topic="payments", key="order_id", type="shop.payment.captured", version=1)
class PaymentCaptured(msgspec.Struct, frozen=True, kw_only=True):
    payment_id: str
    order_id: str
    amount: Decimal
    captured_at: dt.datetime


@eventwire.event(topic="shipments", key="order_id", type="shop.order.shipped", version=2)
class OrderShipped(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    carrier: str
    tracking_number: str
    shipped_at: dt.datetime


#: Declared topic → the topic this deployment uses.
TOPIC_MAP = {"shipments": "logistics.shipments"}
AUDIT_TOPIC = "audit"


def order_flow(count: int = 4) -> list[Any]:
    """What happens to ``count`` orders, interleaved as a service would emit it."""
    events: list[Any] = []
    for n in range(count):
        order_id = f"ord-{2001 + n}"
        amount = Decimal("19.90") * (n + 1)
        events.append(OrderPlaced(order_id=order_id, total_price=amount, placed_at=AT))
        events.append(
            PaymentCaptured(payment_id=f"pay-{n}", order_id=order_id, amount=amount, captured_at=AT)
        )
        events.append(
            OrderShipped(
                order_id=order_id, carrier="DHL", tracking_number=f"JD{n:010d}", shipped_at=AT
            )
        )
    return events


async def run(config: eventwire.PublisherConfig) -> list[eventwire.DeliveryReceipt]:
    """Publish the order flow, plus an audit copy of the first order; returns the receipts."""
    events = order_flow()
    async with eventwire.AsyncPublisher(config) as publisher:
        outcomes = await publisher.publish_many(events)
        receipts = [o for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]
        failures = [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)]
        if failures:
            raise RuntimeError(f"{len(failures)} events not delivered, first: {failures[0]}")
        receipts.append(await publisher.publish(events[0], topic=AUDIT_TOPIC))
    for topic, count in sorted(Counter(r.topic for r in receipts).items()):
        print(f"{topic}: {count} events")
    return receipts


def main(argv: Sequence[str] | None = None) -> None:
    args = _common.parser(__doc__).parse_args(argv)
    asyncio.run(run(_common.config(args, topic_map=TOPIC_MAP)))


if __name__ == "__main__":
    main()
