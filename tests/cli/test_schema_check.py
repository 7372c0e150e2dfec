"""``eventwire schema check OLD NEW --mode``: the verdict, each break with its path, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventwire._cli import FAILURE, OK, USAGE, main
from tests.cli.conftest import assert_one_line_error, run_cli


def export(reference: str, target: Path) -> dict[str, Any]:
    assert main(["schema", "export", reference, "--output", str(target)]) == OK
    schema: dict[str, Any] = json.loads(target.read_text())
    return schema


@pytest.fixture
def order_v1(cli_cwd: Path, tmp_path: Path) -> Path:
    target = tmp_path / "order.placed.v1.schema.json"
    export("tests.events:OrderPlaced", target)
    return target


def changed(source: Path, target: Path, change: Any) -> Path:
    schema = json.loads(source.read_text())
    change(schema)
    target.write_text(json.dumps(schema, indent=2))
    return target


def test_an_unchanged_schema_is_compatible(
    order_v1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "check", str(order_v1), str(order_v1), "--mode", "full"]) == OK
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"OLD {order_v1} (order.placed version 1)",
        f"NEW {order_v1} (order.placed version 1)",
        "backward (NEW reads what OLD wrote): compatible",
        "forward (OLD reads what NEW writes): compatible",
        "compatible (full): 0 changes, none breaking",
    ]


def test_each_break_is_printed_with_its_path_and_exits_1(
    order_v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def v2(schema: dict[str, Any]) -> None:
        schema["x-eventwire"]["version"] = 2
        item = schema["$defs"]["LineItem"]["properties"]
        item["quantity"] = {"type": "number", "minimum": 1}  # widened: backward-compatible
        schema["$defs"]["OrderPlaced"]["properties"]["total_price"] = {"type": "number"}

    new = changed(order_v1, tmp_path / "v2.json", v2)
    assert main(["schema", "check", str(order_v1), str(new), "--mode", "full"]) == FAILURE
    out = capsys.readouterr().out.splitlines()
    assert out[2:] == [
        "backward (NEW reads what OLD wrote): 1 breaking change",
        "  #/properties/total_price: TYPE_CHANGED: the type differs between OLD and NEW",
        "forward (OLD reads what NEW writes): 2 breaking changes",
        "  #/properties/total_price: TYPE_CHANGED: the type differs between NEW and OLD",
        "  #/properties/line_items/items/properties/quantity: TYPE_NARROWED: OLD accepts a"
        " narrower type than NEW (e.g. number to integer)",
        "note: version 2 of 'order.placed' breaks version 1 (full): its consumers must tell the"
        " versions apart (the ce_eventversion header) or read another topic",
        "NOT compatible (full): 3 breaking",
    ]
    # the default mode is backward, Schema Registry's default
    assert main(["schema", "check", str(order_v1), str(new)]) == FAILURE
    assert "backward (NEW reads what OLD wrote): 1 breaking change" in capsys.readouterr().out


def test_json_output(order_v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def add_note(schema: dict[str, Any]) -> None:
        schema["$defs"]["OrderPlaced"]["properties"]["gift"] = {"type": "boolean"}

    new = changed(order_v1, tmp_path / "gift.json", add_note)
    assert main(["schema", "check", str(order_v1), str(new), "--mode", "forward", "--json"]) == OK
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["compatible"] is True
    assert verdict["breaking"] == []
    assert verdict["changes"] == [
        {
            "direction": "forward",
            "path": "#/properties/gift",
            "kind": "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
            "breaking": False,
        }
    ]
    assert main(["schema", "check", str(order_v1), str(new), "--json"]) == FAILURE
    verdict = json.loads(capsys.readouterr().out)
    assert [(b["path"], b["kind"]) for b in verdict["breaking"]] == [
        ("#/properties/gift", "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL")
    ]
    assert verdict["notes"] == [
        "version 1 of 'order.placed' changed incompatibly (backward): keep the change"
        " compatible, or declare it as version=2"
    ]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read NEW"),
        ("{not json", "is not JSON: Expecting property name enclosed in double quotes (line 1"),
        ("[1, 2]", "is not a JSON Schema (an object or a boolean)"),
        ('{"$ref": "#/$defs/Gone"}', "$ref '#/$defs/Gone' does not resolve"),
    ],
)
def test_bad_input_is_one_line_and_exits_2(
    order_v1: Path, tmp_path: Path, content: str | None, fragment: str
) -> None:
    new = tmp_path / "new.json"
    if content is not None:
        new.write_text(content)
    result = run_cli("schema", "check", str(order_v1), str(new))
    assert result.returncode == USAGE
    assert_one_line_error(result, fragment)
    assert result.stdout == ""


def test_an_unknown_mode_is_a_usage_error(order_v1: Path) -> None:
    result = run_cli("schema", "check", str(order_v1), str(order_v1), "--mode", "sideways")
    assert result.returncode == USAGE
    assert_one_line_error(result, "invalid choice: 'sideways'")
