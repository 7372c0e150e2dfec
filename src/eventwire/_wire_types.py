"""The types an event is checked against, and the shadow structs built from them.

An event class stays the user's plain msgspec Struct. For checking, eventwire builds shadow
copies of it (and of every nested struct) in which each ``datetime`` must carry a timezone,
each ``int`` stays within a signed 64-bit range unless declared ``UnboundedInt``, each
``Decimal`` is a finite decimal string on the wire (or a finite ``Decimal`` in a check type)
and a bare ``float`` is finite.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import operator
import sys
import types
import typing
import uuid
from decimal import Decimal
from typing import Annotated, Any, Final

import msgspec

from eventwire._errors import EventDefinitionError


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
DECIMAL_STRING: Final = Annotated[str, msgspec.Meta(pattern=DECIMAL_PATTERN)]


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


class Shadower:
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
