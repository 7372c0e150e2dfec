"""Basic order publisher: declare an event, publish it, read the receipt.

What it shows:

* an event is a frozen ``msgspec.Struct`` declared with ``@eventwire.event``: the CloudEvents
  type, schema version, topic and key field are bound once;
* money is a ``Decimal`` (sent as an exact JSON string, a float is refused) and timestamps are
  timezone-aware ``datetime``s;
* ``Publisher`` (the sync twin) as a context manager: ``publish`` returns once Kafka
  acknowledged the event (``acks=all``, idempotent) with a ``DeliveryReceipt`` (topic,
  partition, offset);
* an invalid event raises ``EventValidationError`` naming the field, and nothing is sent.

Run it: ``python -m examples.basic_order_publisher --bootstrap-servers HOST:PORT``
(``eventwire broker`` runs a local broker and prints its address).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated

import msgspec

import eventwire
from examples import _common


class LineItem(msgspec.Struct, frozen=True, kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    unit_price: Decimal


@eventwire.event(topic="orders", key="order_id", type="shop.order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    """An order was placed. Same ``order_id`` → same partition, in order."""

    order_id: str
    customer_id: str
    placed_at: dt.datetime
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    line_items: list[LineItem]
    total_price: Decimal


def sample_orders(count: int = 3) -> list[OrderPlaced]:
    placed = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
    orders = []
    for n in range(count):
        items = [
            LineItem(sku="MUG-01", quantity=1 + n, unit_price=Decimal("12.50")),
            LineItem(sku="TEA-GREEN", quantity=2, unit_price=Decimal("4.95")),
        ]
        orders.append(
            OrderPlaced(
                order_id=f"ord-{1001 + n}",
                customer_id=f"cust-{42 + n}",
                placed_at=placed + dt.timedelta(minutes=n),
                currency="EUR",
                line_items=items,
                total_price=sum((i.unit_price * i.quantity for i in items), Decimal(0)),
            )
        )
    return orders


def run(config: eventwire.PublisherConfig) -> list[eventwire.DeliveryReceipt]:
    """Publish the sample orders one by one; returns their receipts."""
    receipts = []
    with eventwire.Publisher(config) as publisher:
        for order in sample_orders():
            receipt = publisher.publish(order)
            print(
                f"{order.order_id} -> {receipt.topic}[{receipt.partition}]@{receipt.offset}"
                f" (ce_id {receipt.event_id})"
            )
            receipts.append(receipt)
        invalid = msgspec.structs.replace(sample_orders(1)[0], currency="euro")
        try:
            publisher.publish(invalid)
        except eventwire.EventValidationError as exc:
            print(f"refused before Kafka: {exc}")
    return receipts


def main(argv: Sequence[str] | None = None) -> None:
    args = _common.parser(__doc__).parse_args(argv)
    run(_common.config(args))


if __name__ == "__main__":
    main()
