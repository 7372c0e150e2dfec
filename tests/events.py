"""Event schemas shared by the tests (an order with line items, a payment)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import msgspec

import eventwire


class LineItem(msgspec.Struct, frozen=True, kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    unit_price: Decimal


@eventwire.event(topic="orders", key="order_id", type="order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    customer_id: str
    created_at: dt.datetime
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    total_price: Decimal
    line_items: list[LineItem]
    notes: str | None = None


@eventwire.event(topic="payments", key="payment_id", type="payment.captured", version=2)
class PaymentCaptured(msgspec.Struct, frozen=True, kw_only=True):
    payment_id: str
    order_id: str
    amount: Decimal
    captured_at: dt.datetime


@eventwire.event(topic="blobs", key=None, type="blob.stored")
class BlobStored(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    data: str


NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def order(n: int, *, key: str | None = None, **changes: object) -> OrderPlaced:
    """A valid order (3 line items, Decimal prices); ``key`` groups orders on one key."""
    items = [
        LineItem(sku=f"SKU-{n:06d}-{i}", quantity=i + 1, unit_price=Decimal("19.99"))
        for i in range(3)
    ]
    fields: dict[str, object] = {
        "order_id": key if key is not None else f"ord-{n:06d}",
        "customer_id": f"cust-{n % 97:04d}",
        "created_at": NOW + dt.timedelta(seconds=n),
        "currency": "EUR",
        "total_price": Decimal("119.94"),
        "line_items": items,
        "notes": f"order number {n}",
    }
    fields.update(changes)
    return OrderPlaced(**fields)  # type: ignore[arg-type]


def payment(n: int) -> PaymentCaptured:
    return PaymentCaptured(
        payment_id=f"pay-{n:06d}",
        order_id=f"ord-{n:06d}",
        amount=Decimal("119.94"),
        captured_at=NOW,
    )
