"""Compiled event checks: a fast yes/no pre-check of an event object, generated once per type.

``msgspec.convert(event, check_type, from_attributes=True)`` is the check that decides (and
words) every verdict; it costs ~2.5-3.5 µs for a 650-byte order. The function built here
answers the common case — a valid event — in a fraction of that by testing exact Python types
and ``Meta`` constraints with straight-line code generated from ``msgspec.inspect``.

It is a *filter*, never a verdict of its own: ``True`` only for values ``convert`` accepts;
``False`` means "ask ``convert``", which then refuses with its own message (so paths and
reasons are exactly msgspec's) or, for inputs the filter is stricter about (a ``tuple`` for a
``list``, an ``int`` for a ``float``, a ``str`` subclass), accepts. Types it does not model
make ``compile_check`` return ``None``: the codec then always calls ``convert``.
"""

from __future__ import annotations

import datetime as _dt
import keyword
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from msgspec import inspect as mi

from eventwire._wire_types import FiniteDecimal, FiniteFloat

Check = Callable[[Any], bool]

#: Containers checked element by element: inspect node → the exact Python type accepted.
_SEQUENCES: Final[dict[type[Any], type[Any]]] = {
    mi.ListType: list,
    mi.VarTupleType: tuple,
    mi.SetType: set,
    mi.FrozenSetType: frozenset,
}
#: Leaves checked by exact type only.
_EXACT: Final[dict[type[Any], type[Any]]] = {
    mi.BoolType: bool,
    mi.UUIDType: uuid.UUID,
    mi.DateType: _dt.date,
}
#: Union members a value is dispatched to by its exact type (no float: msgspec lets an
#: ``int`` go to a ``float`` member, which a dispatch on exact types would not model).
_DISPATCHABLE: Final[dict[type[Any], type[Any]]] = {
    mi.StrType: str,
    mi.IntType: int,
    mi.BoolType: bool,
    mi.UUIDType: uuid.UUID,
    mi.DateTimeType: _dt.datetime,
    mi.StructType: object,  # the member's own class
    mi.ListType: list,
    mi.DictType: dict,
}


class _Unsupported(Exception):
    """A type the generator does not model; the caller falls back to ``convert``."""


class _PatternMatches(dict[str, bool]):
    """``re.search(pattern, value) is not None``, remembered for short values.

    Constrained strings (currency codes, country codes, statuses) repeat across events; a dict
    hit costs a fraction of a regex search. Bounded: cleared when full, long values not kept.
    """

    __slots__ = ("search",)

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.search = re.compile(pattern).search

    def __missing__(self, value: str) -> bool:
        found = self.search(value) is not None
        if len(value) <= _MEMO_VALUE_CHARS:
            if len(self) >= _MEMO_ENTRIES:
                self.clear()
            self[value] = found
        return found


_MEMO_ENTRIES: Final = 4096
_MEMO_VALUE_CHARS: Final = 64


_CHECKS: dict[tuple[type[Any], type[Any]], Check | None] = {}
_ANY_INT_MIN: Final = -(2**63)
_ANY_INT_END: Final = 2**64
_ANY_DEPTH: Final = 32


