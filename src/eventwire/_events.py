"""Event declaration: binds a frozen ``msgspec.Struct`` to a type name, version, topic and key.

The class stays a plain msgspec Struct. What eventwire needs to publish it lives in an
``EventSpec`` kept in a registry keyed by class, including the *validation type*: a shadow copy
of the struct built by ``_wire_types``. Decoding the encoded bytes with that type is the
reference validation.
"""

from __future__ import annotations

import builtins
import enum
import re
import typing
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, Final, TypeVar

import msgspec
import msgspec.inspect

from eventwire._errors import EventDefinitionError, EventDefinitionWarning
from eventwire._topics import topic_problem
from eventwire._wire_types import DECIMAL_STRING, FiniteDecimal, Shadower, type_text

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
    wire = Shadower(DECIMAL_STRING, "Validation")
    _SPECS[cls] = EventSpec(
        cls=cls,
        type=type_name,
        version=version,
        topic=topic,
        key=key,
        validation_type=wire.shadow(cls),
        check_type=Shadower(FiniteDecimal, "Check").shadow(cls),
        decimal_fields=frozenset(wire.decimal_fields),
        decimal_types=wire.decimal_types,
    )
    _BY_TYPE[(type_name, version)] = cls


def strict_validation_type(cls: type[Any]) -> type[Any]:
    """The validation type of an event class that also refuses unknown fields, at every
    depth (the validation type ignores them, as msgspec does by default)."""
    spec_of(cls)
    return Shadower(DECIMAL_STRING, "Strict", forbid_unknown=True).shadow(cls)


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
