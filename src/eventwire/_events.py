"""Event declaration: binds a frozen ``msgspec.Struct`` to a type name, version, topic and key.

The class stays a plain msgspec Struct. What eventwire needs to publish it lives in an
``EventSpec`` kept in a registry keyed by class, including the *validation type*: a shadow copy
of the struct (and of every nested struct) in which each ``datetime`` must carry a timezone.
Decoding the encoded bytes with that type is the reference validation.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import enum
import functools
import math
import operator
import re
import sys
import types
import typing
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Annotated, Any, Final, TypeVar

import msgspec
import msgspec.inspect

from eventwire._errors import EventDefinitionError, EventDefinitionWarning
from eventwire._topics import topic_problem

_T = TypeVar("_T")

_TYPE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
_KEY_TYPES: Final = (str, int, uuid.UUID, bytes)


class EventSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What eventwire knows about one event class.

    Attributes:
        cls: the event class.
        type: the CloudEvents ``type`` (e.g. ``order.placed``).
        version: schema version, a positive integer.
        topic: the declared topic (a publisher may remap it).
        key: the name of the field whose value is the Kafka key, or ``None`` for no key.
        validation_type: the shadow struct that validates the *encoded bytes* (typed decode):
            the reference definition of a valid event.
        check_type: the shadow struct that validates the *event object*
            (``msgspec.convert(event, check_type, from_attributes=True)``): the same rules,
            checked without decoding, and stricter about Python types (a ``bytes`` or ``UUID``
            in a ``str`` field would encode to a valid JSON string, but is refused here).
        decimal_fields: encoded names of fields (at any depth) holding ``Decimal`` values,
            used to word validation errors about them.
        decimal_types: the annotation of each of those fields as declared (``"Decimal | int"``):
            an error names it, not the validating type's string stand-in.
    """

    cls: type[Any]
    type: str
    version: int
    topic: str
    key: str | None
    validation_type: builtins.type[Any]
    check_type: builtins.type[Any]
    decimal_fields: frozenset[str] = frozenset()
    decimal_types: dict[str, str] = {}


_SPECS: dict[type[Any], EventSpec] = {}
#: The class declared last for each ``(type, version)``: consumers tell events apart by it.
_BY_TYPE: dict[tuple[str, int], type[Any]] = {}


def event(
    *, topic: str, key: str | None, type: str, version: int = 1
) -> Callable[[builtins.type[_T]], builtins.type[_T]]:
    """Declare a frozen ``msgspec.Struct`` as a publishable event.

    Args:
        topic: the Kafka topic events of this class go to (before any publisher remapping).
        key: name of the field used as the Kafka key (same key → same partition, in order),
            or ``None`` to publish without a key.
        type: the CloudEvents ``type`` attribute, e.g. ``"order.placed"``.
        version: the schema version, sent as the ``ce_eventversion`` header.

    Returns:
        A class decorator that returns the class unchanged (it is registered, not wrapped).

    Raises:
        EventDefinitionError: the class is not a frozen Struct, the key field does not exist
            or cannot be a key, or a ``datetime`` field cannot be made timezone-checked.

    Example::

        @eventwire.event(topic="orders", key="order_id", type="order.placed", version=1)
        class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
            order_id: str
            created_at: datetime
            total_price: Decimal
    """

    def bind(cls: builtins.type[_T]) -> builtins.type[_T]:
        _register(cls, topic=topic, key=key, type_name=type, version=version)
        return cls

    return bind


def spec_of(cls: type[Any]) -> EventSpec:
    """Return the spec of an event class, or raise ``EventDefinitionError``."""
    try:
        return _SPECS[cls]
    except Exception:  # noqa: BLE001 - KeyError, or a metaclass whose __hash__ raises
        raise EventDefinitionError(
            f"{cls.__qualname__} is not an event: decorate it with @eventwire.event(...)"
        ) from None


def is_event(cls: type[Any]) -> bool:
    """Whether a class was declared with ``@eventwire.event``."""
    return cls in _SPECS


def declared_events() -> list[EventSpec]:
    """The specs of every event class declared so far, in declaration order."""
    return list(_SPECS.values())


