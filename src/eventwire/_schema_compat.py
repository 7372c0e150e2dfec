"""Offline JSON Schema compatibility, by the rules Confluent Schema Registry applies.

Schema Registry decides whether a JSON Schema may follow another by walking both schemas
together and naming each difference (``io.confluent.kafka.schemaregistry.json.diff``:
``SchemaDiff``, ``ObjectSchemaDiff``, ... and the ``Difference.Type`` names used here). A fixed
set of difference kinds is compatible; any other kind breaks compatibility. The walk
``compare(writer, reader)`` asks: can a reader holding ``reader`` read everything written
under ``writer``? BACKWARD compatibility of NEW with OLD is ``compare(OLD, NEW)``, FORWARD is
``compare(NEW, OLD)``, FULL is both. ``docs/schemas.md`` lists the rules and the one rule
added here (``format``).

Everything is pure: two parsed JSON documents in, a report out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Literal

Mode = Literal["backward", "forward", "full"]
Direction = Literal["backward", "forward"]
MODES: Final[tuple[Mode, ...]] = ("backward", "forward", "full")

#: Difference kinds that do not break compatibility: Schema Registry's
#: ``SchemaDiff.COMPATIBLE_CHANGES``, plus ``FORMAT_REMOVED`` (see ``FORMAT_*`` below).
COMPATIBLE: Final = frozenset(
    {
        "ID_CHANGED",
        "DESCRIPTION_CHANGED",
        "TITLE_CHANGED",
        "DEFAULT_CHANGED",
        "SCHEMA_REMOVED",
        "TYPE_EXTENDED",
        "MAX_LENGTH_INCREASED",
        "MAX_LENGTH_REMOVED",
        "MIN_LENGTH_DECREASED",
        "MIN_LENGTH_REMOVED",
        "PATTERN_REMOVED",
        "MAXIMUM_INCREASED",
        "MAXIMUM_REMOVED",
        "MINIMUM_DECREASED",
        "MINIMUM_REMOVED",
        "EXCLUSIVE_MAXIMUM_INCREASED",
        "EXCLUSIVE_MAXIMUM_REMOVED",
        "EXCLUSIVE_MINIMUM_DECREASED",
        "EXCLUSIVE_MINIMUM_REMOVED",
        "MULTIPLE_OF_REDUCED",
        "MULTIPLE_OF_REMOVED",
        "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
        "REQUIRED_ATTRIBUTE_REMOVED",
        "MAX_PROPERTIES_INCREASED",
        "MAX_PROPERTIES_REMOVED",
        "MIN_PROPERTIES_DECREASED",
        "MIN_PROPERTIES_REMOVED",
        "ADDITIONAL_PROPERTIES_ADDED",
        "ADDITIONAL_PROPERTIES_EXTENDED",
        "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
        "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "MAX_ITEMS_INCREASED",
        "MAX_ITEMS_REMOVED",
        "MIN_ITEMS_DECREASED",
        "MIN_ITEMS_REMOVED",
        "UNIQUE_ITEMS_REMOVED",
        "ADDITIONAL_ITEMS_ADDED",
        "ADDITIONAL_ITEMS_EXTENDED",
        "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
        "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
        "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
        "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "ENUM_ARRAY_EXTENDED",
        "COMBINED_TYPE_EXTENDED",
        "PRODUCT_TYPE_NARROWED",
        "SUM_TYPE_EXTENDED",
        "NOT_TYPE_NARROWED",
        "FORMAT_REMOVED",
    }
)

# What a breaking kind means, with {writer} and {reader} for the schema that wrote the data
# and the one that reads it (OLD/NEW, depending on the direction checked).
_MEANING: Final[Mapping[str, str]] = {
    "SCHEMA_ADDED": "{reader} constrains something {writer} left free",
    "TYPE_CHANGED": "the type differs between {writer} and {reader}",
    "TYPE_NARROWED": "{reader} accepts a narrower type than {writer} (e.g. number to integer)",
    "MAX_LENGTH_ADDED": "{reader} adds a maxLength",
    "MAX_LENGTH_DECREASED": "{reader} lowers maxLength",
    "MIN_LENGTH_ADDED": "{reader} adds a minLength",
    "MIN_LENGTH_INCREASED": "{reader} raises minLength",
    "PATTERN_ADDED": "{reader} adds a pattern",
    "PATTERN_CHANGED": "the pattern differs between {writer} and {reader}",
    "FORMAT_ADDED": "{reader} adds a format (e.g. a plain string became a date-time)",
    "FORMAT_CHANGED": "the format differs between {writer} and {reader}",
    "MAXIMUM_ADDED": "{reader} adds a maximum",
    "MAXIMUM_DECREASED": "{reader} lowers the maximum",
    "MINIMUM_ADDED": "{reader} adds a minimum",
    "MINIMUM_INCREASED": "{reader} raises the minimum",
    "EXCLUSIVE_MAXIMUM_ADDED": "{reader} adds an exclusiveMaximum",
    "EXCLUSIVE_MAXIMUM_DECREASED": "{reader} lowers the exclusiveMaximum",
    "EXCLUSIVE_MINIMUM_ADDED": "{reader} adds an exclusiveMinimum",
    "EXCLUSIVE_MINIMUM_INCREASED": "{reader} raises the exclusiveMinimum",
    "MULTIPLE_OF_ADDED": "{reader} adds a multipleOf",
    "MULTIPLE_OF_EXPANDED": "{reader} needs a larger multipleOf",
    "MULTIPLE_OF_CHANGED": "multipleOf differs between {writer} and {reader}",
    "REQUIRED_ATTRIBUTE_ADDED": "{reader} requires a field {writer} may leave out",
    "MAX_PROPERTIES_ADDED": "{reader} adds a maxProperties",
    "MAX_PROPERTIES_DECREASED": "{reader} lowers maxProperties",
    "MIN_PROPERTIES_ADDED": "{reader} adds a minProperties",
    "MIN_PROPERTIES_INCREASED": "{reader} raises minProperties",
    "ADDITIONAL_PROPERTIES_REMOVED": "{reader} forbids undeclared properties {writer} allowed",
    "ADDITIONAL_PROPERTIES_NARROWED": (
        "{reader} constrains undeclared properties {writer} left free"
    ),
    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": (
        "{reader} declares a property that {writer} lacks; {writer} is an open content model, so"
        " data written with it may carry that property with any value"
    ),
    "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL": (
        "{reader} requires a property, without a default, that {writer} lacks"
    ),
    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL": (
        "{reader} is a closed content model without a property {writer} declares"
    ),
    "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "{reader} lacks a property {writer} declares, and its schema for undeclared properties"
        " does not cover it"
    ),
    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "{reader} declares a property that {writer} lacks and {writer}'s schema for undeclared"
        " properties does not cover"
    ),
    "MAX_ITEMS_ADDED": "{reader} adds a maxItems",
    "MAX_ITEMS_DECREASED": "{reader} lowers maxItems",
    "MIN_ITEMS_ADDED": "{reader} adds a minItems",
    "MIN_ITEMS_INCREASED": "{reader} raises minItems",
    "UNIQUE_ITEMS_ADDED": "{reader} requires unique items",
    "ADDITIONAL_ITEMS_REMOVED": "{reader} forbids items {writer} allowed",
    "ADDITIONAL_ITEMS_NARROWED": "{reader} constrains extra items {writer} left free",
    "ITEM_ADDED_TO_OPEN_CONTENT_MODEL": (
        "{reader} declares a tuple item {writer} lacks; {writer} allows any extra item"
    ),
    "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL": (
        "{reader} is a closed tuple without an item {writer} declares"
    ),
    "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "{reader} lacks a tuple item {writer} declares, not covered by its extra-items schema"
    ),
    "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "{reader} declares a tuple item not covered by {writer}'s extra-items schema"
    ),
    "ENUM_ARRAY_NARROWED": "{reader} accepts fewer values than {writer}",
    "ENUM_ARRAY_CHANGED": "the allowed values differ between {writer} and {reader}",
    "COMBINED_TYPE_CHANGED": "the combination (anyOf/oneOf/allOf) differs",
    "PRODUCT_TYPE_EXTENDED": "{reader}'s allOf has more conditions than {writer}'s",
    "SUM_TYPE_NARROWED": "{reader} accepts fewer alternatives than {writer} (anyOf/oneOf)",
    "COMBINED_TYPE_SUBSCHEMAS_CHANGED": (
        "an alternative of {writer} has no compatible counterpart in {reader}"
    ),
    "NOT_TYPE_EXTENDED": "{reader}'s 'not' rejects more than {writer}'s",
}

_ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_OBJECT_WORDS: Final = frozenset(
    {"properties", "required", "additionalProperties", "patternProperties"}
    | {"minProperties", "maxProperties"}
)
_ARRAY_WORDS: Final = frozenset(
    {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"}
)
_STRING_WORDS: Final = frozenset({"minLength", "maxLength", "pattern", "format"})
_NUMBER_WORDS: Final = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_KNOWN_TYPES: Final = frozenset(
    {"object", "array", "string", "integer", "number", "boolean", "null"}
)
_COMBINATORS: Final = ("allOf", "anyOf", "oneOf")


class SchemaInputError(ValueError):
    """A document that cannot be compared: not a JSON Schema, or a ``$ref`` that does not
    resolve inside it."""


@dataclass(frozen=True)
class SchemaChange:
    """One difference between two schemas.

    Attributes:
        kind: Schema Registry's name for it (``Difference.Type``), e.g. ``TYPE_CHANGED``.
        path: where, as a JSON pointer into the schema, e.g. ``#/properties/total``.
        direction: ``backward`` (NEW reads what OLD wrote) or ``forward`` (OLD reads what NEW
            wrote).
        breaking: whether this kind of difference breaks compatibility.
    """

    kind: str
    path: str
    direction: Direction
    breaking: bool

    def describe(self) -> str:
        """What the difference means, naming OLD and NEW."""
        writer, reader = ("OLD", "NEW") if self.direction == "backward" else ("NEW", "OLD")
        meaning = _MEANING.get(self.kind, self.kind.lower().replace("_", " "))
        return meaning.format(writer=writer, reader=reader)


@dataclass(frozen=True)
class CompatibilityReport:
    """The outcome of comparing OLD and NEW in one mode."""

    mode: Mode
    changes: tuple[SchemaChange, ...]

    @property
    def breaking(self) -> tuple[SchemaChange, ...]:
        """The changes that break compatibility, in the order found."""
        return tuple(change for change in self.changes if change.breaking)

    @property
    def compatible(self) -> bool:
        """True when no change breaks compatibility in this mode."""
        return not self.breaking


def check_compatibility(old: Any, new: Any, mode: Mode) -> CompatibilityReport:
    """Compare two JSON Schemas (parsed JSON) in ``mode``.

    Raises:
        SchemaInputError: either document is not a schema, or holds a ``$ref`` that does not
            resolve inside it.
        ValueError: ``mode`` is not backward, forward or full.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    for name, document in (("OLD", old), ("NEW", new)):
        if not isinstance(document, dict | bool):
            raise SchemaInputError(f"{name} is not a JSON Schema (an object or a boolean)")
    changes: list[SchemaChange] = []
    directions: tuple[Direction, ...]
    if mode == "backward":
        directions = ("backward",)
    elif mode == "forward":
        directions = ("forward",)
    else:
        directions = ("backward", "forward")
    for direction in directions:
        writer, reader = (old, new) if direction == "backward" else (new, old)
        walk = _Walk(writer, reader)
        walk.compare(writer, reader)
        changes.extend(
            SchemaChange(kind, path, direction, kind not in COMPATIBLE) for kind, path in walk.found
        )
    return CompatibilityReport(mode, tuple(changes))


