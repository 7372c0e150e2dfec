"""Encode + validate + CloudEvents headers: turns an event into the bytes Kafka receives.

Headers follow the CloudEvents 1.0 Kafka protocol binding in binary content mode: the payload is
the event's data, attributes travel as ``ce_*`` headers and ``content-type``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, Literal

import msgspec
import msgspec.inspect

from eventwire._errors import EventDefinitionError, EventValidationError
from eventwire._events import EventSpec, is_event, not_an_event_message, spec_of
from eventwire._validator import compile_check
from eventwire._wire_types import (
    CHECK_BUILTIN_TYPES,
    DECIMAL_EXPECTED,
    INT64_MAX,
    INT64_MIN,
    finite_decimal_hook,
)

Encoding = Literal["json", "msgpack"]
HeaderValue = str | bytes | None
#: A record's headers as ``produce()`` takes them: a dict when every name is unique (the
#: CloudEvents headers alone; a dict of atomic values is not tracked by the garbage collector,
#: a list of pairs is), else pairs in order. ``header_items`` reads either.
Headers = dict[str, HeaderValue] | list[tuple[str, HeaderValue]]
UserHeaders = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]

CONTENT_TYPES: Final[Mapping[str, str]] = {
    "json": "application/json",
    "msgpack": "application/msgpack",
}
_convert: Final = msgspec.convert
_json_encode: Final = msgspec.json.encode
_time_ns: Final = time.time_ns
_decimal_hook: Final = finite_decimal_hook
#: The 48-bit counter of a UUIDv7 ``ce_id``, and the bits of its random start (below 2**47:
#: 140 trillion ids before it wraps).
_COUNTER_MASK: Final = (1 << 48) - 1
_COUNTER_START_MASK: Final = (1 << 47) - 1
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


class EncodedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event ready for ``produce()``: what goes on the wire, plus what identifies it.

    ``headers`` is what ``produce()`` takes: a ``dict`` of name to value (the CloudEvents
    headers, in record order), or ``(name, value)`` pairs in order when the caller's headers
    were added (names may then repeat).
    """

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    event_id: str
    event_type: str


class _TypeCodec:
    """Per-event-class state, built once: the validating decoder and constant headers."""

    __slots__ = (
        "check",
        "check_type",
        "convert_checks",
        "decode",
        "event_type",
        "headers",
        "key_field",
        "key_name",
        "reference_check",
        "spec",
        "topic",
    )

    def __init__(self, spec: EventSpec, encoding: Encoding, source: bytes, topic: str) -> None:
        self.spec = spec
        self.event_type = spec.type
        self.topic = topic
        self.key_field = spec.key
        names = dict(
            zip(spec.cls.__struct_fields__, spec.cls.__struct_encode_fields__, strict=True)
        )
        self.key_name = names.get(spec.key, spec.key)  # as the payload (and a path) names it
        self.check_type = spec.check_type
        # The compiled pre-check passes valid events in a fraction of `convert`'s time; anything
        # it does not pass (or a type it cannot compile) goes to `convert`, which decides.
        self.check = compile_check(spec.cls, spec.check_type) or _never
        # `convert` cannot check some valid types: a union of a `Decimal` or `float` with
        # another type (its marker types must stand alone), and a union of tagged structs
        # (`from_attributes` looks for the tag as an attribute of the object). Such events are
        # checked by the reference alone: typed decode of their JSON form, whatever the
        # publisher's encoding, so NaN is refused the same way.
        self.convert_checks = _convert_can_check(spec.check_type)
        self.reference_check: Final = msgspec.json.Decoder(spec.validation_type).decode
        decoder: msgspec.json.Decoder[Any] | msgspec.msgpack.Decoder[Any]
        if encoding == "json":
            decoder = msgspec.json.Decoder(spec.validation_type)
        else:
            decoder = msgspec.msgpack.Decoder(spec.validation_type)
        self.decode = decoder.decode
        #: The CloudEvents headers in record order, built once: an event copies them and sets
        #: its ``ce_id`` and ``ce_time`` (a copy of a dict of atomic values is, like the
        #: original, not tracked by the collector).
        self.headers: Final[dict[str, HeaderValue]] = {
            "ce_specversion": b"1.0",
            "ce_id": "",
            "ce_source": source,
            "ce_type": spec.type.encode(),
            "ce_eventversion": str(spec.version).encode(),
            "content-type": CONTENT_TYPES[encoding].encode(),
            "ce_time": b"",
        }


