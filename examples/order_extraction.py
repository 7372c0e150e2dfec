"""Order extraction: fetch orders from a shop's API, translate them, publish them as events.

What it shows, in the layers a service would have:

* **domain** — an ``Order`` aggregate with ``LineItem``s and a ``Money`` value object
  (``Decimal`` amount + currency; adding two currencies is an error). The aggregate checks its
  own invariants (at least one line, one currency) and computes its total;
* **gateway** — ``ShopifyOrderGateway`` reads the shop's order payloads (here a local JSON
  fixture, ``examples/data/shopify_orders.json``, standing in for the Shopify Admin API) and
  translates them into domain orders at the boundary: Shopify's shape (integer ids, ``name``,
  prices as strings, offsets in timestamps, test orders) never leaks inward, and a payload
  whose ``total_price`` disagrees with its lines is refused;
* **anti-corruption translator** — ``OrderMessageTranslator`` maps a domain ``Order`` to the
  published message schema ``OrderExtracted`` (an ``@eventwire.event``): the message is a
  contract with consumers and evolves on its own version;
* **use case** — ``ExtractOrdersUseCase.execute()`` fetches, translates, publishes with
  ``publish_many``, waits until every event is acknowledged (the flush) and returns the count;
  it fails loudly if any order was not delivered.

Run it: ``python -m examples.order_extraction --bootstrap-servers HOST:PORT
[--orders-file examples/data/shopify_orders.json] [--since 2026-11-28T00:00:00Z]``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Protocol

import msgspec

import eventwire
from examples import _common

FIXTURE = Path(__file__).parent / "data" / "shopify_orders.json"

# -- domain ------------------------------------------------------------------------------------


class CurrencyMismatchError(ValueError):
    """Two amounts in different currencies were combined."""


@dataclass(frozen=True)
class Money:
    """An exact amount in one currency (ISO 4217 code)."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")
        if not self.amount.is_finite():
            raise ValueError(f"not a finite amount: {self.amount}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal("0.00"), currency)

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)


@dataclass(frozen=True)
class OrderLine:
    sku: str
    title: str
    quantity: int
    unit_price: Money

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValueError(f"line {self.sku}: quantity must be at least 1, got {self.quantity}")

    @property
    def total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True)
class Order:
    """The aggregate: what was ordered, by whom, when, for how much."""

    order_id: str
    number: str
    customer_id: str | None
    placed_at: dt.datetime
    lines: tuple[OrderLine, ...]
    shipping: Money

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError(f"order {self.number} has no lines")
        if self.placed_at.tzinfo is None:
            raise ValueError(f"order {self.number}: placed_at must be timezone-aware")
        currencies = {line.unit_price.currency for line in self.lines} | {self.shipping.currency}
        if len(currencies) != 1:
            raise CurrencyMismatchError(f"order {self.number} mixes {sorted(currencies)}")

    @property
    def currency(self) -> str:
        return self.shipping.currency

    @property
    def total(self) -> Money:
        total = self.shipping
        for line in self.lines:
            total += line.total
        return total


# -- gateway: the shop's API, translated at the boundary ---------------------------------------


class OrderGateway(Protocol):
    def fetch_orders(self, *, since: dt.datetime | None = None) -> list[Order]: ...


class InvalidShopOrderError(ValueError):
    """A payload from the shop that cannot be a domain order."""


class ShopifyOrderGateway:
    """Orders from Shopify's Admin API ``orders.json`` payload (here read from a file).

    Test orders are skipped; orders are returned oldest first.
    """

    def __init__(self, source: Path = FIXTURE) -> None:
        self._source = source

    def fetch_orders(self, *, since: dt.datetime | None = None) -> list[Order]:
        payload = json.loads(self._source.read_text(encoding="utf-8"))
        orders = [self._to_domain(raw) for raw in payload["orders"] if not raw.get("test", False)]
        if since is not None:
            orders = [order for order in orders if order.placed_at >= since]
        return sorted(orders, key=lambda order: order.placed_at)

    @staticmethod
    def _to_domain(raw: dict[str, Any]) -> Order:
        currency = raw["currency"]
        shipping = Money.zero(currency)
        for shipping_line in raw.get("shipping_lines") or []:
            shipping += Money(Decimal(shipping_line["price"]), currency)
        customer = raw.get("customer")
        order = Order(
            order_id=str(raw["id"]),
            number=raw["name"],
            customer_id=str(customer["id"]) if customer else None,
            placed_at=dt.datetime.fromisoformat(raw["created_at"]),
            lines=tuple(
                OrderLine(
                    sku=item["sku"],
                    title=item["title"],
                    quantity=item["quantity"],
                    unit_price=Money(Decimal(item["price"]), currency),
                )
                for item in raw["line_items"]
            ),
            shipping=shipping,
        )
        stated = Money(Decimal(raw["total_price"]), currency)
        if stated != order.total:
            raise InvalidShopOrderError(
                f"order {order.number}: total_price {stated.amount} != lines + shipping"
                f" {order.total.amount}"
            )
        return order


