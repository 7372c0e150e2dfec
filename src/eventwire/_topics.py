"""Kafka's rules for topic names, checked wherever a name is given.

A name Kafka refuses would fail every publish to it, one event at a time, so it is refused
where it is given instead: an event declaration, ``PublisherConfig`` (prefix, map, per-call
topic), a ``DeadLetterPolicy``, the test kit's topic creation and the command line. The rules
are Kafka's own (``org.apache.kafka.common.internals.Topic.validate``).
"""

from __future__ import annotations

import re
from typing import Final

#: Kafka refuses longer names (a partition's directory name must fit in 255 bytes).
MAX_LENGTH: Final = 249
#: The rule as error messages state it.
RULE: Final = (
    f"a topic name has 1 to {MAX_LENGTH} characters from [a-zA-Z0-9._-] and is not '.' or '..'"
)
_ILLEGAL: Final = re.compile(r"[^A-Za-z0-9._-]")


def topic_problem(name: object) -> str | None:
    """Why ``name`` is not a legal Kafka topic name (with the rule), or ``None`` if it is."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not a str ({RULE})"
    if not name:
        return f"it is empty ({RULE})"
    if name in {".", ".."}:
        return f"{name!r} is reserved ({RULE})"
    if len(name) > MAX_LENGTH:
        return f"it has {len(name)} characters ({RULE})"
    illegal = sorted(set(_ILLEGAL.findall(name)))
    if illegal:
        listed = ", ".join(repr(ch) for ch in illegal)
        return f"{listed} {'is' if len(illegal) == 1 else 'are'} not allowed ({RULE})"
    return None


def is_legal_topic(name: object) -> bool:
    """Whether Kafka accepts ``name`` as a topic name."""
    return topic_problem(name) is None


def prefix_problem(prefix: object) -> str | None:
    """Why ``prefix`` cannot start a topic name, or ``None``; the full name is checked when a
    topic is resolved (a prefix may be empty, or ``"."``)."""
    if not isinstance(prefix, str):
        return f"it is a {type(prefix).__name__}, not a str"
    if len(prefix) > MAX_LENGTH - 1:
        return f"it has {len(prefix)} characters, leaving no room for a name ({RULE})"
    illegal = sorted(set(_ILLEGAL.findall(prefix)))
    if illegal:
        listed = ", ".join(repr(ch) for ch in illegal)
        return f"{listed} {'is' if len(illegal) == 1 else 'are'} not allowed ({RULE})"
    return None
