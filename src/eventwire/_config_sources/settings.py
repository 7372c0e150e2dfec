"""A configuration value read from outside the code, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration value and where it came from (a variable, or ``file:line``)."""

    value: str
    origin: str


#: librdkafka-style keys (lower-cased) and their settings.
Settings = dict[str, Setting]
