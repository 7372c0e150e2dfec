"""``schema check``'s rules, one kind of change per row, with its verdict in every mode.

Each row declares an event class twice (OLD and NEW), exports both schemas as ``eventwire
schema export`` does, and checks the verdict of backward, forward and full compatibility and
the Schema Registry difference kind (and JSON path) that decides it. The rules are Confluent
Schema Registry's for JSON Schema (``docs/schemas.md``): a msgspec Struct is an *open* content
model unless it forbids unknown fields (``additionalProperties: false``, *closed*).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import pytest

import eventwire
from eventwire._schema_compat import (
    MODES,
    SchemaInputError,
    binding_notes,
    check_compatibility,
)
from eventwire._schema_export import event_schema

Fields = list[tuple[str, Any] | tuple[str, Any, Any]]


def exported(fields: Fields, *, closed: bool = False, version: int = 1, doc: str = "") -> Any:
    """The schema ``schema export`` writes for an event class with these fields."""
    cls = msgspec.defstruct(
        "Event",
        fields,
        frozen=True,
        kw_only=True,
        forbid_unknown_fields=closed,
        namespace={"__doc__": doc} if doc else None,
    )
    return event_schema(
        eventwire.event(topic="t", key=None, type="test.compat", version=version)(cls)
    )


def nested(fields: Fields, *, closed: bool = False) -> type[Any]:
    return msgspec.defstruct(
        "Address", fields, frozen=True, kw_only=True, forbid_unknown_fields=closed
    )


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


class TierPlus(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"
    BRONZE = "bronze"


class Node(msgspec.Struct, frozen=True):
    name: str
    children: list[Node] = []


@dataclass(frozen=True)
class Row:
    """OLD and NEW, the verdict per mode, and the breaking kinds expected at their paths."""

    change: str
    old: Any
    new: Any
    backward: bool
    forward: bool
    full: bool
    breaks: tuple[tuple[str, str, str], ...] = ()  # (direction, kind, path)


ID: Fields = [("order_id", str)]

ROWS = [
    Row(
        "field added with a default (open model)",
        exported(ID),
        exported([*ID, ("note", str, "")]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", "#/properties/note"),),
    ),
    Row(
        "field added with a default (closed model)",
        exported(ID, closed=True),
        exported([*ID, ("note", str, "")], closed=True),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/note"),),
    ),
    Row(
        "field added without a default (open model)",
        exported(ID),
        exported([*ID, ("note", str)]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", "#/properties/note"),),
    ),
    Row(
        "field added without a default (closed model)",
        exported(ID, closed=True),
        exported([*ID, ("note", str)], closed=True),
        backward=False,
        forward=False,
        full=False,
        breaks=(
            ("backward", "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", "#/properties/note"),
            ("forward", "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/note"),
        ),
    ),
    Row(
        "field removed (open model)",
        exported([*ID, ("note", str)]),
        exported(ID),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", "#/properties/note"),),
    ),
    Row(
        "required field removed (closed model)",
        exported([*ID, ("note", str)], closed=True),
        exported(ID, closed=True),
        backward=False,
        forward=False,
        full=False,
        breaks=(
            ("backward", "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/note"),
            ("forward", "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", "#/properties/note"),
        ),
    ),
    Row(
        "optional field removed (closed model)",
        exported([*ID, ("note", str, "")], closed=True),
        exported(ID, closed=True),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/note"),),
    ),
    Row(
        "type widened: int to float",
        exported([*ID, ("amount", int)]),
        exported([*ID, ("amount", float)]),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "TYPE_NARROWED", "#/properties/amount"),),
    ),
    Row(
        "type narrowed: float to int",
        exported([*ID, ("amount", float)]),
        exported([*ID, ("amount", int)]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "TYPE_NARROWED", "#/properties/amount"),),
    ),
    Row(
        "type changed: str to int",
        exported([*ID, ("amount", str)]),
        exported([*ID, ("amount", int)]),
        backward=False,
        forward=False,
        full=False,
        breaks=(
            ("backward", "TYPE_CHANGED", "#/properties/amount"),
            ("forward", "TYPE_CHANGED", "#/properties/amount"),
        ),
    ),
    Row(
        "str to datetime (a format added)",
        exported([*ID, ("at", str)]),
        exported([*ID, ("at", dt.datetime)]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "FORMAT_ADDED", "#/properties/at/format"),),
    ),
    Row(
        "str to Decimal money (a pattern added)",
        exported([*ID, ("total", str)]),
        exported([*ID, ("total", Decimal)]),
        backward=False,
        forward=True,
        full=False,
        breaks=(
            ("backward", "PATTERN_ADDED", "#/properties/total/pattern"),
            ("backward", "FORMAT_ADDED", "#/properties/total/format"),
        ),
    ),
    Row(
        "enum value added",
        exported([*ID, ("tier", Tier)]),
        exported([*ID, ("tier", TierPlus)]),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "ENUM_ARRAY_NARROWED", "#/properties/tier/enum"),),
    ),
    Row(
        "enum value removed",
        exported([*ID, ("tier", TierPlus)]),
        exported([*ID, ("tier", Tier)]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "ENUM_ARRAY_NARROWED", "#/properties/tier/enum"),),
    ),
    Row(
        "field made optional (a default added)",
        exported([*ID, ("note", str)]),
        exported([*ID, ("note", str, "")]),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "REQUIRED_ATTRIBUTE_ADDED", "#/required/note"),),
    ),
    Row(
        "field made required (its default removed)",
        exported([*ID, ("note", str, "")]),
        exported([*ID, ("note", str)]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "REQUIRED_ATTRIBUTE_ADDED", "#/required/note"),),
    ),
    Row(
        "made nullable: int to int | None",
        exported([*ID, ("count", int, 0)]),
        exported([*ID, ("count", int | None, 0)]),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "TYPE_CHANGED", "#/properties/count"),),
    ),
    Row(
        "made non-nullable: int | None to int",
        exported([*ID, ("count", int | None, None)]),
        exported([*ID, ("count", int, 0)]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "TYPE_CHANGED", "#/properties/count"),),
    ),
    Row(
        "union alternative added: int | str to int | str | bool",
        exported([*ID, ("ref", int | str)]),
        exported([*ID, ("ref", int | str | bool)]),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "SUM_TYPE_NARROWED", "#/properties/ref"),),
    ),
    Row(
        "unknown fields forbidden (additionalProperties false added)",
        exported(ID),
        exported(ID, closed=True),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "ADDITIONAL_PROPERTIES_REMOVED", "#/additionalProperties"),),
    ),
    Row(
        "unknown fields allowed again (additionalProperties false removed)",
        exported(ID, closed=True),
        exported(ID),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "ADDITIONAL_PROPERTIES_REMOVED", "#/additionalProperties"),),
    ),
    Row(
        "map values widened: dict[str, int] to dict[str, float]",
        exported([*ID, ("counts", dict[str, int])]),
        exported([*ID, ("counts", dict[str, float])]),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "TYPE_NARROWED", "#/properties/counts/additionalProperties"),),
    ),
    Row(
        "nested struct: field added with a default (open model)",
        exported([*ID, ("address", nested([("city", str)]))]),
        exported([*ID, ("address", nested([("city", str), ("zip", str, "")]))]),
        backward=False,
        forward=True,
        full=False,
        breaks=(
            (
                "backward",
                "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                "#/properties/address/properties/zip",
            ),
        ),
    ),
    Row(
        "nested struct: field added with a default (closed model)",
        exported([*ID, ("address", nested([("city", str)], closed=True))]),
        exported([*ID, ("address", nested([("city", str), ("zip", str, "")], closed=True))]),
        backward=True,
        forward=False,
        full=False,
        breaks=(
            (
                "forward",
                "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                "#/properties/address/properties/zip",
            ),
        ),
    ),
    Row(
        "nested struct: field type changed",
        exported([*ID, ("address", nested([("city", str)]))]),
        exported([*ID, ("address", nested([("city", int)]))]),
        backward=False,
        forward=False,
        full=False,
        breaks=(
            ("backward", "TYPE_CHANGED", "#/properties/address/properties/city"),
            ("forward", "TYPE_CHANGED", "#/properties/address/properties/city"),
        ),
    ),
    Row(
        "list items widened: list[int] to list[float]",
        exported([*ID, ("sizes", list[int])]),
        exported([*ID, ("sizes", list[float])]),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "TYPE_NARROWED", "#/properties/sizes/items"),),
    ),
    Row(
        "list bound tightened: max_length 10 to 5",
        exported([*ID, ("tags", Annotated[list[str], msgspec.Meta(max_length=10)])]),
        exported([*ID, ("tags", Annotated[list[str], msgspec.Meta(max_length=5)])]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "MAX_ITEMS_DECREASED", "#/properties/tags/maxItems"),),
    ),
    Row(
        "tuple item added: tuple[int, str] to tuple[int, str, bool]",
        exported([*ID, ("pair", tuple[int, str])]),
        exported([*ID, ("pair", tuple[int, str, bool])]),
        backward=False,
        forward=False,
        full=False,
        breaks=(
            ("backward", "MIN_ITEMS_INCREASED", "#/properties/pair/minItems"),
            (
                "forward",
                "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                "#/properties/pair/prefixItems/2",
            ),
            ("forward", "MAX_ITEMS_DECREASED", "#/properties/pair/maxItems"),
        ),
    ),
    Row(
        "string bound loosened: min_length 3 to 1",
        exported([*ID, ("sku", Annotated[str, msgspec.Meta(min_length=3)])]),
        exported([*ID, ("sku", Annotated[str, msgspec.Meta(min_length=1)])]),
        backward=True,
        forward=False,
        full=False,
        breaks=(("forward", "MIN_LENGTH_INCREASED", "#/properties/sku/minLength"),),
    ),
    Row(
        "numeric bound raised: ge=1 to ge=5",
        exported([*ID, ("qty", Annotated[int, msgspec.Meta(ge=1)])]),
        exported([*ID, ("qty", Annotated[int, msgspec.Meta(ge=5)])]),
        backward=False,
        forward=True,
        full=False,
        breaks=(("backward", "MINIMUM_INCREASED", "#/properties/qty/minimum"),),
    ),
    Row(
        "pattern changed",
        exported([*ID, ("code", Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")])]),
        exported([*ID, ("code", Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")])]),
        backward=False,
        forward=False,
        full=False,
        breaks=(
            ("backward", "PATTERN_CHANGED", "#/properties/code/pattern"),
            ("forward", "PATTERN_CHANGED", "#/properties/code/pattern"),
        ),
    ),
    Row(
        "default value changed",
        exported([*ID, ("note", str, "a")]),
        exported([*ID, ("note", str, "b")]),
        backward=True,
        forward=True,
        full=True,
    ),
    Row(
        "description changed (the class docstring)",
        exported(ID, doc="An order."),
        exported(ID, doc="An order was placed."),
        backward=True,
        forward=True,
        full=True,
    ),
    Row(
        "recursive schema (not an event: a schema from elsewhere), unchanged",
        msgspec.json.schema(Node),
        msgspec.json.schema(Node),
        backward=True,
        forward=True,
        full=True,
    ),
    Row(
        "property covered by a partially open model (patternProperties)",
        {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "patternProperties": {"^x_": {"type": "string"}},
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"id": {"type": "string"}, "x_note": {"type": "string"}},
            "patternProperties": {"^x_": {"type": "string"}},
            "additionalProperties": False,
        },
        backward=True,
        forward=True,
        full=True,
    ),
    Row(
        "property not covered by a partially open model",
        {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "additionalProperties": {"type": "string"},
        },
        {
            "type": "object",
            "properties": {"id": {"type": "string"}, "n": {"type": "integer"}},
            "additionalProperties": {"type": "string"},
        },
        backward=False,
        forward=False,
        full=False,
        breaks=(
            ("backward", "TYPE_CHANGED", "#/properties/n"),
            (
                "backward",
                "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                "#/properties/n",
            ),
            ("forward", "TYPE_CHANGED", "#/properties/n"),
            (
                "forward",
                "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                "#/properties/n",
            ),
        ),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.change for row in ROWS])
def test_verdict_of_each_kind_of_change_in_each_mode(row: Row) -> None:
    verdicts = {mode: check_compatibility(row.old, row.new, mode).compatible for mode in MODES}
    assert verdicts == {"backward": row.backward, "forward": row.forward, "full": row.full}
    found = {
        (change.direction, change.kind, change.path)
        for change in check_compatibility(row.old, row.new, "full").breaking
    }
    assert found == set(row.breaks)


def test_the_table_covers_twenty_kinds_of_change() -> None:
    assert len({row.change for row in ROWS}) >= 20


def test_identical_schemas_have_no_changes() -> None:
    schema = exported([*ID, ("address", nested([("city", str)])), ("tags", list[str])])
    report = check_compatibility(schema, schema, "full")
    assert report.changes == ()


def test_each_break_says_which_schema_reads_and_which_wrote() -> None:
    report = check_compatibility(exported(ID), exported([*ID, ("n", int)]), "full")
    [change] = report.breaking
    assert change.describe() == (
        "NEW declares a property that OLD lacks; OLD is an open content model, so data written"
        " with it may carry that property with any value"
    )


def test_a_new_version_that_breaks_the_previous_one_is_named() -> None:
    old, new = exported([*ID, ("n", str)]), exported([*ID, ("n", int)], version=2)
    report = check_compatibility(old, new, "backward")
    assert binding_notes(old, new, report) == [
        "version 2 of 'test.compat' breaks version 1 (backward): its consumers must tell the"
        " versions apart (the ce_eventversion header) or read another topic"
    ]
    same = exported([*ID, ("n", int)])
    assert binding_notes(old, same, check_compatibility(old, same, "backward")) == [
        "version 1 of 'test.compat' changed incompatibly (backward): keep the change"
        " compatible, or declare it as version=2"
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ([], {}, "OLD is not a JSON Schema (an object or a boolean)"),
        ({"$ref": "#/$defs/Missing"}, {}, "$ref '#/$defs/Missing' does not resolve"),
        ({"$ref": "other.json#/X"}, {}, "points outside the file"),
        ({"type": "strin"}, {"type": "string"}, "unknown type 'strin'"),
        ({"$ref": "#"}, {}, "a loop of references"),
    ],
)
def test_what_cannot_be_compared_is_refused(old: Any, new: Any, message: str) -> None:
    with pytest.raises(SchemaInputError, match=re.escape(message)):
        check_compatibility(old, new, "full")