def event_batch(events: Iterable[Any], method: str) -> Sequence[Any]:
    """The events given to ``method`` (``publish_many``, ``accept_many``) as a sequence.

    Raises:
        TypeError: ``events`` is one event, or not an iterable of events; the message names
            the call to use instead.
    """
    if isinstance(events, Sequence) and not isinstance(events, str | bytes | bytearray):
        return events
    single = method.removesuffix("_many")
    if type(events) in _SPECS or isinstance(events, msgspec.Struct):
        name = type(events).__qualname__
        raise TypeError(
            f"{method}() takes an iterable of events, got one {name} event: use "
            f"{single}(event), or {method}([event])"
        )
    if isinstance(events, str | bytes | bytearray) or not isinstance(events, Iterable):
        raise TypeError(
            f"{method}() takes an iterable of events (a list, a generator...), "
            f"got {type(events).__name__}"
        )
    return list(events)


def not_an_event_message(value: object) -> str:
    """What ``publish`` says about an object that is not an event."""
    kind = type(value).__name__
    if isinstance(value, list | tuple | set | frozenset) or (
        isinstance(value, Iterable) and not isinstance(value, str | bytes | bytearray | dict)
    ):
        return (
            f"a {kind} is not an event: publish() and accept() take one event; "
            "publish_many(events) and accept_many(events) take several"
        )
    return f"{kind} is not an event: decorate it with @eventwire.event(...)"


def _register(cls: type[Any], *, topic: str, key: str | None, type_name: str, version: int) -> None:
    name = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
        raise EventDefinitionError(f"{name} must be a msgspec.Struct subclass")
    if not cls.__struct_config__.frozen:
        raise EventDefinitionError(
            f"{name} must be frozen: declare it as `class {cls.__name__}(msgspec.Struct, "
            "frozen=True)` so a published event cannot change afterwards"
        )
    if not (isinstance(type_name, str) and _TYPE_NAME.match(type_name)):
        raise EventDefinitionError(f"{name}: type {type_name!r} is not a valid event type name")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise EventDefinitionError(f"{name}: version must be a positive int, got {version!r}")
    problem = topic_problem(topic)
    if problem is not None:
        raise EventDefinitionError(
            f"{name}: topic {topic!r} is not a legal Kafka topic name: {problem}"
        )
    declared = _SPECS.get(cls)
    if declared is not None:  # e.g. two stacked decorators: the last one would win silently
        raise EventDefinitionError(
            f"{name} is already declared as an event (type {declared.type!r} version "
            f"{declared.version}, topic {declared.topic!r}); declare each class once"
        )
    _check_field_types(cls, name)
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    if key is not None:
        if key not in fields:
            raise EventDefinitionError(
                f"{name}: key field {key!r} does not exist (fields: {', '.join(fields)})"
            )
        if not _can_be_key(fields[key].type):
            raise EventDefinitionError(_key_type_message(name, key, fields[key].type))
    _check_type_version(cls, name, type_name, version)
    wire = _Shadower(_DECIMAL_STRING, "Validation")
    _SPECS[cls] = EventSpec(
        cls=cls,
        type=type_name,
        version=version,
        topic=topic,
        key=key,
        validation_type=wire.shadow(cls),
        check_type=_Shadower(FiniteDecimal, "Check").shadow(cls),
        decimal_fields=frozenset(wire.decimal_fields),
        decimal_types=wire.decimal_types,
    )
    _BY_TYPE[(type_name, version)] = cls


def strict_validation_type(cls: type[Any]) -> type[Any]:
    """The validation type of an event class that also refuses unknown fields, at every
    depth (the validation type ignores them, as msgspec does by default)."""
    spec_of(cls)
    return _Shadower(_DECIMAL_STRING, "Strict", forbid_unknown=True).shadow(cls)


def _check_type_version(cls: type[Any], name: str, type_name: str, version: int) -> None:
    """Warn of a second class with the same type and version but another schema: a consumer
    reads ``ce_type`` and ``ce_eventversion`` to decode, and could not tell the two apart.

    A warning, not an error: one process may load independent programs (a test run over
    several services' modules) whose types happen to share a name. The same class declared
    again (a reloaded module, a class built by a function called twice) and a class with the
    same schema are no mistake."""
    earlier = _BY_TYPE.get((type_name, version))
    if earlier is None or earlier is cls:
        return
    if (earlier.__module__, earlier.__qualname__) == (cls.__module__, cls.__qualname__):
        return
    if wire_schema(earlier) == wire_schema(cls):
        return
    warnings.warn(
        f"{name}: type {type_name!r} version {version} is already declared by "
        f"{earlier.__module__}.{earlier.__qualname__} with another schema; consumers tell "
        "events apart by type and version, so give this class a new version (or type)",
        EventDefinitionWarning,
        stacklevel=4,
    )


