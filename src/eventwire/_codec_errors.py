"""The ``EventValidationError`` of an event the codec refuses: msgspec's error worded for the
event's own types, and the path of a value that cannot be encoded (error paths only)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator
from typing import Any, Final

import msgspec

from eventwire._errors import EventValidationError
from eventwire._events import EventSpec
from eventwire._wire_types import DECIMAL_EXPECTED, INT64_MAX, INT64_MIN


def validation_error(spec: EventSpec, exc: msgspec.ValidationError) -> EventValidationError:
    message = str(exc)
    reason, sep, path = message.rpartition(" - at `")
    if not sep:
        return EventValidationError(spec.type, "$", message)
    path = path.rstrip("`")
    if path.startswith(_IN_KEY):  # msgspec: "... - at `key` in `$.counts`"
        path = path.removeprefix(_IN_KEY)
        reason += " (a dict key)"
    if reason.endswith(_INT64_BOUNDS):
        reason += _INT64_HINT
    field = _last_field(path)
    if field in spec.decimal_fields and reason.startswith("Expected `"):
        # The validating type stands a string in for each Decimal: name the user's type.
        got = reason.partition(", got ")[2]
        declared = spec.decimal_types.get(field)
        if reason.startswith("Expected `str`"):
            reason = DECIMAL_EXPECTED + (f", got {got}" if got else "")
        elif declared is not None and not path.endswith("]"):
            reason = f"Expected `{declared}`" + (f", got {got}" if got else "")
    return EventValidationError(spec.type, path, reason)


_IN_KEY: Final = "key` in `"
_INT64_BOUNDS: Final = (f"<= {INT64_MAX}", f">= {INT64_MIN}")
_INT64_HINT: Final = (
    " (the signed 64-bit range, which Java and Go consumers read; annotate the field "
    "eventwire.UnboundedInt for larger integers)"
)
#: Exceptions whose message says it all (msgspec's own: "Encoding objects of type X is
#: unsupported", "surrogates not allowed", "can't serialize ints < -2**63 ..."); anything
#: else is named with its type, from user code as it may be.
_PLAIN_MESSAGE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.MsgspecError)
_REASON_CHARS: Final = 300
#: How deep ``_failing_path`` looks for the value that fails (error path only).
_LOCATE_DEPTH: Final = 32


def reason_of(exc: BaseException) -> str:
    """What ``exc`` says, bounded and printable (its ``__str__`` is user code too)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to encode (beyond Python's recursion limit)"
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = ""
    if not isinstance(exc, _PLAIN_MESSAGE_ERRORS) or not text:
        name = type(exc).__name__
        text = f"{name}: {text}" if text else f"{name} raised"
    if len(text) > _REASON_CHARS:
        text = text[: _REASON_CHARS - 3] + "..."
    # a lone surrogate in a message would make printing or encoding the error fail in turn
    return text.encode("utf-8", "backslashreplace").decode()


def unencodable(
    event_type: str, event: Any, encode: Callable[[Any], bytes], exc: BaseException
) -> EventValidationError:
    """The error for an event that raised ``exc`` while checked or encoded: the path of the
    value that ``encode`` (or the check of an aware time) fails on, else ``$``."""

    def probe(value: Any) -> None:
        encode(value)
        if isinstance(value, _dt.datetime | _dt.time):
            value.utcoffset()  # what the check calls; it raises for an offset beyond a day

    return EventValidationError(event_type, _failing_path(event, probe, "$", 0), reason_of(exc))


def _failing_path(value: Any, probe: Callable[[Any], object], path: str, depth: int) -> str:
    """The path of the value that ``probe`` (or hashing, for a set member or dict key) fails
    on, else ``path`` (error path only: probes every part). A value nested too deeply is
    named where it starts."""
    return _failing_part(value, probe, path, depth) or path


def _failing_part(value: Any, probe: Callable[[Any], object], path: str, depth: int) -> str | None:
    if depth >= _LOCATE_DEPTH:
        return None
    try:
        for part_path, part in _parts(value, path):
            try:
                probe(part)
            except RecursionError:
                return part_path
            except Exception:  # noqa: BLE001 - whatever made the whole fail
                return _failing_part(part, probe, part_path, depth + 1) or part_path
            # A part that passes may still hold what the check refused (an aware datetime's
            # utcoffset() is called by the check, not by every encoder).
            found = _failing_part(part, probe, part_path, depth + 1)
            if found is not None:
                return found
    except Exception:  # noqa: BLE001 - reading the container failed: here is the culprit
        return path
    return None


def _parts(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield f"{path}.{name}", getattr(value, name)
    elif type(value) in (list, tuple):
        for index, item in enumerate(value):
            yield f"{path}[{index}]", item
    elif type(value) is dict:
        for key, item in value.items():
            hash(key)
            yield f"{path}[{_key_text(key)}]", key
            yield f"{path}[{_key_text(key)}]", item
    elif type(value) in (set, frozenset):
        for item in value:
            hash(item)
            yield f"{path}[...]", item


def _key_text(key: Any) -> str:
    if type(key) is str:
        return repr(key) if len(key) <= _REASON_CHARS else repr(key[:_REASON_CHARS]) + "..."
    if type(key) is int and key.bit_length() <= 64:  # a huge one has no repr
        return repr(key)
    return "..."


def _last_field(path: str) -> str:
    return path.rstrip("]").rpartition(".")[2].partition("[")[0]


def shown(value: object) -> str:
    """A short repr of a caller's value for an error message (its ``__repr__`` may raise)."""
    try:
        return f"{value!r:.80}"
    except Exception:  # noqa: BLE001
        return f"a {type(value).__name__}"
