"""The arguments of an encode beside the event: its key (from the key field or ``key=``),
``topic=``, and the caller's headers, each checked (a bad one is the event's
``EventValidationError``, never librdkafka's error after the event was counted in flight)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from eventwire._codec_errors import reason_of, shown
from eventwire._errors import EventValidationError

HeaderValue = str | bytes | None
#: A record's headers as ``produce()`` takes them: a dict when every name is unique (the
#: CloudEvents headers alone; a dict of atomic values is not tracked by the garbage collector,
#: a list of pairs is), else pairs in order. ``header_items`` reads either.
Headers = dict[str, HeaderValue] | list[tuple[str, HeaderValue]]
UserHeaders = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]

RESERVED_HEADERS: Final = frozenset(
    {
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_eventversion",
        "content-type",
    }
)


def key_value_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, enum.Enum):  # the key is what the payload carries: the member's value
        value = value.value
    if isinstance(value, str):
        return str.encode(value)  # not a subclass's own encode()
    if isinstance(value, bytes):
        return bytes(memoryview(value))
    if type(value) is int:
        return int.__repr__(value).encode()
    return str(value).encode()


def key_bytes(value: object) -> bytes:
    """The record key an event whose key field holds ``value`` gets (``value`` may also be
    the key bytes themselves): what to compare records' keys with.

    Raises:
        TypeError: ``value`` is of no key type (``str``, ``int``, ``UUID``, ``bytes``, a
            ``StrEnum``/``IntEnum`` member).
    """
    if isinstance(value, str | bytes | int | uuid.UUID) and not isinstance(value, bool):
        found = key_value_bytes(value)
        if found is not None:
            return found
    raise TypeError(
        f"a key is a str, int, UUID or bytes (the key field's value, or the key bytes), "
        f"not {type(value).__name__}"
    )


def key_argument(key: object, event_type: str) -> bytes:
    """A ``key=`` argument as bytes: a subclass of ``str`` or ``bytes`` is taken as its
    plain value; anything else is refused here (librdkafka would raise after the event was
    counted in flight)."""
    if type(key) is bytes:
        return key
    if isinstance(key, str):
        return str.encode(key)
    if isinstance(key, bytes):
        return bytes(memoryview(key))
    raise EventValidationError(
        event_type, "key", f"key must be str or bytes, not {type(key).__name__}"
    )


def topic_argument(topic: object, event_type: str) -> str:
    """A ``topic=`` argument that is not exactly ``str``: a subclass is taken as its plain
    value (its own ``__hash__`` and ``__eq__`` never run); anything else is refused."""
    if isinstance(topic, str):
        return str.__str__(topic)
    raise EventValidationError(
        event_type, "topic", f"topic must be str, not {type(topic).__name__}"
    )


def header_items(headers: Headers) -> list[tuple[str, HeaderValue]]:
    """``headers`` as ``(name, value)`` pairs in record order."""
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


def record_headers(headers: UserHeaders, event_type: str) -> list[tuple[str, HeaderValue]] | None:
    """The caller's headers as pairs (``None`` if empty); whatever reading them raises is the
    event's ``EventValidationError``."""
    try:
        return _user_headers(headers, event_type) if headers else None
    except EventValidationError:
        raise
    except Exception as exc:  # a mapping or iterable that raises
        reason = f"the headers cannot be read: {reason_of(exc)}"
        raise EventValidationError(event_type, "headers", reason) from exc


def _user_headers(headers: UserHeaders, event_type: str) -> list[tuple[str, HeaderValue]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, HeaderValue]] = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise EventValidationError(
                event_type,
                "headers",
                f"each header must be a (name, value) pair, got {shown(item)}",
            )
        name, value = item
        if not isinstance(name, str):
            raise EventValidationError(
                event_type, "headers", f"header name {shown(name)} must be a str"
            )
        name = str.__str__(name)  # a subclass's own lower() or encode() never runs
        if name.lower() in RESERVED_HEADERS:  # consumers may match header names in any case
            raise EventValidationError(
                event_type, "headers", f"header {name!r} is set by eventwire and cannot be given"
            )
        if not _utf8(name):  # librdkafka encodes the name itself, and would raise in produce()
            raise EventValidationError(
                event_type, "headers", f"header name {name!r} is not valid UTF-8"
            )
        if isinstance(value, str):
            if not _utf8(value):
                raise EventValidationError(
                    event_type, "headers", f"header {name!r} has a value that is not valid UTF-8"
                )
            value = str.encode(value)
        elif isinstance(value, bytes):
            value = bytes(memoryview(value))
        elif value is not None:
            raise EventValidationError(
                event_type,
                "headers",
                f"header {name!r} must be str, bytes or None, not {type(value).__name__}",
            )
        out.append((name, value))
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (e.g. from os.fsdecode)
        return False
    return True
