"""Unit testing a service that publishes events, with ``eventwire.testing.AsyncFakePublisher``.

What it shows:

* ``CheckoutService`` takes its publisher as an argument typed
  ``eventwire.AsyncPublisherProtocol``: production passes an ``AsyncPublisher``, tests pass an
  ``AsyncFakePublisher`` (or use the ``async_fake_publisher`` pytest fixture). No monkeypatching.
* The service's own tests (the ``test_*`` functions below, run by
  ``tests/examples/test_unit_testing_with_fake_publisher.py``): asserting on what was published
  (``assert_published``, ``published(...)`` with key, partition and headers); injecting a
  delivery failure (``fail_nth``) and an open circuit breaker (``open_breaker``) to test how the
  service degrades (it parks the order as pending instead of failing the checkout); a
  validation error surfacing before anything is published.
* The fake runs the real validation and encoding, so an invalid event fails in the unit test
  exactly as it would in production; ``tests/contract`` keeps the fake honest against a broker.

Run it: ``python -m examples.unit_testing_with_fake_publisher`` checks out two carts through
the fake and prints what was published; add ``--bootstrap-servers HOST:PORT`` to publish the
same checkouts to a real broker (topic ``orders``, after ``--topic-prefix``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
import pytest

import eventwire
from eventwire.testing import AsyncFakePublisher
from examples import _common

# -- the service ------------------------------------------------------------------------------


class OrderLine(msgspec.Struct, frozen=True, kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    unit_price: Decimal


@eventwire.event(topic="orders", key="order_id", type="shop.order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    customer_id: str
    lines: list[OrderLine]
    total: Decimal
    placed_at: dt.datetime


class CheckoutResult(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    status: Literal["placed", "pending"]
    offset: int | None = None


class CheckoutService:
    """Turns a cart into an ``OrderPlaced`` event. If the event cannot be delivered now
    (transient failure, open breaker), the order is parked in ``pending`` for a later retry
    rather than failing the customer's checkout."""

    def __init__(
        self,
        publisher: eventwire.AsyncPublisherProtocol,
        *,
        new_id: Callable[[], str] = lambda: f"ord-{uuid.uuid4().hex[:12]}",
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._publisher = publisher
        self._new_id = new_id
        self._clock = clock
        self.pending: list[OrderPlaced] = []

    async def checkout(self, customer_id: str, cart: Sequence[OrderLine]) -> CheckoutResult:
        total = sum((line.unit_price * line.quantity for line in cart), Decimal(0))
        event = OrderPlaced(
            order_id=self._new_id(),
            customer_id=customer_id,
            lines=list(cart),
            total=total,
            placed_at=self._clock(),
        )
        try:
            receipt = await self._publisher.publish(event, headers={"channel": "web"})
        except (eventwire.RetriablePublishError, eventwire.CircuitOpenError):
            self.pending.append(event)
            return CheckoutResult(order_id=event.order_id, status="pending")
        return CheckoutResult(order_id=event.order_id, status="placed", offset=receipt.offset)


# -- its unit tests, as a team would write them ---------------------------------------------------

NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
CART = [
    OrderLine(sku="MUG-01", quantity=2, unit_price=Decimal("9.50")),
    OrderLine(sku="TEE-XL", quantity=1, unit_price=Decimal("19.99")),
]


def service_with(publisher: eventwire.AsyncPublisherProtocol) -> CheckoutService:
    ids = iter(f"ord-{n}" for n in range(1, 1000))
    return CheckoutService(publisher, new_id=lambda: next(ids), clock=lambda: NOW)


@pytest.mark.asyncio
async def test_checkout_publishes_order_placed(async_fake_publisher: AsyncFakePublisher) -> None:
    result = await service_with(async_fake_publisher).checkout("cust-7", CART)

    assert result == CheckoutResult(order_id="ord-1", status="placed", offset=0)
    async_fake_publisher.assert_published(
        OrderPlaced(
            order_id="ord-1",
            customer_id="cust-7",
            lines=CART,
            total=Decimal("38.99"),
            placed_at=NOW,
        )
    )
    [record] = async_fake_publisher.published(OrderPlaced, key="ord-1")
    assert record.topic == "orders"
    assert record.header("ce_type") == b"shop.order.placed"
    assert record.header("channel") == b"web"


@pytest.mark.asyncio
async def test_orders_of_one_key_share_a_partition(
    async_fake_publisher: AsyncFakePublisher,
) -> None:
    service = CheckoutService(async_fake_publisher, new_id=lambda: "ord-same", clock=lambda: NOW)
    first = await service.checkout("cust-1", CART)
    second = await service.checkout("cust-1", CART)
    records = async_fake_publisher.published(key="ord-same")
    assert len({r.partition for r in records}) == 1
    assert (first.offset, second.offset) == (0, 1)


@pytest.mark.asyncio
async def test_a_failed_delivery_parks_the_order(async_fake_publisher: AsyncFakePublisher) -> None:
    service = service_with(async_fake_publisher)
    async_fake_publisher.fail_nth(1, code="NETWORK_EXCEPTION")

    assert (await service.checkout("cust-7", CART)).status == "pending"
    assert (await service.checkout("cust-8", CART)).status == "placed"
    assert [e.order_id for e in service.pending] == ["ord-1"]
    assert [e.order_id for e in async_fake_publisher.events(OrderPlaced)] == ["ord-2"]


@pytest.mark.asyncio
async def test_an_open_breaker_parks_orders(async_fake_publisher: AsyncFakePublisher) -> None:
    service = service_with(async_fake_publisher)
    async_fake_publisher.open_breaker()

    assert (await service.checkout("cust-7", CART)).status == "pending"
    async_fake_publisher.assert_published()  # nothing


@pytest.mark.asyncio
async def test_an_invalid_cart_is_refused_before_publishing(
    async_fake_publisher: AsyncFakePublisher,
) -> None:
    bad_cart = [OrderLine(sku="MUG-01", quantity=0, unit_price=Decimal("9.50"))]
    with pytest.raises(eventwire.EventValidationError) as caught:
        await service_with(async_fake_publisher).checkout("cust-7", bad_cart)
    assert caught.value.path == "$.lines[0].quantity"
    async_fake_publisher.assert_published()


# -- running it ---------------------------------------------------------------------------------


async def run(publisher: eventwire.AsyncPublisherProtocol) -> list[CheckoutResult]:
    """Check out two carts through ``publisher``."""
    service = CheckoutService(publisher)
    return [await service.checkout("cust-1", CART), await service.checkout("cust-2", CART[:1])]


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=_common.summary(__doc__))
    parser.add_argument("--bootstrap-servers", help="publish to this broker instead of the fake")
    parser.add_argument("--topic-prefix", default="", help="prefix every topic name on the broker")
    args = parser.parse_args(argv)
    if args.bootstrap_servers:
        config = eventwire.PublisherConfig(
            bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix
        )
        async with eventwire.AsyncPublisher(config) as publisher:
            results = await run(publisher)
    else:
        async with AsyncFakePublisher() as fake:
            results = await run(fake)
        for record in fake.published():
            print(f"{record.topic}[{record.partition}]@{record.offset} {record.value.decode()}")
    for result in results:
        print(f"{result.order_id}: {result.status}")


if __name__ == "__main__":
    asyncio.run(main())