def wire_schema(cls: type[Any]) -> str:
    """The JSON Schema of ``cls`` as canonical text, without names, titles or descriptions:
    equal for two classes whose events look the same on the wire."""
    schema = msgspec.json.schema(cls)
    definitions = schema.pop("$defs", {})
    numbers: dict[str, str] = {}
    shapes: list[Any] = []

    def canonical(node: Any) -> Any:
        if isinstance(node, list):
            return [canonical(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in sorted(node.items()):
            if key in {"title", "description"}:
                continue
            if key == "$ref":
                ref = value.rpartition("/")[2]
                if ref not in numbers:
                    numbers[ref] = f"#{len(numbers)}"
                    shapes.append(None)
                    shapes[int(numbers[ref][1:])] = canonical(definitions.get(ref, {}))
                out[key] = numbers[ref]
            elif key == "required":
                out[key] = sorted(value)
            else:
                out[key] = canonical(value)
        return out

    root = canonical(schema)
    return msgspec.json.encode([root, shapes], order="sorted").decode()


def _check_field_types(cls: type[Any], name: str) -> None:
    """Refuse, at declaration, what every publish would fail on: a field type msgspec can
    neither encode nor validate without hooks (``object``, ``complex``, an arbitrary class),
    and a struct that contains itself (its validating copy cannot be built)."""
    try:
        info = msgspec.inspect.type_info(cls)
    except (NameError, TypeError) as exc:  # unresolvable annotation, unsupported generic
        raise EventDefinitionError(f"{name}: cannot read its field types: {exc}") from None

    def walk(node: Any, path: str, outer: frozenset[type[Any]]) -> None:
        if isinstance(node, msgspec.inspect.CustomType):
            raise EventDefinitionError(
                f"{name}: field {path} has type {node.cls.__qualname__}, which events cannot "
                "carry (no JSON or MessagePack form); use str, int, float, bool, Decimal, "
                "datetime, date, UUID, bytes, a msgspec.Struct, or lists/dicts/unions of them"
            )
        if isinstance(node, msgspec.inspect.StructType):
            if node.cls in outer:
                raise EventDefinitionError(
                    f"{name}: field {path} holds a {node.cls.__qualname__} inside a "
                    f"{node.cls.__qualname__}; recursive structs are not supported (nest a "
                    "bounded number of levels, or flatten them into a list with parent ids)"
                )
            outer = outer | {node.cls}
        if isinstance(node, msgspec.inspect.StructType | msgspec.inspect.DataclassType):
            for f in node.fields:
                walk(f.type, f"{path}.{f.name}", outer)
            return
        for value in msgspec.structs.astuple(node):
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, msgspec.inspect.Type):
                    walk(item, f"{path}[]", outer)

    walk(info, "$", frozenset())


def _can_be_key(tp: Any) -> bool:
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return isinstance(tp, type) and issubclass(tp, _KEY_TYPES) and tp is not bool


def _key_type_message(name: str, key: str, tp: Any) -> str:
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    refused = f"{name}: key field {key!r} must be str, int, UUID or bytes"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        # A StrEnum or IntEnum member is a str or an int: its value is the key.
        return (
            f"{refused}; {tp.__qualname__} is a plain Enum, whose members are neither: declare "
            f"it as `class {tp.__name__}(enum.StrEnum)` or `(enum.IntEnum)` so that the "
            "member's value is the key"
        )
    return f"{refused}, not {type_text(tp)}"


def type_text(tp: Any) -> str:
    """An annotation as the user wrote it, e.g. ``Decimal | int`` or ``list[OrderLine]``."""
    if tp is None or tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return type_text(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(arg) for arg in typing.get_args(tp))
    if origin is typing.Literal:
        return f"Literal[{', '.join(map(repr, typing.get_args(tp)))}]"
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else type_text(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', repr(origin))}[{args}]"
    return getattr(tp, "__qualname__", repr(tp))


_TZ_DATETIME: Final = Annotated[_dt.datetime, msgspec.Meta(tz=True)]
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


class _Unbounded:
    """The marker of ``UnboundedInt``: no default 64-bit bounds on this ``int``."""

    def __repr__(self) -> str:
        return "eventwire.UNBOUNDED"


_UNBOUNDED: Final = _Unbounded()
UnboundedInt = Annotated[int, _UNBOUNDED]
"""An ``int`` field without the default signed 64-bit range.

Every ``int`` field of an event is checked to -2**63 .. 2**63 - 1 (what a Java ``long`` or a
Go ``int64`` reads); annotate a field ``eventwire.UnboundedInt`` to carry Python's
arbitrary-precision integers instead, for consumers that read them. JSON only: MessagePack
stops at 64 bits. ``Annotated[eventwire.UnboundedInt, msgspec.Meta(ge=0)]`` adds constraints.
"""
_LOWER_BOUNDS: Final = ("ge", "gt")
_UPPER_BOUNDS: Final = ("le", "lt")


def _int64(tp: Any) -> Any:
    """``int`` (or ``Annotated[int, ...]``) bounded to the signed 64-bit range on every side
    its own ``Meta`` leaves open, unless it is ``UnboundedInt``: a Java ``long`` or a Go
    ``int64`` reads every value the check passes."""
    extras = typing.get_args(tp)[1:] if typing.get_origin(tp) is Annotated else ()
    if any(extra is _UNBOUNDED for extra in extras):
        return tp
    metas = [extra for extra in extras if isinstance(extra, msgspec.Meta)]
    lower = any(getattr(meta, name) is not None for meta in metas for name in _LOWER_BOUNDS)
    upper = any(getattr(meta, name) is not None for meta in metas for name in _UPPER_BOUNDS)
    if lower and upper:
        return tp
    bounds = msgspec.Meta(ge=None if lower else INT64_MIN, le=None if upper else INT64_MAX)
    return Annotated[tp, bounds]


# msgspec encodes Decimal as a string but would decode a JSON float into it; money must stay
# exact, so validation wants the string form, finite (no NaN or Infinity).
DECIMAL_PATTERN: Final = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_DECIMAL_STRING: Final = Annotated[str, msgspec.Meta(pattern=DECIMAL_PATTERN)]


class _FiniteDecimalType(type):
    def __instancecheck__(cls, value: object) -> bool:
        return type(value) is Decimal and value.is_finite()


class FiniteDecimal(metaclass=_FiniteDecimalType):
    """Stands for ``Decimal`` in check types: msgspec's ``convert`` would accept a float or an
    int for a ``Decimal`` field; through this marker only a finite ``Decimal`` passes."""


def finite_decimal_hook(tp: type[Any], value: Any) -> Any:
    """``dec_hook`` for ``msgspec.convert`` with check types."""
    if tp is FiniteDecimal:
        if type(value) is Decimal and value.is_finite():
            return value
        got = f"`{type(value).__name__}`" + (f" {value}" if isinstance(value, Decimal) else "")
        raise ValueError(f"{DECIMAL_EXPECTED}, got {got}")
    if tp is FiniteFloat:
        # convert lets an int stand for a float; a bool is no number here
        if _finite_number(value):
            return value
        shown = f"{value.bit_length()}-bit value" if type(value) is int else f"{value!r:.40}"
        raise ValueError(f"{FLOAT_EXPECTED}, got `{type(value).__name__}` {shown}")
    raise NotImplementedError(tp)


DECIMAL_EXPECTED: Final = "Expected a finite `Decimal`"
#: ``builtin_types`` for ``msgspec.convert`` with check types: a field of these types takes only
#: an instance. Otherwise ``convert`` parses a string into them, and an RFC 3339 string would
#: pass for a ``datetime`` (or hex digits for a ``UUID``) and be sent as given.
CHECK_BUILTIN_TYPES: Final = (
    _dt.datetime,
    _dt.date,
    _dt.time,
    uuid.UUID,
    bytes,
    bytearray,
    memoryview,
)


def _finite_number(value: object) -> bool:
    """A finite float, or an int a float can hold (a larger one, ``10**400``, would make
    ``math.isfinite`` raise ``OverflowError``); a bool is no number here."""
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is int and -_FLOAT_MAX <= value <= _FLOAT_MAX


_FLOAT_MAX: Final = sys.float_info.max


class _FiniteFloatType(type):
    def __instancecheck__(cls, value: object) -> bool:
        return _finite_number(value)  # convert lets an int stand for a float


class FiniteFloat(metaclass=_FiniteFloatType):
    """Stands for a bare ``float`` in check types: JSON has no NaN or Infinity (msgspec writes
    ``null``), so a non-finite float would reach Kafka as bytes its typed decoder refuses.
    A constrained ``Annotated[float, Meta(...)]`` keeps msgspec's own check (NaN fails its
    bounds)."""


FLOAT_EXPECTED: Final = "Expected a finite `float`"


class _Shadower:
    """Builds shadow copies of a struct and of every struct nested in it, memoised so that
    shared nested types are built once (recursive ones are refused before).

    Every ``datetime`` becomes timezone-required and every ``Decimal`` becomes
    ``decimal_type``; names, encode names, defaults, constraints and struct options stay.
    """

    def __init__(self, decimal_type: Any, suffix: str, *, forbid_unknown: bool = False) -> None:
        self.decimal_type = decimal_type
        self.suffix = suffix
        self.forbid_unknown = forbid_unknown
        self.memo: dict[type[Any], type[Any]] = {}
        self.decimal_fields: set[str] = set()
        self.decimal_types: dict[str, str] = {}
        self._found_decimal = False

    def shadow(self, cls: type[msgspec.Struct]) -> type[Any]:
        if cls in self.memo:
            return self.memo[cls]
        config = cls.__struct_config__
        hints = typing.get_type_hints(cls, include_extras=True)
        shadow_fields: list[Any] = []
        rename: dict[str, str] = {}
        for f in msgspec.structs.fields(cls):
            self._found_decimal = False
            declared = hints.get(f.name, f.type)
            tp = self.strict(declared)
            if self._found_decimal:
                self.decimal_fields.add(f.encode_name)
                self.decimal_types.setdefault(f.encode_name, type_text(declared))
            if f.default is not msgspec.NODEFAULT:
                shadow_fields.append((f.name, tp, f.default))
            elif f.default_factory is not msgspec.NODEFAULT:
                shadow_fields.append((f.name, tp, msgspec.field(default_factory=f.default_factory)))
            else:
                shadow_fields.append((f.name, tp))
            if f.name != f.encode_name:
                rename[f.name] = f.encode_name
        shadow = msgspec.defstruct(
            f"{cls.__name__}{self.suffix}",
            shadow_fields,
            kw_only=True,
            frozen=True,
            rename=rename or None,
            tag=config.tag,
            tag_field=config.tag_field,
            array_like=config.array_like,
            forbid_unknown_fields=self.forbid_unknown or config.forbid_unknown_fields,
            omit_defaults=config.omit_defaults,
            gc=False,
        )
        self.memo[cls] = shadow
        return shadow

    def strict(self, tp: Any) -> Any:
        if tp is _dt.datetime:
            return _TZ_DATETIME
        if tp is Decimal:
            self._found_decimal = True
            return self.decimal_type
        if tp is float and self.decimal_type is FiniteDecimal:  # check types only
            return FiniteFloat
        if tp is int:
            return _int64(tp)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            found = self._found_decimal
            shadow = self.shadow(tp)
            self._found_decimal = found
            return shadow
        origin = typing.get_origin(tp)
        if origin is None or origin is typing.Literal:
            return tp
        args = typing.get_args(tp)
        if origin is Annotated:
            if args[0] is float:  # constraints apply to a float, not to the marker
                return tp
            if args[0] is int:
                return _int64(tp)
            inner = self.strict(args[0])
            return tp if inner is args[0] else Annotated[(inner, *args[1:])]
        new_args = tuple(a if a is Ellipsis else self.strict(a) for a in args)
        if new_args == args:
            return tp
        if origin in (typing.Union, types.UnionType):
            return functools.reduce(operator.or_, new_args)
        try:
            return origin[new_args]
        except TypeError as exc:  # pragma: no cover - exotic generics
            raise EventDefinitionError(f"cannot check datetimes inside {tp!r}: {exc}") from exc
