"""Reading schemas: what a schema is, its parts, its limits (as Schema Registry reads them)."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from typing import Any

from eventwire._schema_compat.rules import (
    _ANNOTATIONS,
    _ARRAY_WORDS,
    _COMBINATORS,
    _KNOWN_TYPES,
    _NUMBER_WORDS,
    _OBJECT_WORDS,
    _STRING_WORDS,
    SchemaInputError,
)


def _kind(schema: Any) -> str:
    """What a (resolved) schema is, as Schema Registry's schema classes tell them apart."""
    if schema is True:
        return "empty"
    if schema is False:
        return "false"
    if not isinstance(schema, dict):
        raise SchemaInputError(f"not a schema: {json.dumps(schema)[:80]}")
    if any(word in schema for word in _COMBINATORS):
        return "combined"
    if "enum" in schema:
        if not isinstance(schema["enum"], list):
            raise SchemaInputError("'enum' must be an array")
        return "enum"
    if "const" in schema:
        return "const"
    if "not" in schema:
        return "not"
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = declared[0] if declared else None
    if declared is not None:
        if declared not in _KNOWN_TYPES:
            raise SchemaInputError(f"unknown type {declared!r}")
        return "number" if declared == "integer" else str(declared)
    words = schema.keys() - _ANNOTATIONS
    for kind, vocabulary in (
        ("object", _OBJECT_WORDS),
        ("array", _ARRAY_WORDS),
        ("string", _STRING_WORDS),
        ("number", _NUMBER_WORDS),
    ):
        if words & vocabulary:
            return kind
    return "empty"


def _combination(schema: Any) -> tuple[str, list[Any]]:
    """The criterion and the alternatives of a combined schema. A schema with several
    combinators, or a combinator beside other constraints, is the allOf of them, as Schema
    Registry's loader builds it."""
    present = [word for word in _COMBINATORS if word in schema]
    rest = {k: v for k, v in schema.items() if k not in _COMBINATORS and k not in _ANNOTATIONS}
    if len(present) == 1 and not rest:
        parts = schema[present[0]]
        if not isinstance(parts, list) or not parts:
            raise SchemaInputError(f"'{present[0]}' must be a non-empty array")
        return present[0], parts
    return "allOf", [*([rest] if rest else []), *({w: schema[w]} for w in present)]


def _resolve(ref: str, root: Any) -> Any:
    if not ref.startswith("#"):
        raise SchemaInputError(
            f"$ref {ref!r} points outside the file: only references inside it are supported"
        )
    node = root
    for raw in filter(None, ref[1:].split("/")):
        token = raw.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(token)] if isinstance(node, list) else node[token]
        except (KeyError, IndexError, ValueError, TypeError):
            raise SchemaInputError(f"$ref {ref!r} does not resolve") from None
    return node


def _open_object(schema: dict[str, Any]) -> bool:
    permits, extra = _permits(schema.get("additionalProperties"))
    return permits and extra is None and not schema.get("patternProperties")


def _undeclared_schema(schema: dict[str, Any], name: str) -> Any:
    """The schema a property not declared in ``properties`` must match, if any."""
    for pattern, sub in (schema.get("patternProperties") or {}).items():
        try:
            if re.search(pattern, name):
                return sub
        except re.error as exc:
            raise SchemaInputError(f"patternProperties {pattern!r}: {exc}") from None
    return _permits(schema.get("additionalProperties"))[1]


def _permits(value: Any) -> tuple[bool, Any]:
    """(anything more allowed?, its schema if one is given) of additionalProperties/Items."""
    if value is None or value is True:
        return True, None
    if value is False:
        return False, None
    return True, value


def _array_parts(schema: dict[str, Any]) -> tuple[Any, list[Any], str | None]:
    """(schema of every item, tuple item schemas, the keyword naming those) in draft 2020-12
    (``prefixItems`` + ``items``) or draft 7 (``items`` array + ``additionalItems``) form."""
    if "prefixItems" in schema:
        return None, list(schema["prefixItems"]), "prefixItems"
    items = schema.get("items")
    if isinstance(items, list):
        return None, items, "items"
    return (None if items is True else items), [], None


def _extra_items(schema: dict[str, Any]) -> Any:
    """What may follow the tuple items (``None``: anything), in either draft."""
    if "prefixItems" in schema:
        return schema.get("items")
    if isinstance(schema.get("items"), list):
        return schema.get("additionalItems")
    return None


def _limit(schema: dict[str, Any], word: str) -> Fraction | None:
    value = schema.get(word)
    if value is None or isinstance(value, bool):  # draft 4's boolean exclusive* flags
        return None
    return _fraction(value)


def _fraction(value: Any) -> Fraction:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SchemaInputError(f"expected a number, got {json.dumps(value)}")
    return Fraction(str(value))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _unique(parts: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for part in parts:
        seen.setdefault(_canonical(part), part)
    return list(seen.values())


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _maximum_matching(edges: dict[int, list[int]]) -> dict[int, int]:
    """A maximum bipartite matching (augmenting paths): writer alternative -> reader one."""
    owner: dict[int, int] = {}

    def augment(left: int, seen: set[int]) -> bool:
        for right in edges.get(left, ()):
            if right in seen:
                continue
            seen.add(right)
            if right not in owner or augment(owner[right], seen):
                owner[right] = left
                return True
        return False

    for left in edges:
        augment(left, set())
    return {left: right for right, left in owner.items()}
