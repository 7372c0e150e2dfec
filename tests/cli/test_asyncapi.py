"""``eventwire schema asyncapi MODULE...``: an AsyncAPI 3.0 document that validates against the
official AsyncAPI 3.0 JSON Schema (vendored in tests/data/asyncapi), for the examples' events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from eventwire._cli import FAILURE, OK, main
from tests.cli.conftest import ROOT, assert_one_line_error, run_cli

SCHEMA = ROOT / "tests" / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json"
EXAMPLES = sorted(
    f"examples.{path.stem}"
    for path in (ROOT / "examples").glob("*.py")
    if not path.stem.startswith("_") and "@eventwire.event(" in path.read_text()
)


@cache
def validator() -> jsonschema.Draft7Validator:
    """The official schema; its definitions carry their own ``$id``s, so every reference
    resolves inside the file (nothing is fetched)."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: Any, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node = document
    for token in ref[2:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def document_of(*args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["schema", "asyncapi", *args]) == OK
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_the_examples_events_validate_against_asyncapi_3(
    cli_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(EXAMPLES) >= 10
    document = document_of(*EXAMPLES, "--server", "localhost:9092", capsys=capsys)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]
    assert errors == []
    for ref in refs(document):  # the schema does not check that references resolve
        resolve(document, ref)
    topics = {channel["address"] for channel in document["channels"].values()}
    assert {"orders", "payments", "shipments", "readings", "orders.extracted"} <= topics
    assert document["servers"] == {"kafka1": {"host": "localhost:9092", "protocol": "kafka"}}


def test_channels_messages_headers_and_key(
    cli_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = document_of("examples.multi_topic_publisher", capsys=capsys)
    assert document["asyncapi"] == "3.0.0"
    assert set(document["channels"]) == {"orders", "payments", "shipments"}
    shipments = document["channels"]["shipments"]
    assert shipments["address"] == "shipments"
    assert shipments["bindings"] == {"kafka": {"topic": "shipments", "bindingVersion": "0.5.0"}}
    assert shipments["messages"] == {"OrderShipped": {"$ref": "#/components/messages/OrderShipped"}}
    assert document["operations"]["send_shipments"] == {
        "action": "send",
        "channel": {"$ref": "#/channels/shipments"},
        "summary": "Publish to the 'shipments' topic.",
        "messages": [{"$ref": "#/channels/shipments/messages/OrderShipped"}],
    }
    message = document["components"]["messages"]["OrderShipped"]
    assert message["name"] == "shop.order.shipped"
    assert message["contentType"] == "application/json"
    headers = message["headers"]["properties"]
    assert headers["ce_type"] == {"type": "string", "const": "shop.order.shipped"}
    assert headers["ce_eventversion"]["const"] == "2"
    assert headers["ce_specversion"] == {"type": "string", "const": "1.0"}
    assert set(message["headers"]["required"]) == {
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_eventversion",
        "content-type",
    }
    key = message["bindings"]["kafka"]["key"]
    assert key["type"] == "string"
    assert "'order_id' field as UTF-8 text" in key["description"]
    assert message["payload"] == {"$ref": "#/components/schemas/OrderShipped"}
    payload = document["components"]["schemas"]["OrderShipped"]
    assert payload["properties"]["shipped_at"] == {"type": "string", "format": "date-time"}
    assert payload["required"] == ["order_id", "carrier", "tracking_number", "shipped_at"]


def test_classes_of_the_same_name_in_two_modules_are_told_apart(
    cli_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = document_of(
        "examples.basic_order_publisher", "examples.multi_topic_publisher", capsys=capsys
    )
    orders = document["channels"]["orders"]["messages"]
    assert set(orders) == {
        "examples.basic_order_publisher.OrderPlaced",
        "examples.multi_topic_publisher.OrderPlaced",
    }
    schemas = document["components"]["schemas"]
    assert "LineItem" in schemas  # only basic_order_publisher has one: its own name
    assert validator().is_valid(document)


def test_yaml_and_one_class(
    cli_cwd: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "asyncapi.yaml"
    args = ["schema", "asyncapi", "tests.events:PaymentCaptured", "--yaml", "--output", str(target)]
    assert main([*args, "--title", "Payments", "--app-version", "2.1.0"]) == OK
    assert capsys.readouterr().out == ""
    document = yaml.safe_load(target.read_text())
    assert document["info"]["title"] == "Payments"
    assert document["info"]["version"] == "2.1.0"
    assert list(document["channels"]) == ["payments"]
    assert validator().is_valid(document)


def test_msgpack_publishers_are_described_as_such(
    cli_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = document_of("tests.events:BlobStored", "--encoding", "msgpack", capsys=capsys)
    assert document["defaultContentType"] == "application/msgpack"
    message = document["components"]["messages"]["BlobStored"]
    assert message["headers"]["properties"]["content-type"]["const"] == "application/msgpack"
    assert "key" not in message["bindings"]["kafka"]  # declared with key=None
    assert validator().is_valid(document)


def test_a_module_without_events_fails_in_one_line() -> None:
    result = run_cli("schema", "asyncapi", "tests.cli.conftest")
    assert result.returncode == FAILURE
    assert_one_line_error(result, "module 'tests.cli.conftest' holds no event class")


def test_the_validator_catches_a_broken_document(
    cli_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The vendored schema is strict enough to fail a wrong binding or a missing field."""
    document = document_of("examples.multi_topic_publisher", capsys=capsys)
    document["channels"]["orders"]["bindings"]["kafka"]["partitionz"] = 3
    del document["info"]["version"]
    assert len(list(validator().iter_errors(document))) >= 2
