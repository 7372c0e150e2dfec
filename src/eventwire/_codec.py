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
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

import msgspec
import msgspec.inspect

from eventwire._errors import EventDefinitionError, EventValidationError
from eventwire._events import (
    CHECK_BUILTIN_TYPES,
    DECIMAL_EXPECTED,
    EventSpec,
    finite_decimal_hook,
    is_event,
    not_an_event_message,
    spec_of,
)
from eventwire._validator import compile_check

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
        "ce_eventversion",
        "ce_type",
        "check",
        "check_type",
        "content_type",
        "convert_checks",
        "decode",
        "key_field",
        "reference_check",
        "spec",
        "topic",
    )

    def __init__(self, spec: EventSpec, encoding: Encoding, source: bytes, topic: str) -> None:
        self.spec = spec
        self.topic = topic
        self.key_field = spec.key
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
        self.ce_type: Final = spec.type.encode()
        self.ce_eventversion: Final = str(spec.version).encode()
        self.content_type: Final = CONTENT_TYPES[encoding].encode()


class EventCodec:
    """Encodes events for one publisher: payload, key, validation and CloudEvents headers.

    Validation checks the event object against its spec's check type (``msgspec.convert``
    with ``from_attributes``: types, ``Meta`` constraints, timezone-aware datetimes, finite
    ``Decimal`` money) before encoding it. A pre-check compiled once per event type
    (``_validator``) passes valid events without calling ``convert``; whatever it does not
    pass goes to ``convert``, which words the error, and what ``convert`` accepts then goes to
    the reference, the typed decode of the event's JSON form (``validate_bytes`` decodes
    encoded bytes the same way), which has the last word.

    Event ids (``ce_id``) are a random per-codec prefix plus a counter: unique, cheap, and
    assigned once so that a retried event keeps its id.
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
        self._id_prefix = uuid.UUID(bytes=os.urandom(16)).hex[:16] + "-"
        # next() on a count is atomic under the GIL: threads publishing through one sync
        # Publisher never draw the same id.
        self._ids = itertools.count(1)
        self._time_ms = -1
        self._time_second = -1
        self._time_prefix = b""
        self._time = b""

    def encode(
        self,
        event: Any,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> EncodedEvent:
        """Encode (and, if enabled, validate) one event.

        ``topic`` overrides the declared topic; either goes through the publisher's remapping.

        Raises:
            EventValidationError: the event does not match its schema; names the field path.
            EventDefinitionError: the object is not a declared event.
        """
        cls = type(event)
        codec = self._types.get(cls)
        if codec is None:
            if isinstance(event, type):  # else the error would name its metaclass
                name = event.__qualname__
                raise EventDefinitionError(
                    f"{name} is a class, not an event: publish an instance, {name}(...)"
                )
            if not is_event(cls):
                raise EventDefinitionError(not_an_event_message(event))
            codec = self._type_codec(cls)
        if self.validate and not codec.check(event):
            _full_check(codec, event)
        try:
            value = self._encode(event)
        except _ENCODE_ERRORS as exc:
            path = _unencodable_path(event, self._encode, "$")
            raise EventValidationError(codec.spec.type, path, str(exc)) from None
        if key is None:
            field = codec.key_field
            key_value = None if field is None else getattr(event, field)
            # str first: the common key type, without a function call
            key_bytes = key_value.encode() if type(key_value) is str else _key_bytes(key_value)
        elif isinstance(key, str):
            key_bytes = key.encode()
        elif isinstance(key, bytes):
            key_bytes = key
        else:  # refused here: librdkafka would raise after the event was counted in flight
            raise EventValidationError(
                codec.spec.type, "key", f"key must be str or bytes, not {type(key).__name__}"
            )
        event_id = f"{self._id_prefix}{next(self._ids):x}"
        now_ms = _time_ns() // 1_000_000
        ce_time = self._time if now_ms == self._time_ms else self._now(now_ms)
        # librdkafka's client encodes a str header value to UTF-8 itself, so ce_id is not
        # encoded here.
        out: dict[str, HeaderValue] = {
            "ce_specversion": b"1.0",
            "ce_id": event_id,
            "ce_source": self._source,
            "ce_type": codec.ce_type,
            "ce_eventversion": codec.ce_eventversion,
            "content-type": codec.content_type,
            "ce_time": ce_time,
        }
        record_headers: Headers = out
        if headers:  # names may repeat: pairs, in order
            record_headers = [*out.items(), *_user_headers(headers, codec.spec.type)]
        topic = codec.topic if topic is None else self._topics.get(topic) or self._topic(topic)
        return EncodedEvent(topic, key_bytes, value, record_headers, event_id, codec.spec.type)

    def validate_bytes(self, cls: type[Any], value: bytes) -> Any:
        """Decode ``value`` with the typed (timezone-checked) decoder of ``cls``."""
        codec = self._types.get(cls) or self._type_codec(cls)
        try:
            return codec.decode(value)
        except msgspec.ValidationError as exc:
            raise _validation_error(codec.spec, exc) from None

    def _topic(self, declared: str) -> str:
        resolved = self._topics[declared] = self._resolve_topic(declared)
        return resolved

    def _type_codec(self, cls: type[Any]) -> _TypeCodec:
        spec = spec_of(cls)
        codec = _TypeCodec(spec, self.encoding, self._source, self._topic(spec.topic))
        self._types[cls] = codec
        return codec

    def _now(self, now_ms: int) -> bytes:
        # Events produced in the same millisecond share the header, and formatting a datetime
        # (~1.5 µs hot, tens of µs on a cold cache: a lone publish pays it) happens once per
        # second; the milliseconds are appended.
        second, millis = divmod(now_ms, 1000)
        if second != self._time_second:
            moment = _dt.datetime.fromtimestamp(second, tz=_dt.UTC)
            self._time_prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.").encode()
            self._time_second = second
        value = self._time = b"%s%03dZ" % (self._time_prefix, millis)
        self._time_ms = now_ms  # after the value: another thread never pairs it with an old one
        return value


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
        try:
            data = _json_encode(event)
        except _ENCODE_ERRORS:
            return  # encoding it for the publisher fails too, and names the field
        codec.reference_check(data)
    except msgspec.ValidationError as exc:
        raise _validation_error(codec.spec, exc) from None


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


_ENCODE_ERRORS = (TypeError, ValueError, OverflowError)  # UnicodeEncodeError is a ValueError


def _unencodable_path(value: Any, encode: Callable[[Any], bytes], path: str) -> str:
    """The path of the value that ``encode`` fails on (error path only: re-encodes parts)."""
    if isinstance(value, msgspec.Struct):
        parts: Iterable[tuple[str, Any]] = (
            (f"{path}.{name}", getattr(value, name)) for name in value.__struct_fields__
        )
    elif isinstance(value, list | tuple):
        parts = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    elif isinstance(value, dict):
        parts = ((f"{path}[{key!r}]", item) for key, item in value.items())
    else:
        return path
    for part_path, part in parts:
        try:
            encode(part)
        except _ENCODE_ERRORS:
            return _unencodable_path(part, encode, part_path)
    return path


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
        return value.encode()
    if isinstance(value, bytes):
        return value
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


def header_items(headers: Headers) -> list[tuple[str, HeaderValue]]:
    """``headers`` as ``(name, value)`` pairs in record order."""
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


def _user_headers(headers: UserHeaders, event_type: str) -> list[tuple[str, HeaderValue]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, HeaderValue]] = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise EventValidationError(
                event_type,
                "headers",
                f"each header must be a (name, value) pair, got {item!r:.80}",
            )
        name, value = item
        if not isinstance(name, str):
            raise EventValidationError(event_type, "headers", f"header name {name!r} must be a str")
        if name.lower() in RESERVED_HEADERS:  # consumers may match header names in any case
            raise EventValidationError(
                event_type, "headers", f"header {name!r} is set by eventwire and cannot be given"
            )
        if value is not None and not isinstance(value, str | bytes):
            raise EventValidationError(
                event_type,
                "headers",
                f"header {name!r} must be str, bytes or None, not {type(value).__name__}",
            )
        out.append((name, value.encode() if isinstance(value, str) else value))
    return out