# -- the published message schema and the anti-corruption translator ---------------------------


class OrderLineMessage(msgspec.Struct, frozen=True, kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    unit_price: Decimal


@eventwire.event(topic="orders.extracted", key="order_id", type="shop.order.extracted", version=1)
class OrderExtracted(msgspec.Struct, frozen=True, kw_only=True):
    """An order taken from the shop, as consumers see it (amounts exact, times in UTC)."""

    order_id: str
    order_number: str
    customer_id: str | None
    placed_at: dt.datetime
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    line_items: Annotated[list[OrderLineMessage], msgspec.Meta(min_length=1)]
    shipping_price: Decimal
    total_price: Decimal
    source: str = "shopify"


class OrderMessageTranslator:
    """Domain ``Order`` → ``OrderExtracted``; the only place that knows both shapes."""

    def to_message(self, order: Order) -> OrderExtracted:
        return OrderExtracted(
            order_id=order.order_id,
            order_number=order.number,
            customer_id=order.customer_id,
            placed_at=order.placed_at.astimezone(dt.UTC),
            currency=order.currency,
            line_items=[
                OrderLineMessage(
                    sku=line.sku, quantity=line.quantity, unit_price=line.unit_price.amount
                )
                for line in order.lines
            ],
            shipping_price=order.shipping.amount,
            total_price=order.total.amount,
        )


# -- use case ----------------------------------------------------------------------------------


class EventPublisher(Protocol):
    """What the use case needs from a publisher (``AsyncPublisher`` or a fake)."""

    async def publish_many(self, events: Iterable[Any]) -> list[eventwire.PublishOutcome]: ...


class OrdersNotPublishedError(RuntimeError):
    """Some orders were not delivered; the others were."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = failures
        first = next(iter(failures.items()))
        super().__init__(f"{len(failures)} orders not published (first {first[0]}: {first[1]})")


class ExtractOrdersUseCase:
    def __init__(
        self,
        gateway: OrderGateway,
        publisher: EventPublisher,
        translator: OrderMessageTranslator | None = None,
    ) -> None:
        self._gateway = gateway
        self._publisher = publisher
        self._translator = translator or OrderMessageTranslator()

    async def execute(self, *, since: dt.datetime | None = None) -> int:
        """Publish every order placed since ``since``; returns how many were delivered.

        ``publish_many`` returns once every event is acknowledged by Kafka or has failed,
        so when this returns the orders are durable (the flush is part of the call).

        Raises:
            OrdersNotPublishedError: some orders were not delivered (the rest were).
        """
        messages = [self._translator.to_message(o) for o in self._gateway.fetch_orders(since=since)]
        outcomes = await self._publisher.publish_many(messages)
        failures = {
            message.order_number: outcome
            for message, outcome in zip(messages, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        }
        if failures:
            raise OrdersNotPublishedError(failures)
        return len(messages)


# -- wiring ------------------------------------------------------------------------------------


async def run(
    config: eventwire.PublisherConfig, *, source: Path = FIXTURE, since: dt.datetime | None = None
) -> int:
    async with eventwire.AsyncPublisher(config) as publisher:
        use_case = ExtractOrdersUseCase(ShopifyOrderGateway(source), publisher)
        count = await use_case.execute(since=since)
    print(f"extracted and published {count} orders")
    return count


def main(argv: Sequence[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--orders-file", type=Path, default=FIXTURE, help="Shopify orders JSON")
    parser.add_argument(
        "--since", type=dt.datetime.fromisoformat, default=None, help="ISO time with offset"
    )
    args = parser.parse_args(argv)
    asyncio.run(run(_common.config(args), source=args.orders_file, since=args.since))


if __name__ == "__main__":
    main()