def plain_json(value: Any, depth: int) -> bool:
    """Whether a value of an ``Any`` field surely has a JSON form the reference accepts: JSON's
    own types only (a ``dict`` with ``str`` keys), 64-bit integers, at most ``_ANY_DEPTH``
    levels deep. ``False`` sends it to ``convert`` and the reference, which decide: a dict
    with a tuple key encodes to MessagePack but has no JSON form, and is refused."""
    kind = type(value)
    if kind is str or kind is float or kind is bool or value is None:
        return True
    if kind is int:
        return bool(_ANY_INT_MIN <= value < _ANY_INT_END)
    if depth >= _ANY_DEPTH:
        return False
    if kind is list:
        return all(plain_json(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and plain_json(v, depth + 1) for k, v in value.items())
    return False


def compile_check(cls: type[Any], check_type: type[Any]) -> Check | None:
    """Build the pre-check of events of ``cls`` whose ``convert`` check type is ``check_type``.

    Returns:
        A function ``check(event) -> bool`` (``True`` only if ``convert`` would accept the
        event), or ``None`` when the type holds something the generator does not model.
    """
    key = (cls, check_type)
    if key not in _CHECKS:
        try:
            _CHECKS[key] = _Generator().build(mi.type_info(check_type), mi.type_info(cls))
        except (_Unsupported, TypeError):  # TypeError: msgspec refuses e.g. `FiniteFloat | int`
            _CHECKS[key] = None
    return _CHECKS[key]


class _Generator:
    """Emits Python source from a check type's ``msgspec.inspect`` tree and ``exec``s it.

    Nested structs are inlined into their parent; a struct that contains itself (directly or
    not) gets a function of its own so that the recursion has something to call.
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "Decimal": Decimal,
            "datetime": _dt.datetime,
            "time": _dt.time,
            "_INF": float("inf"),
            "_timezone": _dt.timezone,
            "_plain_json": plain_json,
        }
        self.functions: dict[type[Any], str] = {}
        self.inlining: set[type[Any]] = set()
        self.sources: list[str] = []
        self.counter = 0

    def build(self, node: Any, original: Any) -> Check:
        name = self.struct_function(node, original)
        exec("\n\n".join(self.sources), self.namespace)  # noqa: S102 - source built above
        check: Check = self.namespace[name]
        return check

    def name(self, prefix: str, value: object = None) -> str:
        self.counter += 1
        name = f"_{prefix}{self.counter}"
        if value is not None:
            self.namespace[name] = value
        return name

    def struct_function(self, node: Any, original: Any) -> str:
        cls = original.cls
        if cls in self.functions:
            return self.functions[cls]
        name = self.functions[cls] = self.name("check_" + re.sub(r"\W", "_", cls.__name__) + "_")
        lines = [
            f"def {name}(obj):",
            *self.fields(node, original, "obj", "    "),
            "    return True",
        ]
        self.sources.append("\n".join(lines))
        return name

    def fields(self, node: Any, original: Any, obj: str, ind: str) -> list[str]:
        if not (isinstance(node, mi.StructType) and isinstance(original, mi.StructType)):
            raise _Unsupported
        if node.cls.__struct_config__.tag is not None or len(node.fields) != len(original.fields):
            raise _Unsupported
        lines = []
        for field, orig_field in zip(node.fields, original.fields, strict=True):
            name = field.name
            if name != orig_field.name or not name.isidentifier() or keyword.iskeyword(name):
                raise _Unsupported
            v = self.name("v")
            lines.append(f"{ind}{v} = {obj}.{field.name}")
            lines += self.emit(field.type, orig_field.type, v, ind)
        return lines

    def emit(self, node: Any, original: Any, v: str, ind: str) -> list[str]:
        """Lines that ``return False`` unless ``v`` passes ``node``."""
        kind = type(node)
        if kind is mi.AnyType:  # anything goes in MessagePack; the reference is JSON's form
            return [f"{ind}if not _plain_json({v}, 0): return False"]
        if kind is mi.StructType:
            return self.struct(node, original, v, ind)
        if kind in _SEQUENCES or kind is mi.DictType:
            return self.container(node, original, v, ind)
        if kind is mi.UnionType:
            return self.union(node, original, v, ind)
        return [f"{ind}if {' or '.join(self.leaf(node, v))}: return False"]

    def leaf(self, node: Any, v: str) -> list[str]:
        """Conditions, any of which refuses ``v``."""
        kind = type(node)
        if kind is mi.NoneType:
            return [f"{v} is not None"]
        if kind is mi.StrType:
            pattern = []
            if node.pattern is not None:  # msgspec's pattern is unanchored: `re.search`
                pattern = [f"not {self.name('matches', _PatternMatches(node.pattern))}[{v}]"]
            return [*self.sized(node, v, "str"), *pattern]
        if kind is mi.IntType:
            return [f"type({v}) is not int", *self.bounds(node, v)]
        if kind is mi.FloatType:
            if node.multiple_of is not None:
                raise _Unsupported
            return [f"type({v}) is not float", *self.bounds(node, v)]
        if kind in _EXACT:
            return [f"type({v}) is not {self.name('t', _EXACT[kind])}"]
        if kind is mi.DateTimeType or kind is mi.TimeType:
            exact = "datetime" if kind is mi.DateTimeType else "time"
            # Aware as Python defines it: a tzinfo whose utcoffset() is None leaves the value
            # naive (msgspec would write it without an offset); utcoffset() also checks the
            # offset is within a day (msgspec would wrap 30 h to "+06:00"). A `timezone`
            # (UTC, fixed offsets) was checked when it was made: not asked again.
            aware = [
                f"{v}.tzinfo is None",
                f"(type({v}.tzinfo) is not _timezone and {v}.utcoffset() is None)",
            ]
            tz = {True: aware, False: [f"{v}.tzinfo is not None"]}
            return [f"type({v}) is not {exact}", *tz.get(node.tz, [])]
        if kind is mi.CustomType and node.cls is FiniteDecimal:
            return [f"type({v}) is not Decimal", f"not {v}.is_finite()"]
        if kind is mi.CustomType and node.cls is FiniteFloat:
            # NaN fails both comparisons; an int goes to `convert`, which takes it
            return [f"type({v}) is not float", f"not (-_INF < {v} < _INF)"]
        if kind is mi.LiteralType:
            types = self.name("types", frozenset(type(x) for x in node.values))
            values = self.name("values", frozenset(node.values))
            return [f"type({v}) not in {types}", f"{v} not in {values}"]
        if kind is mi.EnumType:
            return [f"type({v}) is not {self.name('t', node.cls)}"]
        raise _Unsupported

    def struct(self, node: Any, original: Any, v: str, ind: str) -> list[str]:
        if not isinstance(original, mi.StructType):
            raise _Unsupported
        cls = original.cls
        lines = [f"{ind}if type({v}) is not {self.name('t', cls)}: return False"]
        if cls in self.functions or cls in self.inlining:  # recursive: call, do not inline
            function = self.struct_function(node, original)
            return [*lines, f"{ind}if not {function}({v}): return False"]
        self.inlining.add(cls)
        lines += self.fields(node, original, v, ind)
        self.inlining.discard(cls)
        return lines

    def container(self, node: Any, original: Any, v: str, ind: str) -> list[str]:
        kind = type(node)
        if type(original) is not kind:
            raise _Unsupported
        if kind is mi.DictType:
            key, value = self.name("k"), self.name("x")
            return [
                f"{ind}if {' or '.join(self.sized(node, v, 'dict'))}: return False",
                f"{ind}for {key}, {value} in {v}.items():",
                *(self.emit(node.key_type, original.key_type, key, ind + "    ") or []),
                *self.emit(node.value_type, original.value_type, value, ind + "    "),
                f"{ind}    pass",
            ]
        item = self.name("x")
        exact = self.name("t", _SEQUENCES[kind])
        return [
            f"{ind}if {' or '.join(self.sized(node, v, exact))}: return False",
            f"{ind}for {item} in {v}:",
            *self.emit(node.item_type, original.item_type, item, ind + "    "),
            f"{ind}    pass",
        ]

    def union(self, node: Any, original: Any, v: str, ind: str) -> list[str]:
        if type(original) is not mi.UnionType or len(original.types) != len(node.types):
            raise _Unsupported
        pairs: list[tuple[Any, Any]] = [
            (member, orig)
            for member, orig in zip(node.types, original.types, strict=True)
            if type(member) is not mi.NoneType
        ]
        # Dispatch on the value's exact type, as msgspec does for these member kinds.
        branches = (
            [f"{ind}if {v} is None:", f"{ind}    pass"] if len(pairs) < len(node.types) else []
        )
        if len(pairs) == 1:
            member, orig = pairs[0]
            if not branches:
                raise _Unsupported
            return [
                *branches,
                f"{ind}else:",
                *self.emit(member, orig, v, ind + "    "),
                f"{ind}    pass",
            ]
        seen: set[type[Any]] = set()
        for member, orig in pairs:
            kind = type(member)
            if kind not in _DISPATCHABLE or _DISPATCHABLE[kind] in seen:
                raise _Unsupported  # a member kind not modelled, or two for one Python type
            seen.add(_DISPATCHABLE[kind])
            exact = self.name("t", orig.cls if kind is mi.StructType else _DISPATCHABLE[kind])
            branches.append(f"{ind}{'elif' if branches else 'if'} type({v}) is {exact}:")
            branches += [*self.emit(member, orig, v, ind + "    "), f"{ind}    pass"]
        return [*branches, f"{ind}else: return False"]

    def sized(self, node: Any, v: str, exact: str) -> list[str]:
        conditions = [f"type({v}) is not {exact}"]
        if node.min_length is not None:
            conditions.append(f"len({v}) < {node.min_length!r}")
        if node.max_length is not None:
            conditions.append(f"len({v}) > {node.max_length!r}")
        return conditions

    def bounds(self, node: Any, v: str) -> list[str]:
        # Written as `not (v >= bound)` so that a NaN fails every bound, as in msgspec.
        conditions = []
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(node, attr)
            if bound is not None:
                # a float bound's repr may not be Python source (`inf`): bind it by name
                conditions.append(f"not ({v} {op} {self.name('bound', bound)})")
        if getattr(node, "multiple_of", None) is not None:
            conditions.append(f"{v} % {self.name('bound', node.multiple_of)}")
        return conditions
