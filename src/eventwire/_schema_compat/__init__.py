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

from dataclasses import dataclass
from typing import Any

from eventwire._schema_compat.rules import (
    _MEANING,
    COMPATIBLE,
    MODES,
    Direction,
    Mode,
    SchemaInputError,
)
from eventwire._schema_compat.walk import _Walk

__all__ = [
    "COMPATIBLE",
    "MODES",
    "CompatibilityReport",
    "Direction",
    "Mode",
    "SchemaChange",
    "SchemaInputError",
    "binding_notes",
    "break_lines",
    "check_compatibility",
]


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
