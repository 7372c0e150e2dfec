"""Event classes the fuzz harnesses feed: every supported kind of field, nested and in
containers, an ``Any`` field, an ``UnboundedInt`` field, a key."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

import eventwire


class Status(enum.StrEnum):
    NEW = "new"
    DONE = "done"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Item(msgspec.Struct, frozen=True, kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    price: Decimal
    tags: frozenset[str] = frozenset()


@eventwire.event(topic="fuzz.orders", key="order_id", type="fuzz.order")
class Order(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    placed_at: dt.datetime
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    items: list[Item]
    total: Decimal
    ratio: float = 0.0
    share: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    status: Status = Status.NEW
    level: Level = Level.LOW
    kind: Literal["web", "shop", 3] = "web"
    day: dt.date | None = None
    ident: uuid.UUID | None = None
    blob: bytes = b""
    counts: dict[str, int] = {}
    either: int | str = 0
    big: eventwire.UnboundedInt = 0
    extra: Any = None


@eventwire.event(topic="fuzz.counters", key="id", type="fuzz.counter")
class Counter(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    values: tuple[int, ...] = ()
    nested: list[list[dict[str, float]]] = []
    maybe: Item | None = None


EVENTS: tuple[type[Any], ...] = (Order, Counter)


#: One valid event of each class: the object path replaces some of its fields.
VALID: tuple[Any, ...] = (
    Order(
        order_id="ord-1",
        placed_at=dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC),
        currency="EUR",
        items=[Item(sku="A-1", quantity=2, price=Decimal("9.90"), tags=frozenset({"x"}))],
        total=Decimal("19.80"),
        day=dt.date(2026, 1, 1),
        ident=uuid.UUID(int=1),
        counts={"a": 1},
        extra={"k": [1, 2.5, None, "s"]},
    ),
    Counter(id=7, values=(1, 2), nested=[[{"x": 1.5}]], maybe=None),
)
