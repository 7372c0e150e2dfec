"""One ``compare(writer, reader)`` walk over two schemas, naming each difference."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from eventwire._schema_compat.reading import (
    _array_parts,
    _canonical,
    _combination,
    _escape,
    _extra_items,
    _fraction,
    _kind,
    _limit,
    _maximum_matching,
    _open_object,
    _permits,
    _resolve,
    _undeclared_schema,
    _unique,
)
from eventwire._schema_compat.rules import (
    COMPATIBLE,
    SchemaInputError,
)


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