class EventCodec:
    """Encodes events for one publisher: payload, key, validation and CloudEvents headers.

    Validation checks the event object against its spec's check type (``msgspec.convert``
    with ``from_attributes``: types, ``Meta`` constraints, timezone-aware datetimes, finite
    ``Decimal`` money) before encoding it. A pre-check compiled once per event type
    (``_validator``) passes valid events without calling ``convert``; whatever it does not
    pass goes to ``convert``, which words the error, and what ``convert`` accepts then goes to
    the reference, the typed decode of the event's JSON form (``validate_bytes`` decodes
    encoded bytes the same way), which has the last word.

    Event ids (``ce_id``) are UUIDv7 (RFC 9562): the Unix time in milliseconds, then 26 bits
    drawn at random per codec, then a 48-bit counter that starts at a random value. Unique
    (the counter never repeats within a codec; the random bits and start keep codecs apart),
    ordered by time, cheap (the first 24 characters change once a millisecond), and assigned
    once so that a retried event keeps its id.
    """

    def __init__(
        self,
        *,
        encoding: Encoding = "json",
        validate: bool = True,
        source: str = "/eventwire",
        resolve_topic: Callable[[str], str] = str,
    ) -> None:
        if encoding not in CONTENT_TYPES:
            raise ValueError(f"encoding must be 'json' or 'msgpack', not {encoding!r}")
        self.encoding: Final = encoding
        self.validate: Final = validate
        self._source = source.encode()
        encoder = msgspec.json.Encoder() if encoding == "json" else msgspec.msgpack.Encoder()
        self._encode = encoder.encode
        self._types: dict[type[Any], _TypeCodec] = {}
        self._resolve_topic = resolve_topic
        self._topics: dict[str, str] = {}
        seed = int.from_bytes(os.urandom(10))
        # version 7 with 12 random bits; the variant (0b10) with 14 random bits
        self._uuid_middle = f"-7{seed & 0xFFF:03x}-{0x8000 | (seed >> 12) & 0x3FFF:04x}-"
        # next() on a count is atomic under the GIL: threads publishing through one sync
        # Publisher never draw the same id.
        self._ids = itertools.count((seed >> 26) & _COUNTER_START_MASK)
        #: The millisecond the id prefix and ``ce_time`` below were made for.
        self._tick = -1
        self._id_prefix = ""
        self._time = b""
        self._time_second = -1
        self._time_prefix = b""

    def encode(
        self,
        event: Any,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> EncodedEvent:
        """Encode (and, if enabled, validate) one event.

        ``topic`` overrides the declared topic; either goes through the publisher's remapping.

        Whatever goes wrong while the event is checked, encoded, keyed or given its headers
        is this event's ``EventValidationError`` (the original exception, if any, is its
        ``__cause__``): an exception from msgspec, from a value's own ``__hash__``, ``__str__``
        or ``utcoffset``, a value nested too deeply, an argument of the wrong type. Nothing
        else escapes, so a batch can make it that event's outcome.

        Raises:
            EventValidationError: the event does not match its schema, or cannot be encoded;
                ``path`` names the field (``$`` if unknown), or ``key``, ``headers``,
                ``topic`` for those arguments.
            EventDefinitionError: the object is not a declared event.
            ConfigError: ``topic`` is not a legal Kafka topic name (after remapping).
        """
        cls = type(event)
        try:
            codec = self._types.get(cls)
        except Exception:  # noqa: BLE001 - a metaclass whose __hash__ raises: spec_of says why
            codec = None
        if codec is None:
            if isinstance(event, type):  # else the error would name its metaclass
                name = event.__qualname__
                raise EventDefinitionError(
                    f"{name} is a class, not an event: publish an instance, {name}(...)"
                )
            if not is_event(cls):
                raise EventDefinitionError(not_an_event_message(event))
            codec = self._type_codec(cls)
        try:
            if self.validate and not codec.check(event):
                _full_check(codec, event)
            value = self._encode(event)
        except EventValidationError:
            raise
        except Exception as exc:  # the rule: every failure is the event's
            raise _unencodable(codec.event_type, event, self._encode, exc) from exc
        try:
            if key is None:
                field = codec.key_field
                key_value = None if field is None else getattr(event, field)
                # str first: the common key type, without a function call
                key_bytes = key_value.encode() if type(key_value) is str else _key_bytes(key_value)
            else:
                key_bytes = _key_argument(key, codec.event_type)
        except EventValidationError:
            raise
        except Exception as exc:  # e.g. a lone surrogate, a raising __str__
            path = "key" if key is not None else f"$.{codec.key_name}"
            reason = f"the key cannot be encoded: {_reason(exc)}"
            raise EventValidationError(codec.event_type, path, reason) from exc
        user_headers = None if headers is None else _record_headers(headers, codec.event_type)
        resolved = codec.topic if topic is None else self._topic_of(topic, codec.event_type)
        if _time_ns() // 1_000_000 != self._tick:
            self._new_tick()
        event_id = f"{self._id_prefix}{next(self._ids) & _COUNTER_MASK:012x}"
        # librdkafka's client encodes a str header value to UTF-8 itself, so ce_id is not
        # encoded here.
        out = codec.headers.copy()
        out["ce_id"] = event_id
        out["ce_time"] = self._time
        record_headers: Headers = out
        if user_headers is not None:  # names may repeat: pairs, in order
            user_headers[:0] = out.items()
            record_headers = user_headers
        return EncodedEvent(resolved, key_bytes, value, record_headers, event_id, codec.event_type)

    def validate_bytes(self, cls: type[Any], value: bytes) -> Any:
        """Decode ``value`` with the typed (timezone-checked) decoder of ``cls``."""
        codec = self._types.get(cls) or self._type_codec(cls)
        try:
            return codec.decode(value)
        except msgspec.ValidationError as exc:
            raise _validation_error(codec.spec, exc) from exc
        except Exception as exc:  # malformed bytes, nesting beyond the limit
            raise EventValidationError(codec.spec.type, "$", _reason(exc)) from exc

    def _topic_of(self, topic: object, event_type: str) -> str:
        """The topic a ``topic`` argument names (resolved once per name)."""
        if type(topic) is str:
            return self._topics.get(topic) or self._topic(topic)
        return self._topic(_topic_argument(topic, event_type))

    def _topic(self, declared: str) -> str:
        resolved = self._topics[declared] = self._resolve_topic(declared)
        return resolved

    def _type_codec(self, cls: type[Any]) -> _TypeCodec:
        spec = spec_of(cls)
        codec = _TypeCodec(spec, self.encoding, self._source, self._topic(spec.topic))
        self._types[cls] = codec
        return codec

    def _new_tick(self) -> None:
        """A new millisecond: the prefix of the ids and ``ce_time`` made in it."""
        # Formatting a datetime (~1.5 us hot, tens of us on a cold cache: a lone publish pays
        # it) happens once a second; the milliseconds are appended. Threads may pair a new
        # ``ce_time`` with the previous id prefix: the ids stay unique (the counter is shared).
        now_ms = _time_ns() // 1_000_000
        second, millis = divmod(now_ms, 1000)
        if second != self._time_second:
            moment = _dt.datetime.fromtimestamp(second, tz=_dt.UTC)
            self._time_prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.").encode()
            self._time_second = second
        self._time = b"%s%03dZ" % (self._time_prefix, millis)
        self._id_prefix = f"{now_ms >> 16:08x}-{now_ms & 0xFFFF:04x}{self._uuid_middle}"
        self._tick = now_ms  # last: another thread never pairs it with older values


def _full_check(codec: _TypeCodec, event: Any) -> None:
    """Decide whether ``event`` is valid; raise ``EventValidationError`` if not."""
    try:
        if codec.convert_checks:
            _convert(
                event,
                codec.check_type,
                from_attributes=True,
                dec_hook=_decimal_hook,
                builtin_types=CHECK_BUILTIN_TYPES,
            )
        # What `convert` accepts here, the pre-check did not pass: the reference decides too,
        # because `convert` is laxer than the typed decoder in places (it lets a `Decimal`
        # stand for a constrained float, which would reach Kafka as a JSON string).
        codec.reference_check(_json_encode(event))
    except msgspec.ValidationError as exc:
        raise _validation_error(codec.spec, exc) from exc
    except Exception as exc:  # a value that raises, or JSON cannot carry
        raise _unencodable(codec.spec.type, event, _json_encode, exc) from exc


def _convert_can_check(check_type: type[Any]) -> bool:
    try:
        info = msgspec.inspect.type_info(check_type)
    except TypeError:  # msgspec refuses a marker type in a union, e.g. `FiniteFloat | int`
        return False
    return not _convert_cannot_check(info, set())


def _convert_cannot_check(node: Any, seen: set[type[Any]]) -> bool:
    """Whether the type holds what ``convert`` cannot check: a marker type (``FiniteFloat``,
    ``FiniteDecimal``) in a union beside anything but ``None``, a union of (tagged) structs,
    or a field that may be ``msgspec.UNSET`` (an ``UNSET`` attribute fails ``convert``)."""
    if isinstance(node, msgspec.inspect.UnionType):
        kinds = [t for t in node.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(kinds) > 1 and any(isinstance(t, msgspec.inspect.CustomType) for t in kinds):
            return True
        if sum(isinstance(t, msgspec.inspect.StructType) for t in kinds) > 1:
            return True
    if isinstance(node, msgspec.inspect.StructType):
        if node.cls in seen:
            return False
        seen.add(node.cls)
        return any(_may_be_unset(f) or _convert_cannot_check(f.type, seen) for f in node.fields)
    for value in msgspec.structs.astuple(node):
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, msgspec.inspect.Type) and _convert_cannot_check(item, seen):
                return True
    return False


def _may_be_unset(field: msgspec.inspect.Field) -> bool:
    # `inspect` drops `UnsetType` from the type; a field defaulting to UNSET shows as optional
    # with neither a default nor a factory.
    return (
        not field.required
        and field.default is msgspec.NODEFAULT
        and field.default_factory is msgspec.NODEFAULT
    )


def spec_for(event: Any) -> EventSpec:
    """The spec of an event instance (raises ``EventDefinitionError`` for a non-event)."""
    return spec_of(type(event))


def _validation_error(spec: EventSpec, exc: msgspec.ValidationError) -> EventValidationError:
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


def _reason(exc: BaseException) -> str:
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


def _unencodable(
    event_type: str, event: Any, encode: Callable[[Any], bytes], exc: BaseException
) -> EventValidationError:
    """The error for an event that raised ``exc`` while checked or encoded: the path of the
    value that ``encode`` (or the check of an aware time) fails on, else ``$``."""

    def probe(value: Any) -> None:
        encode(value)
        if isinstance(value, _dt.datetime | _dt.time):
            value.utcoffset()  # what the check calls; it raises for an offset beyond a day

    return EventValidationError(event_type, _failing_path(event, probe, "$", 0), _reason(exc))


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


def _never(event: Any) -> bool:
    return False


def _key_bytes(value: Any) -> bytes | None:
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
        found = _key_bytes(value)
        if found is not None:
            return found
    raise TypeError(
        f"a key is a str, int, UUID or bytes (the key field's value, or the key bytes), "
        f"not {type(value).__name__}"
    )


def _key_argument(key: object, event_type: str) -> bytes:
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


def _topic_argument(topic: object, event_type: str) -> str:
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


def _record_headers(headers: UserHeaders, event_type: str) -> list[tuple[str, HeaderValue]] | None:
    """The caller's headers as pairs (``None`` if empty); whatever reading them raises is the
    event's ``EventValidationError``."""
    try:
        return _user_headers(headers, event_type) if headers else None
    except EventValidationError:
        raise
    except Exception as exc:  # a mapping or iterable that raises
        reason = f"the headers cannot be read: {_reason(exc)}"
        raise EventValidationError(event_type, "headers", reason) from exc


def _user_headers(headers: UserHeaders, event_type: str) -> list[tuple[str, HeaderValue]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, HeaderValue]] = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise EventValidationError(
                event_type,
                "headers",
                f"each header must be a (name, value) pair, got {_shown(item)}",
            )
        name, value = item
        if not isinstance(name, str):
            raise EventValidationError(
                event_type, "headers", f"header name {_shown(name)} must be a str"
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


def _shown(value: object) -> str:
    """A short repr of a caller's value for an error message (its ``__repr__`` may raise)."""
    try:
        return f"{value!r:.80}"
    except Exception:  # noqa: BLE001
        return f"a {type(value).__name__}"
