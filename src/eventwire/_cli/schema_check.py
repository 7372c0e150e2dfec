"""``eventwire schema check OLD NEW --mode``: may NEW follow OLD, by Schema Registry's rules?"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from eventwire._cli.errors import FAILURE, OK, USAGE, CliError
from eventwire._schema_compat import (
    CompatibilityReport,
    Mode,
    SchemaInputError,
    binding_notes,
    break_lines,
    check_compatibility,
)

_DIRECTIONS = {
    "backward": "NEW reads what OLD wrote",
    "forward": "OLD reads what NEW writes",
}


def run_check(old_path: str, new_path: str, mode: Mode, *, as_json: bool) -> int:
    """Compare two schema files and print the verdict on stdout.

    Returns:
        0 when NEW is compatible with OLD in ``mode``, 1 when a change breaks it.

    Raises:
        CliError: (exit code 2) a file cannot be read, is not JSON, or is not a schema.
    """
    old, new = _load(old_path, "OLD"), _load(new_path, "NEW")
    try:
        report = check_compatibility(old, new, mode)
    except SchemaInputError as exc:
        raise CliError(f"cannot compare {old_path} and {new_path}: {exc}", USAGE) from None
    notes = binding_notes(old, new, report)
    if as_json:
        sys.stdout.write(json.dumps(_as_json(report, old, new, notes), indent=2) + "\n")
    else:
        heading = [f"OLD {old_path}{_describe(old)}", f"NEW {new_path}{_describe(new)}"]
        sys.stdout.write("".join(f"{line}\n" for line in [*heading, *_lines(report, notes)]))
    return OK if report.compatible else FAILURE


def _load(path: str, name: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {name} {path}: {exc.strerror or exc}", USAGE) from None
    except UnicodeDecodeError:
        raise CliError(f"{name} {path} is not UTF-8 text", USAGE) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{name} {path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            USAGE,
        ) from None
    if not isinstance(document, dict | bool):
        raise CliError(f"{name} {path} is not a JSON Schema (an object or a boolean)", USAGE)
    return document


def _describe(document: Any) -> str:
    binding = document.get("x-eventwire") if isinstance(document, dict) else None
    if isinstance(binding, dict) and "type" in binding:
        return f" ({binding['type']} version {binding.get('version')})"
    return ""


def _lines(report: CompatibilityReport, notes: list[str]) -> list[str]:
    lines: list[str] = []
    directions = ("backward", "forward") if report.mode == "full" else (report.mode,)
    breaks = break_lines(report)
    for direction in directions:
        mine = [line for line in breaks if line.startswith(f"{direction}: ")]
        verdict = (
            "compatible" if not mine else f"{len(mine)} breaking change{'s' * (len(mine) != 1)}"
        )
        lines.append(f"{direction} ({_DIRECTIONS[direction]}): {verdict}")
        lines.extend(f"  {line.removeprefix(f'{direction}: ')}" for line in mine)
    lines.extend(f"note: {note}" for note in notes)
    if report.compatible:
        lines.append(
            f"compatible ({report.mode}): {len(report.changes)} change"
            f"{'s' * (len(report.changes) != 1)}, none breaking"
        )
    else:
        lines.append(f"NOT compatible ({report.mode}): {len(report.breaking)} breaking")
    return lines


def _as_json(report: CompatibilityReport, old: Any, new: Any, notes: list[str]) -> dict[str, Any]:
    def binding(document: Any) -> Any:
        return document.get("x-eventwire") if isinstance(document, dict) else None

    return {
        "mode": report.mode,
        "compatible": report.compatible,
        "breaking": [
            {
                "direction": c.direction,
                "path": c.path,
                "kind": c.kind,
                "message": c.describe(),
            }
            for c in report.breaking
        ],
        "changes": [
            {"direction": c.direction, "path": c.path, "kind": c.kind, "breaking": c.breaking}
            for c in report.changes
        ],
        "notes": notes,
        "old": binding(old),
        "new": binding(new),
    }
