"""``eventwire schema export``: msgspec's JSON Schema plus the event's eventwire binding."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

import eventwire
from eventwire._cli import OK, main
from tests.events import OrderPlaced


def test_export_to_stdout(cli_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "export", "tests.events:OrderPlaced"]) == OK
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["x-eventwire"] == {
        "type": "order.placed",
        "version": 1,
        "topic": "orders",
        "key": "order_id",
    }
    generated = msgspec.json.schema(OrderPlaced)
    assert schema["$ref"] == generated["$ref"] == "#/$defs/OrderPlaced"
    assert schema["$defs"].keys() == generated["$defs"].keys()
    order = schema["$defs"]["OrderPlaced"]
    assert order["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
    assert order["properties"]["created_at"]["format"] == "date-time"
    assert "line_items" in order["required"]
    assert order["properties"]["total_price"]["format"] == "decimal"  # a string, exact
    assert order["properties"]["total_price"]["type"] == "string"
    line_item = schema["$defs"]["LineItem"]
    assert line_item["title"] == "LineItem"
    assert line_item["properties"]["quantity"]["minimum"] == 1
    assert order["properties"]["line_items"]["items"] == {"$ref": "#/$defs/LineItem"}


def test_export_to_a_file(
    cli_cwd: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "payment.schema.json"
    args = ["schema", "export", "tests.events:PaymentCaptured", "--output", str(target)]
    assert main([*args, "--indent", "0"]) == OK
    assert capsys.readouterr().out == ""
    text = target.read_text()
    assert text.count("\n") == 1  # one line with --indent 0
    schema = json.loads(text)
    assert schema["x-eventwire"]["version"] == 2
    assert schema["title"] == "PaymentCaptured"


@eventwire.event(topic="carts", key="cart_id", type="test.cart_opened", version=1)
class CartOpened(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    cart_id: str
    opened_by: str


def test_the_key_is_named_as_in_the_payload(
    cli_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "export", "tests.cli.test_schema:CartOpened"]) == OK
    schema = json.loads(capsys.readouterr().out)
    assert schema["x-eventwire"]["key"] == "cartId"
    assert "cartId" in schema["$defs"]["CartOpened"]["properties"]