# -- the walk ---------------------------------------------------------------------------------


@dataclass
class _Walk:
    """One ``compare(writer, reader)`` walk: Schema Registry's ``Context``."""

    writer_root: Any
    reader_root: Any
    path: list[str] = field(default_factory=list)
    found: list[tuple[str, str]] = field(default_factory=list)
    visiting: set[int] = field(default_factory=set)
    # Synthesised nodes (a ``type`` list split into anyOf) keep one identity per source node,
    # so the cycle guard sees them as the same schema each time.
    _split: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, kind: str, *attribute: str) -> None:
        self.found.append((kind, "#/" + "/".join([*self.path, *attribute])))

    @contextmanager
    def at(self, *parts: str) -> Iterator[None]:
        self.path.extend(parts)
        try:
            yield
        finally:
            del self.path[len(self.path) - len(parts) :]

    def sub(self, *, swapped: bool = False) -> _Walk:
        """A walk that records into its own list (a trial comparison); ``swapped`` when the
        trial compares a reader's schema as the writer (``not``)."""
        roots = (
            (self.reader_root, self.writer_root)
            if swapped
            else (self.writer_root, self.reader_root)
        )
        return _Walk(*roots, list(self.path), [], set(self.visiting), self._split)

    @property
    def compatible(self) -> bool:
        return all(kind in COMPATIBLE for kind, _ in self.found)

    # -- dispatch --------------------------------------------------------------------------

    def compare(self, writer: Any, reader: Any) -> None:
        if writer is None and reader is None:
            return
        if writer is None:
            self.add("SCHEMA_ADDED")
            return
        if reader is None:
            self.add("SCHEMA_REMOVED")
            return
        writer = self._node(writer, self.writer_root)
        reader = self._node(reader, self.reader_root)
        w_kind, r_kind = _kind(writer), _kind(reader)
        if w_kind != "combined" and r_kind == "combined":
            if self._fits_one_alternative(writer, reader):
                return
        elif w_kind == "combined" and r_kind != "combined" and self._one_part_fits(writer, reader):
            return
        if w_kind != r_kind:
            if w_kind != "false" and r_kind != "empty":
                self.add("TYPE_CHANGED")
            return
        key = id(writer)
        if key in self.visiting:  # a recursive schema: this pair is being compared above
            return
        self.visiting.add(key)
        try:
            self._annotations(writer, reader)
            compare_kind = _BY_KIND.get(w_kind)
            if compare_kind is not None:
                compare_kind(self, writer, reader)
        finally:
            self.visiting.discard(key)

    def _fits_one_alternative(self, writer: Any, reader: Any) -> bool:
        criterion, parts = _combination(reader)
        if len(parts) == 1:
            trial = self.sub()
            trial.compare(writer, parts[0])
            if trial.compatible:
                self.found.extend(trial.found)
                return True
        elif criterion in ("anyOf", "oneOf"):
            for part in parts:
                trial = self.sub()
                trial.compare(writer, part)
                if trial.compatible:
                    self.found.extend(trial.found)
                    self.add("SUM_TYPE_EXTENDED")
                    return True
        return False

    def _one_part_fits(self, writer: Any, reader: Any) -> bool:
        criterion, parts = _combination(writer)
        if len(parts) == 1:
            trial = self.sub()
            trial.compare(parts[0], reader)
            if trial.compatible:
                self.found.extend(trial.found)
                return True
        elif criterion == "allOf":
            for part in parts:
                trial = self.sub()
                trial.compare(part, reader)
                if trial.compatible:
                    self.found.extend(trial.found)
                    self.add("PRODUCT_TYPE_NARROWED")
                    return True
        return False

    def _node(self, schema: Any, root: Any) -> Any:
        """The schema with ``$ref``s followed and a ``type`` list split into an anyOf."""
        seen: set[str] = set()
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or ref in seen:
                raise SchemaInputError(f"$ref {ref!r} does not resolve (a loop of references)")
            seen.add(ref)
            schema = _resolve(ref, root)
        if isinstance(schema, dict):
            types = schema.get("type")
            if isinstance(types, list) and len(types) > 1:
                split = self._split.get(id(schema))
                if split is None:
                    rest = {k: v for k, v in schema.items() if k != "type"}
                    split = {"anyOf": [{**rest, "type": t} for t in types]}
                    self._split[id(schema)] = split
                return split
        return schema

    def _annotations(self, writer: Any, reader: Any) -> None:
        if not (isinstance(writer, dict) and isinstance(reader, dict)):
            return
        for word, kind in (
            ("$id", "ID_CHANGED"),
            ("title", "TITLE_CHANGED"),
            ("description", "DESCRIPTION_CHANGED"),
            ("default", "DEFAULT_CHANGED"),
        ):
            if writer.get(word) != reader.get(word):
                self.add(kind)

    # -- per kind --------------------------------------------------------------------------

    def strings(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        self._bound(writer, reader, "maxLength", upper=True)
        self._bound(writer, reader, "minLength", upper=False)
        for word, label in (("pattern", "PATTERN"), ("format", "FORMAT")):
            before, after = writer.get(word), reader.get(word)
            if before is None and after is not None:
                self.add(f"{label}_ADDED", word)
            elif before is not None and after is None:
                self.add(f"{label}_REMOVED", word)
            elif before != after:
                self.add(f"{label}_CHANGED", word)

    def numbers(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        self._bound(writer, reader, "maximum", upper=True)
        self._bound(writer, reader, "minimum", upper=False)
        self._bound(writer, reader, "exclusiveMaximum", upper=True)
        self._bound(writer, reader, "exclusiveMinimum", upper=False)
        before, after = writer.get("multipleOf"), reader.get("multipleOf")
        if before != after:
            if before is None:
                self.add("MULTIPLE_OF_ADDED", "multipleOf")
            elif after is None:
                self.add("MULTIPLE_OF_REMOVED", "multipleOf")
            else:
                old, new = _fraction(before), _fraction(after)
                if (new / old).denominator == 1:
                    self.add("MULTIPLE_OF_EXPANDED", "multipleOf")
                elif (old / new).denominator == 1:
                    self.add("MULTIPLE_OF_REDUCED", "multipleOf")
                else:
                    self.add("MULTIPLE_OF_CHANGED", "multipleOf")
        integer_before = writer.get("type") == "integer"
        integer_after = reader.get("type") == "integer"
        if integer_before and not integer_after:
            self.add("TYPE_EXTENDED")
        elif integer_after and not integer_before:
            self.add("TYPE_NARROWED")

    def _bound(
        self, writer: dict[str, Any], reader: dict[str, Any], word: str, *, upper: bool
    ) -> None:
        """A numeric limit: lifting an upper limit or lowering a lower one is compatible."""
        before, after = _limit(writer, word), _limit(reader, word)
        if before == after:
            return
        label = re.sub(r"(?<!^)([A-Z])", r"_\1", word).upper()  # maxLength -> MAX_LENGTH
        if before is None:
            self.add(f"{label}_ADDED", word)
        elif after is None:
            self.add(f"{label}_REMOVED", word)
        elif after > before:
            self.add(f"{label}_INCREASED", word)
        else:
            self.add(f"{label}_DECREASED", word)

    def enums(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        before = {_canonical(v) for v in writer["enum"]}
        after = {_canonical(v) for v in reader["enum"]}
        if before == after:
            return
        if after >= before:
            self.add("ENUM_ARRAY_EXTENDED", "enum")
        elif before >= after:
            self.add("ENUM_ARRAY_NARROWED", "enum")
        else:
            self.add("ENUM_ARRAY_CHANGED", "enum")

    def consts(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        if _canonical(writer["const"]) != _canonical(reader["const"]):
            self.add("ENUM_ARRAY_CHANGED", "const")

    def negations(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        trial = self.sub(swapped=True)
        with trial.at("not"):
            # The reader may reject no more than the writer did: what its 'not' matches must
            # be matched by the writer's 'not' too.
            trial.compare(reader["not"], writer["not"])
        if trial.found:
            self.add("NOT_TYPE_NARROWED" if trial.compatible else "NOT_TYPE_EXTENDED", "not")

    def objects(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        w_props: dict[str, Any] = writer.get("properties") or {}
        r_props: dict[str, Any] = reader.get("properties") or {}
        w_required = set(writer.get("required") or ())
        r_required = set(reader.get("required") or ())
        with self.at("required"):
            for name in w_props:
                if name not in r_props:
                    continue
                if name in w_required and name not in r_required:
                    self.add("REQUIRED_ATTRIBUTE_REMOVED", name)
                elif name in r_required and name not in w_required:
                    kind = (
                        "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED"
                        if self._has_default(r_props[name], self.reader_root)
                        else "REQUIRED_ATTRIBUTE_ADDED"
                    )
                    self.add(kind, name)
        with self.at("properties"):
            for name in [*w_props, *(n for n in r_props if n not in w_props)]:
                with self.at(_escape(name)):
                    if name not in r_props:
                        self._property_removed(w_props[name], reader, name)
                    elif name not in w_props:
                        self._property_added(r_props[name], writer, reader, name)
                    else:
                        self.compare(w_props[name], r_props[name])
        self._additional(
            writer.get("additionalProperties"),
            reader.get("additionalProperties"),
            "additionalProperties",
            "PROPERTIES",
        )
        self._bound(writer, reader, "maxProperties", upper=True)
        self._bound(writer, reader, "minProperties", upper=False)

    def _property_removed(self, schema: Any, reader: dict[str, Any], name: str) -> None:
        if _open_object(reader):
            self.add("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL")
            return
        partial = _undeclared_schema(reader, name)
        if partial is not None:
            trial = self.sub()
            trial.compare(schema, partial)
            self.found.extend(trial.found)
            self.add(
                "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if trial.compatible
                else "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            )
        elif schema is False:
            self.add("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL")
        else:
            self.add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")

    def _property_added(
        self, schema: Any, writer: dict[str, Any], reader: dict[str, Any], name: str
    ) -> None:
        if _open_object(writer):
            self.add(
                "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
                if _kind(self._node(schema, self.reader_root)) == "empty"
                else "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
            )
            return
        partial = _undeclared_schema(writer, name)
        if partial is not None:
            trial = self.sub()
            trial.compare(partial, schema)
            self.found.extend(trial.found)
            self.add(
                "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if trial.compatible
                else "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            )
        if name in (reader.get("required") or ()):
            self.add(
                "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
                if self._has_default(schema, self.reader_root)
                else "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
            )
        else:
            self.add("OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL")

    def _has_default(self, schema: Any, root: Any) -> bool:
        if isinstance(schema, dict) and "default" in schema:
            return True
        node = self._node(schema, root)
        return isinstance(node, dict) and "default" in node

    def _additional(self, writer: Any, reader: Any, word: str, label: str) -> None:
        """additionalProperties / additionalItems (``items`` after ``prefixItems``): allowing
        more is compatible."""
        w_permits, w_schema = _permits(writer)
        r_permits, r_schema = _permits(reader)
        with self.at(word):
            if w_permits != r_permits:
                self.add(f"ADDITIONAL_{label}_{'ADDED' if r_permits else 'REMOVED'}")
            elif w_schema is None and r_schema is not None:
                self.add(f"ADDITIONAL_{label}_NARROWED")
            elif r_schema is None and w_schema is not None:
                self.add(f"ADDITIONAL_{label}_EXTENDED")
            else:
                self.compare(w_schema, r_schema)

    def arrays(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        w_all, w_items, w_word = _array_parts(writer)
        r_all, r_items, r_word = _array_parts(reader)
        with self.at("items"):
            self.compare(w_all, r_all)
        word = r_word or w_word or "items"
        shared = min(len(w_items), len(r_items))
        for index in range(shared):
            with self.at(word, str(index)):
                self.compare(w_items[index], r_items[index])
        for index in range(shared, len(w_items)):
            with self.at(word, str(index)):
                self._item_removed(w_items[index], reader)
        for index in range(shared, len(r_items)):
            with self.at(word, str(index)):
                self._item_added(r_items[index], writer)
        self._additional(
            _extra_items(writer),
            _extra_items(reader),
            "items" if "prefixItems" in reader else "additionalItems",
            "ITEMS",
        )
        self._bound(writer, reader, "maxItems", upper=True)
        self._bound(writer, reader, "minItems", upper=False)
        if bool(writer.get("uniqueItems")) != bool(reader.get("uniqueItems")):
            self.add(
                "UNIQUE_ITEMS_REMOVED" if writer.get("uniqueItems") else "UNIQUE_ITEMS_ADDED",
                "uniqueItems",
            )

    def _item_removed(self, schema: Any, reader: dict[str, Any]) -> None:
        permits, partial = _permits(_extra_items(reader))
        if permits and partial is None:
            self.add("ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL")
        elif partial is not None:
            trial = self.sub()
            trial.compare(schema, partial)
            self.found.extend(trial.found)
            self.add(
                "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if trial.compatible
                else "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            )
        elif schema is False:
            self.add("ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL")
        else:
            self.add("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL")

    def _item_added(self, schema: Any, writer: dict[str, Any]) -> None:
        permits, partial = _permits(_extra_items(writer))
        if permits and partial is None:
            self.add(
                "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
                if _kind(self._node(schema, self.reader_root)) == "empty"
                else "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
            )
        elif partial is not None:
            trial = self.sub()
            trial.compare(partial, schema)
            self.found.extend(trial.found)
            self.add(
                "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if trial.compatible
                else "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            )
        else:
            self.add("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL")

    def combinations(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        w_criterion, w_parts = _combination(writer)
        r_criterion, r_parts = _combination(reader)
        if w_criterion != r_criterion:
            if (
                r_criterion == "anyOf"
                or (len(w_parts) == 1 and len(r_parts) == 1)
                or (len(w_parts) == 1 and r_criterion == "oneOf")
                or (len(r_parts) == 1 and w_criterion == "allOf")
            ):
                self.add("COMBINED_TYPE_EXTENDED")
            else:
                self.add("COMBINED_TYPE_CHANGED")
                return
        w_unique = _unique(w_parts)
        r_unique = _unique(r_parts)
        if len(w_unique) < len(r_unique):
            self.add("PRODUCT_TYPE_EXTENDED" if r_criterion == "allOf" else "SUM_TYPE_EXTENDED")
        elif len(w_unique) > len(r_unique):
            self.add("SUM_TYPE_NARROWED" if w_criterion != "allOf" else "PRODUCT_TYPE_NARROWED")
        fits: dict[int, dict[int, list[tuple[str, str]]]] = {}
        for i, part in enumerate(w_unique):
            with self.at(w_criterion, str(i)):
                for j, other in enumerate(r_unique):
                    trial = self.sub()
                    trial.compare(part, other)
                    if trial.compatible:
                        fits.setdefault(i, {})[j] = trial.found
        matching = _maximum_matching({i: list(js) for i, js in fits.items()})
        for i, j in sorted(matching.items()):
            self.found.extend(fits[i][j])
        if len(matching) < min(len(w_unique), len(r_unique)):
            self.add("COMBINED_TYPE_SUBSCHEMAS_CHANGED")


_BY_KIND: Final = {
    "string": _Walk.strings,
    "number": _Walk.numbers,
    "enum": _Walk.enums,
    "const": _Walk.consts,
    "not": _Walk.negations,
    "object": _Walk.objects,
    "array": _Walk.arrays,
    "combined": _Walk.combinations,
}


# -- reading schemas --------------------------------------------------------------------------


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


# -- wording, shared by ``schema check`` and the snapshot helper ------------------------------


def break_lines(report: CompatibilityReport) -> list[str]:
    """One line per breaking change: direction, JSON path, kind and meaning."""
    return [
        f"{change.direction}: {change.path}: {change.kind}: {change.describe()}"
        for change in report.breaking
    ]


def binding_notes(old: Any, new: Any, report: CompatibilityReport) -> list[str]:
    """What the ``x-eventwire`` objects of two exported schemas add to a verdict: a new
    ``version=`` that breaks the previous one, a break within one version, a moved topic or
    key. Empty when either document has no ``x-eventwire`` object."""
    before = old.get("x-eventwire") if isinstance(old, dict) else None
    after = new.get("x-eventwire") if isinstance(new, dict) else None
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    notes: list[str] = []
    if before.get("type") != after.get("type"):
        notes.append(
            f"OLD and NEW are different event types ({before.get('type')!r}, {after.get('type')!r})"
        )
    elif not report.compatible:
        name, v_old, v_new = after.get("type"), before.get("version"), after.get("version")
        if isinstance(v_old, int) and isinstance(v_new, int) and v_new > v_old:
            notes.append(
                f"version {v_new} of {name!r} breaks version {v_old} ({report.mode}): its"
                " consumers must tell the versions apart (the ce_eventversion header) or read"
                " another topic"
            )
        elif v_old == v_new and isinstance(v_new, int):
            notes.append(
                f"version {v_new} of {name!r} changed incompatibly ({report.mode}): keep the"
                f" change compatible, or declare it as version={v_new + 1}"
            )
    for word, what in (("topic", "declared topic"), ("key", "key field")):
        if before.get(word) != after.get(word):
            notes.append(
                f"the {what} changed ({before.get(word)!r} -> {after.get(word)!r})"
                + (
                    ": events of one key may now land on other partitions than before"
                    if word == "key"
                    else ""
                )
            )
    return notes
