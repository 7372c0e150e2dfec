"""The difference kinds, which of them are compatible, and what each means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

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
