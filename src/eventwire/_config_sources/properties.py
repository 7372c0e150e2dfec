"""Java properties files (``client.properties``): ``key=value`` entries with their line."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from eventwire._config_sources.settings import Setting, Settings
from eventwire._errors import ConfigError


def properties_settings(path: str | os.PathLike[str]) -> Settings:
    """The entries of a Java properties file (``key=value``, ``key: value`` or ``key value``;
    ``#`` and ``!`` comments; a trailing backslash continues a line; Java's escapes).

    Raises:
        ConfigError: the file cannot be read, or a key appears twice.
    """
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name} is not UTF-8 text") from None
    settings: Settings = {}
    for number, key, value in _logical_lines(text):
        origin = f"{name}:{number}"
        if not key:
            continue
        lowered = key.lower()
        if lowered in settings:
            raise ConfigError(
                f"{origin}: {key} is given twice (first at {settings[lowered].origin})"
            )
        settings[lowered] = Setting(value, origin)
    return settings


def _logical_lines(text: str) -> list[tuple[int, str, str]]:
    """``(first line number, key, value)`` of every entry, escapes resolved."""
    entries: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index].lstrip()
        index += 1
        if not line or line[0] in "#!":
            continue
        while _continues(line) and index < len(lines):
            line = line[:-1] + lines[index].lstrip()
            index += 1
        if _continues(line):
            line = line[:-1]
        key, value = _split_entry(line)
        entries.append((number, _unescape(key), _unescape(value)))
    return entries


def _continues(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _split_entry(line: str) -> tuple[str, str]:
    position = 0
    while position < len(line):
        char = line[position]
        if char == "\\":
            position += 2
            continue
        if char in "=: \t\f":
            break
        position += 1
    key = line[:position]
    rest = line[position:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


_ESCAPES: Final = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char != "\\" or position + 1 >= len(text):
            out.append(char)
            position += 1
            continue
        escaped = text[position + 1]
        if escaped == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[position + 2 : position + 6]):
            out.append(chr(int(text[position + 2 : position + 6], 16)))
            position += 6
            continue
        out.append(_ESCAPES.get(escaped, escaped))
        position += 2
    return "".join(out)
