from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from examples import order_extraction as example
from tests.examples.conftest import ExampleTopics


def _delivered(example_topics: ExampleTopics, count: int) -> list[example.OrderExtracted]:
    records = example_topics.consume("orders.extracted", count=count)
    assert len(records) == count
    for record in records:
        assert record.header("ce_type") == b"shop.order.extracted"
    messages = [msgspec.json.decode(r.value or b"", type=example.OrderExtracted) for r in records]
    assert all(r.key == m.order_id.encode() for r, m in zip(records, messages, strict=True))
    return sorted(messages, key=lambda m: m.order_number)


def test_the_fixture_orders_are_published_as_messages(
    example_topics: ExampleTopics, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main(example_topics.argv)
    assert "extracted and published 5 orders" in capsys.readouterr().out

    messages = _delivered(example_topics, 5)
    assert [m.order_number for m in messages] == ["#1001", "#1002", "#1004", "#1005", "#1006"]
    first = messages[0]
    assert first == example.OrderExtracted(
        order_id="5123456701",
        order_number="#1001",
        customer_id="7001",
        placed_at=dt.datetime(2026, 11, 27, 14, 15, tzinfo=dt.UTC),  # 09:15-05:00 in UTC
        currency="USD",
        line_items=[
            example.OrderLineMessage(sku="MUG-01", quantity=2, unit_price=Decimal("12.50")),
            example.OrderLineMessage(sku="TEA-GREEN", quantity=1, unit_price=Decimal("8.90")),
        ],
        shipping_price=Decimal("4.90"),
        total_price=Decimal("38.80"),
    )
    by_number = {m.order_number: m for m in messages}
    assert by_number["#1004"].total_price == Decimal("62.18")
    assert by_number["#1006"].shipping_price == Decimal("6.90")  # two shipping lines
    assert by_number["#1005"].customer_id is None
    # The money is exact on the wire: strings, not floats.
    raw = example_topics.consume("orders.extracted", count=5)
    assert all(b'"total_price":"' in (r.value or b"") for r in raw)


async def test_since_limits_what_is_extracted(example_topics: ExampleTopics) -> None:
    since = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    assert await example.run(example_topics.config(), since=since) == 3
    assert [m.order_number for m in _delivered(example_topics, 3)] == ["#1004", "#1005", "#1006"]


def test_the_gateway_refuses_a_payload_whose_total_disagrees(tmp_path: Path) -> None:
    payload = json.loads(example.FIXTURE.read_text())
    payload["orders"][0]["total_price"] = "38.70"
    broken = tmp_path / "orders.json"
    broken.write_text(json.dumps(payload))
    with pytest.raises(example.InvalidShopOrderError, match=r"#1001: total_price 38.70"):
        example.ShopifyOrderGateway(broken).fetch_orders()


def test_money_refuses_to_mix_currencies() -> None:
    with pytest.raises(example.CurrencyMismatchError):
        example.Money(Decimal("1.00"), "EUR") + example.Money(Decimal("1.00"), "USD")


async def test_undelivered_orders_fail_the_use_case() -> None:
    class FailingPublisher:
        async def publish_many(self, events: object) -> list[object]:
            messages = list(events)  # type: ignore[call-overload]
            return [RuntimeError("broker gone")] + [None] * (len(messages) - 1)

    use_case = example.ExtractOrdersUseCase(example.ShopifyOrderGateway(), FailingPublisher())  # type: ignore[arg-type]
    with pytest.raises(example.OrdersNotPublishedError, match="1 orders not published"):
        await use_case.execute()
