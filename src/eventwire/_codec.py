"""Encode + validate + CloudEvents headers: turns an event into the bytes Kafka receives.

Headers follow the CloudEvents 1.0 Kafka protocol binding in binary content mode: the payload is
the event's data, attributes travel as ``ce_*`` headers and ``content-type``.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgspec
import msgspec.inspect

from eventwire._codec_arguments import (
    Headers,
    HeaderValue,
    UserHeaders,
    header_items,
    key_argument,
    key_bytes,
    key_value_bytes,
    record_headers,
    topic_argument,
)
from eventwire._codec_errors import reason_of, unencodable, validation_error
from eventwire._errors import EventDefinitionError, EventValidationError
from eventwire._events import EventSpec, is_event, not_an_event_message, spec_of
from eventwire._validator import compile_check
from eventwire._wire_types import (
    CHECK_BUILTIN_TYPES,
    finite_decimal_hook,
)

__all__ = [
    "CONTENT_TYPES",
    "EncodedEvent",
    "Encoding",
    "EventCodec",
    "HeaderValue",
    "Headers",
    "UserHeaders",
    "header_items",
    "key_bytes",
    "spec_for",
]

Encoding = Literal["json", "msgpack"]

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
            raise unencodable(codec.event_type, event, self._encode, exc) from exc
        try:
            if key is None:
                field = codec.key_field
                key_value = None if field is None else getattr(event, field)
                # str first: the common key type, without a function call
                key_data = (
                    key_value.encode() if type(key_value) is str else key_value_bytes(key_value)
                )
            else:
                key_data = key_argument(key, codec.event_type)
        except EventValidationError:
            raise
        except Exception as exc:  # e.g. a lone surrogate, a raising __str__
            path = "key" if key is not None else f"$.{codec.key_name}"
            reason = f"the key cannot be encoded: {reason_of(exc)}"
            raise EventValidationError(codec.event_type, path, reason) from exc
        user_headers = None if headers is None else record_headers(headers, codec.event_type)
        resolved = codec.topic if topic is None else self._topic_of(topic, codec.event_type)
        if _time_ns() // 1_000_000 != self._tick:
            self._new_tick()
        event_id = f"{self._id_prefix}{next(self._ids) & _COUNTER_MASK:012x}"
        # librdkafka's client encodes a str header value to UTF-8 itself, so ce_id is not
        # encoded here.
        out = codec.headers.copy()
        out["ce_id"] = event_id
        out["ce_time"] = self._time
        all_headers: Headers = out
        if user_headers is not None:  # names may repeat: pairs, in order
            user_headers[:0] = out.items()
            all_headers = user_headers
        return EncodedEvent(resolved, key_data, value, all_headers, event_id, codec.event_type)

    def validate_bytes(self, cls: type[Any], value: bytes) -> Any:
        """Decode ``value`` with the typed (timezone-checked) decoder of ``cls``."""
        codec = self._types.get(cls) or self._type_codec(cls)
        try:
            return codec.decode(value)
        except msgspec.ValidationError as exc:
            raise validation_error(codec.spec, exc) from exc
        except Exception as exc:  # malformed bytes, nesting beyond the limit
            raise EventValidationError(codec.spec.type, "$", reason_of(exc)) from exc

    def _topic_of(self, topic: object, event_type: str) -> str:
        """The topic a ``topic`` argument names (resolved once per name)."""
        if type(topic) is str:
            return self._topics.get(topic) or self._topic(topic)
        return self._topic(topic_argument(topic, event_type))

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
        raise validation_error(codec.spec, exc) from exc
    except Exception as exc:  # a value that raises, or JSON cannot carry
        raise unencodable(codec.spec.type, event, _json_encode, exc) from exc


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


def _never(event: Any) -> bool:
    return False
