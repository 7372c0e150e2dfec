"""Schema snapshots: the JSON Schemas of a service's events, committed in its repository, and
a test helper that fails when an event changes in a way its consumers cannot follow."""

from __future__ import annotations

import importlib
import itertools
import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from eventwire._schema_compat import Mode, binding_notes, break_lines, check_compatibility
from eventwire._schema_export import event_schema, events_in, schema_text

#: Set to ``1`` to write new and compatibly changed snapshots instead of failing on them.
UPDATE_ENV: Final = "EVENTWIRE_UPDATE_SCHEMAS"


def assert_schema_snapshots(
    *modules: ModuleType | str,
    directory: str | os.PathLike[str],
    mode: Mode = "backward",
    accept_breaking: Iterable[tuple[str, int]] = (),
    update: bool | None = None,
) -> None:
    """Assert that the events of ``modules`` match the schema snapshots in ``directory``.

    Each event class (declared with ``@eventwire.event``) has one snapshot per version,
    ``{type}.v{version}.schema.json``, exactly as ``eventwire schema export`` writes it. The
    helper fails, naming every problem at once, when:

    * an event's schema has no snapshot yet, or differs from its snapshot (run the tests with
      ``EVENTWIRE_UPDATE_SCHEMAS=1`` to write or rewrite it, then commit the file);
    * an event's schema changed incompatibly within its version (by Schema Registry's rules
      in ``mode``; each breaking change is named with its JSON path): such a change is never
      written, even when updating;
    * a version of an event type breaks the version before it (the snapshot's or the
      module's), unless ``(type, version)`` is in ``accept_breaking``.

    Args:
        modules: modules (or their import names) holding the event classes.
        directory: where the snapshots live (created when updating).
        mode: ``backward`` (Schema Registry's default: consumers with the new schema read
            events written with the old one), ``forward`` (consumers still on the old schema
            read new events) or ``full`` (both).
        accept_breaking: ``(type, version)`` pairs whose break with the previous version is
            intended (consumers tell versions apart by the ``ce_eventversion`` header).
        update: write new and compatibly changed snapshots; ``None`` reads
            ``EVENTWIRE_UPDATE_SCHEMAS``.

    Raises:
        AssertionError: listing every problem found.
    """
    if update is None:
        update = os.environ.get(UPDATE_ENV, "") not in ("", "0")
    folder = Path(directory)
    accepted = set(accept_breaking)
    problems: list[str] = []
    current = _current_schemas(modules, problems)
    recorded = _recorded_schemas(folder, problems)
    for (type_, version), schema in sorted(current.items()):
        path = folder / f"{type_}.v{version}.schema.json"
        snapshot = recorded.get((type_, version))
        if snapshot == schema:
            continue
        if snapshot is not None:
            report = check_compatibility(snapshot, schema, mode)
            if not report.compatible:
                problems.append(
                    f"{type_} version {version} changed incompatibly with {path} ({mode}):"
                    + "".join(f"\n    {line}" for line in break_lines(report))
                    + f"\n    declare the change as version={version + 1}, or undo it"
                )
                continue
        if update:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(schema_text(schema), encoding="utf-8")
            recorded[(type_, version)] = schema
        else:
            what = "no snapshot" if snapshot is None else "a compatible change not recorded"
            problems.append(
                f"{type_} version {version}: {what} in {path}; run the tests with"
                f" {UPDATE_ENV}=1 to write it, then commit it"
            )
    problems.extend(_version_breaks({**recorded, **current}, mode, accepted))
    if problems:
        raise AssertionError(
            f"event schemas do not match the snapshots in {folder}:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )


def _current_schemas(
    modules: Iterable[ModuleType | str], problems: list[str]
) -> dict[tuple[str, int], Any]:
    found: dict[tuple[str, int], Any] = {}
    owners: dict[tuple[str, int], str] = {}
    for module in modules:
        loaded = importlib.import_module(module) if isinstance(module, str) else module
        classes = events_in(loaded)
        if not classes:
            problems.append(f"module {loaded.__name__} holds no event class")
        for cls in classes:
            schema = event_schema(cls)
            binding = schema["x-eventwire"]
            key = (binding["type"], binding["version"])
            name = f"{cls.__module__}.{cls.__qualname__}"
            if key in found and found[key] != schema:
                problems.append(
                    f"{name} and {owners[key]} both declare {key[0]} version {key[1]}"
                    " with different schemas"
                )
                continue
            found[key] = schema
            owners.setdefault(key, name)
    return found


def _recorded_schemas(folder: Path, problems: list[str]) -> dict[tuple[str, int], Any]:
    recorded: dict[tuple[str, int], Any] = {}
    for path in sorted(folder.glob("*.schema.json")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            binding = schema["x-eventwire"]
            recorded[(str(binding["type"]), int(binding["version"]))] = schema
        except (ValueError, KeyError, TypeError):
            problems.append(f"{path} is not a schema written by 'eventwire schema export'")
    return recorded


def _version_breaks(
    schemas: dict[tuple[str, int], Any], mode: Mode, accepted: set[tuple[str, int]]
) -> list[str]:
    """Each version checked against the version before it, for every event type."""
    problems: list[str] = []
    versions: dict[str, list[int]] = {}
    for type_, version in schemas:
        versions.setdefault(type_, []).append(version)
    for type_, numbers in sorted(versions.items()):
        ordered = sorted(numbers)
        for before, after in itertools.pairwise(ordered):
            if (type_, after) in accepted:
                continue
            old, new = schemas[(type_, before)], schemas[(type_, after)]
            report = check_compatibility(old, new, mode)
            if not report.compatible:
                [note, *_] = binding_notes(old, new, report)
                problems.append(
                    note
                    + "".join(f"\n    {line}" for line in break_lines(report))
                    + f"\n    if intended, pass accept_breaking=[({type_!r}, {after})]"
                )
    return problems
