"""The event the benchmarks publish: one order with three line items (about 650 bytes of JSON).

Money is ``Decimal`` (encoded as an exact JSON string) and the timestamp is timezone-aware,
as the design asks of real events; the ``Meta`` constraints make validation do real work.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import msgspec

import eventwire

#: Declared topic of ``OrderPlaced``; each benchmark case remaps it to a fresh topic.
DECLARED_TOPIC = "orders"

_EPOCH = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


class Address(msgspec.Struct, frozen=True, kw_only=True):
    street: Annotated[str, msgspec.Meta(min_length=1)]
    city: Annotated[str, msgspec.Meta(min_length=1)]
    postal_code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    country: Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]


class LineItem(msgspec.Struct, frozen=True, kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    name: str
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    unit_price: Decimal


@eventwire.event(topic=DECLARED_TOPIC, key="order_id", type="order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    customer_id: str
    created_at: dt.datetime
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    total_price: Decimal
    shipping_address: Address
    line_items: list[LineItem]
    notes: str | None = None


def order(n: int) -> OrderPlaced:
    """The ``n``-th benchmark order; keys spread over all partitions."""
    items = [
        LineItem(
            sku=f"SKU-{n:08d}-{i}",
            name=f"Stainless steel widget, size {i + 1}",
            quantity=i + 1,
            unit_price=Decimal("19.99") + i,
        )
        for i in range(3)
    ]
    total = sum((item.unit_price * item.quantity for item in items), Decimal(0))
    return OrderPlaced(
        order_id=f"ord-{n:08d}",
        customer_id=f"cust-{n % 9973:06d}",
        created_at=_EPOCH + dt.timedelta(milliseconds=n),
        currency="EUR",
        total_price=total,
        shipping_address=Address(
            street=f"{n % 400 + 1} Harbour Road",
            city="Rotterdam",
            postal_code="3011 AA",
            country="NL",
        ),
        line_items=items,
        notes="Please leave the parcel at the reception desk if nobody answers the front door.",
    )


def orders(count: int) -> list[OrderPlaced]:
    """``count`` distinct orders, built once before any timed section."""
    return [order(n) for n in range(count)]
