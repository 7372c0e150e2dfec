"""Refusing to write over what a command reads.

Opening a file for writing truncates it at once, so an output path naming an input (the
JSON Lines file, the module of the event class, the benchmark suite) would erase it before a
line is read. Every path a command writes is checked against its inputs before anything is
opened for writing, by file identity (device and inode), so a second spelling of the same path,
a symbolic link or a hard link is caught too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from eventwire._cli.errors import USAGE, CliError

#: An input: its description and its path (``"-"`` is standard input).
Input = tuple[str, str | os.PathLike[str]]


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    # os.stat follows symbolic links: their target is what would be written.
    try:
        status = os.fstat(sys.stdin.fileno()) if os.fspath(path) == "-" else os.stat(path)
    except (OSError, ValueError):  # missing (it cannot be an input), or no stdin
        return None
    return status.st_dev, status.st_ino


def refuse_overwriting(
    option: str, output: str | os.PathLike[str], inputs: Iterable[Input]
) -> None:
    """Raise a usage error when ``output`` is the same file as one of ``inputs``.

    Raises:
        CliError: with exit code 2 (usage), naming both.
    """
    written = _identity(output)
    if written is None:
        return
    for description, path in inputs:
        if _identity(path) == written:
            shown = "standard input" if os.fspath(path) == "-" else os.fspath(path)
            same = "" if shown == os.fspath(output) else f" ({shown})"
            raise CliError(
                f"{option} {os.fspath(output)} is {description}{same}: writing it would erase"
                f" it; give {option} another path",
                USAGE,
            )


def source_of(cls: type[Any]) -> list[Input]:
    """The module file an event class was loaded from, as an input (none for a built-in)."""
    module: ModuleType | None = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return []
    return [(f"the source of {cls.__module__} (where {cls.__qualname__} is declared)", file)]


def suite_files(run: Path) -> list[Input]:
    """The benchmark suite's Python files, as inputs."""
    return [
        (f"part of the benchmark suite ({path.name})", path) for path in run.parent.glob("*.py")
    ]
