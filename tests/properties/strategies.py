"""Hypothesis strategies for the fuzzing campaign: event classes, and values for them that are
valid or hostile.

A *schema* is a tree of ``Kind`` nodes: each knows its annotation, a strategy for valid values,
and (for containers) its children. ``event_classes()`` turns a drawn list of fields into a
declared event class (memoised by shape, so a long run declares each shape once);
``cases()`` draws a class, a valid event of it, and then, most of the time, replaces one value
somewhere in the tree by a hostile one (wrong type, huge or non-finite number, lone surrogate,
deep nesting, a subclass of a built-in, an object whose dunder methods raise).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import itertools
import string
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from hypothesis import strategies as st

import eventwire

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Shape(enum.Enum):
    ROUND = "round"
    SQUARE = "square"


@dataclasses.dataclass(frozen=True)
class Kind:
    """One node of a generated schema.

    ``python_ok(value)`` says whether a value has the Python type the codec requires here
    (the codec is stricter than the JSON reference: a ``bytes`` or ``UUID`` encodes to a valid
    JSON string, but is refused in a ``str`` field). Containers check their items themselves.
    """

    name: str
    annotation: Any
    valid: st.SearchStrategy[Any]
    python_ok: Callable[[Any], bool]
    item: Kind | None = None  # list / tuple / dict value / optional / set member
    fields: tuple[tuple[str, Kind], ...] = ()  # nested struct
    struct: type[Any] | None = None
    optional: bool = False  # ``item | None``: the value is ``None`` or a value of ``item``

    def __repr__(self) -> str:
        return f"Kind({self.name})"


def _exact(*types: type[Any]) -> Callable[[Any], bool]:
    return lambda value: type(value) in types


def _struct_or_its_dict(cls: type[Any]) -> Callable[[Any], bool]:
    """The struct, or a dict of its fields (msgspec takes a mapping where a struct is
    declared; its values are checked field by field, the bytes by the reference)."""
    return lambda value: (
        type(value) is cls
        or (isinstance(value, dict) and all(type(key) is str for key in dict.keys(value)))
    )


def _instance(*types: type[Any]) -> Callable[[Any], bool]:
    """Containers: a subclass of ``list`` is a list (msgspec reads its items directly)."""
    return lambda value: isinstance(value, types)


def _member_or_value(cls: type[enum.Enum]) -> Callable[[Any], bool]:
    values = {member.value for member in cls}
    return lambda v: isinstance(v, cls) or (type(v) in (str, int) and v in values)


def _aware(value: Any) -> bool:
    """Aware as Python defines it; ``utcoffset()`` also refuses an offset beyond a day (which
    msgspec's JSON encoder would wrap into a valid-looking one)."""
    if type(value) is not dt.datetime:
        return False
    try:
        return value.utcoffset() is not None
    except Exception:  # noqa: BLE001
        return False


def _float_ok(value: Any) -> bool:
    return type(value) in (float, int)


def _str_ok(value: Any) -> bool:
    return type(value) is str or isinstance(value, Colour)


def _int_ok(value: Any) -> bool:
    return type(value) is int or isinstance(value, Level)


def _leaf_kinds() -> list[Kind]:
    aware = st.datetimes(
        min_value=dt.datetime(1, 1, 2),  # noqa: DTZ001 - tz added below
        max_value=dt.datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5, minutes=-30))]),
    )
    return [
        Kind("str", str, st.text(max_size=12), _str_ok),
        Kind(
            "str[2..5]",
            Annotated[str, msgspec.Meta(min_length=2, max_length=5)],
            st.text(min_size=2, max_size=5),
            _str_ok,
        ),
        Kind(
            "currency",
            Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")],
            st.text(string.ascii_uppercase, min_size=3, max_size=3),
            _str_ok,
        ),
        Kind("int", int, st.integers(INT64_MIN, INT64_MAX), _int_ok),
        Kind(
            "int[0..100]",
            Annotated[int, msgspec.Meta(ge=0, le=100)],
            st.integers(0, 100),
            _int_ok,
        ),
        Kind(
            "unbounded",
            eventwire.UnboundedInt,
            st.integers(-(10**30), 10**30),
            _int_ok,
        ),
        Kind("float", float, st.floats(allow_nan=False, allow_infinity=False), _float_ok),
        Kind(
            "ratio",
            Annotated[float, msgspec.Meta(ge=0.0, lt=1.0)],
            st.floats(0.0, 1.0, exclude_max=True),
            _float_ok,
        ),
        Kind("bool", bool, st.booleans(), _exact(bool)),
        Kind(
            "decimal",
            Decimal,
            st.decimals(allow_nan=False, allow_infinity=False),
            _exact(Decimal),
        ),
        Kind("datetime", dt.datetime, aware, _aware),
        Kind("date", dt.date, st.dates(), _exact(dt.date)),
        Kind("uuid", uuid.UUID, st.uuids(), _exact(uuid.UUID)),
        Kind("bytes", bytes, st.binary(max_size=8), _exact(bytes)),
        Kind(
            "literal",
            Literal["new", "done", 3],
            st.sampled_from(["new", "done", 3]),
            lambda v: type(v) in (str, int),
        ),
        # an enum field takes a member or a member's value (the wire form is the same)
        Kind("strenum", Colour, st.sampled_from(Colour), _member_or_value(Colour)),
        Kind("intenum", Level, st.sampled_from(Level), _member_or_value(Level)),
        Kind("enum", Shape, st.sampled_from(Shape), _member_or_value(Shape)),
        Kind("any", Any, _json_values(), lambda v: True),
    ]


def _json_values() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(INT64_MIN, INT64_MAX)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=6)
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=8,
    )


LEAVES = _leaf_kinds()
_HASHABLE = [k for k in LEAVES if k.name in ("str", "int", "uuid", "strenum")]
_shape_ids = itertools.count()


def _list(item: Kind) -> Kind:
    return Kind(
        f"list[{item.name}]",
        list[item.annotation],  # type: ignore[name-defined]
        st.lists(item.valid, max_size=3),
        _instance(list, tuple),
        item=item,
    )


def _bounded_list(item: Kind) -> Kind:
    return Kind(
        f"list1..2[{item.name}]",
        Annotated[list[item.annotation], msgspec.Meta(min_length=1, max_length=2)],  # type: ignore[name-defined]
        st.lists(item.valid, min_size=1, max_size=2),
        _instance(list, tuple),
        item=item,
    )


def _tuple(item: Kind) -> Kind:
    return Kind(
        f"tuple[{item.name}, ...]",
        tuple[item.annotation, ...],  # type: ignore[name-defined]
        st.lists(item.valid, max_size=3).map(tuple),
        _instance(list, tuple),
        item=item,
    )


def _dict(item: Kind) -> Kind:
    return Kind(
        f"dict[str, {item.name}]",
        dict[str, item.annotation],  # type: ignore[name-defined]
        st.dictionaries(st.text(max_size=4), item.valid, max_size=3),
        _instance(dict),
        item=item,
    )


def _optional(item: Kind) -> Kind:
    return Kind(
        f"{item.name} | None",
        item.annotation | None,
        st.none() | item.valid,
        lambda v: v is None or item.python_ok(v),
        item=item,
        optional=True,
    )


def _frozenset(item: Kind) -> Kind:
    return Kind(
        f"frozenset[{item.name}]",
        frozenset[item.annotation],  # type: ignore[name-defined]
        st.frozensets(item.valid, max_size=3),
        _instance(frozenset, set, list, tuple),
        item=item,
    )


_UNION = Kind(
    "int | str",
    int | str,
    st.integers(INT64_MIN, INT64_MAX) | st.text(max_size=5),
    lambda v: _int_ok(v) or _str_ok(v),
)
_STRUCTS: dict[tuple[str, ...], type[Any]] = {}


def _struct(fields: list[tuple[str, Kind]]) -> Kind:
    shape = tuple(f"{name}:{kind.name}" for name, kind in fields)
    cls = _STRUCTS.get(shape)
    if cls is None:
        cls = _STRUCTS[shape] = msgspec.defstruct(
            f"Part{next(_shape_ids)}",
            [(name, kind.annotation) for name, kind in fields],
            frozen=True,
            kw_only=True,
        )
    valid = st.fixed_dictionaries({name: kind.valid for name, kind in fields}).map(
        lambda values: cls(**values)
    )
    return Kind(
        "{" + ", ".join(shape) + "}",
        cls,
        valid,
        _struct_or_its_dict(cls),
        fields=tuple(fields),
        struct=cls,
    )


_NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f"])


def kinds() -> st.SearchStrategy[Kind]:
    """Field kinds: leaves, containers of them, and nested structs (two levels at most)."""
    leaf = st.sampled_from(LEAVES)

    def extend(inner: st.SearchStrategy[Kind]) -> st.SearchStrategy[Kind]:
        return (
            inner.map(_list)
            | inner.map(_bounded_list)
            | inner.map(_tuple)
            | inner.map(_dict)
            | inner.map(_optional)
            | st.sampled_from(_HASHABLE).map(_frozenset)
            | st.just(_UNION)
            | st.lists(
                st.tuples(_NAMES, inner), min_size=1, max_size=3, unique_by=lambda f: f[0]
            ).map(_struct)
        )

    return st.recursive(leaf, extend, max_leaves=4)


_EVENTS: dict[tuple[tuple[str, str], ...], type[Any]] = {}
_event_ids = itertools.count()


class Schema(msgspec.Struct, frozen=True):
    cls: type[Any]
    fields: tuple[tuple[str, Kind], ...]


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    """A declared event class: an ``id`` key (str or int, or no key) and 1-4 generated fields."""
    fields: list[tuple[str, Kind]] = draw(
        st.lists(st.tuples(_NAMES, kinds()), min_size=1, max_size=4, unique_by=lambda f: f[0])
    )
    key_kind = draw(st.sampled_from([LEAVES[0], LEAVES[3], None]))
    if key_kind is not None:
        fields = [("id", key_kind), *fields]
    shape = tuple((name, kind.name) for name, kind in fields)
    cls = _EVENTS.get(shape)
    if cls is None:
        n = next(_event_ids)
        cls = msgspec.defstruct(
            f"Fuzzed{n}",
            [(name, kind.annotation) for name, kind in fields],
            frozen=True,
            kw_only=True,
        )
        eventwire.event(topic="fuzz", key=None if key_kind is None else "id", type=f"fuzz.e{n}")(
            cls
        )
        _EVENTS[shape] = cls
    return Schema(cls, tuple(fields))


# -- hostile values ---------------------------------------------------------------------------


class Boom(Exception):
    """What the hostile objects raise: never an eventwire error, never a ValueError."""


def _boom(*args: Any) -> Any:
    raise Boom("hostile dunder")


class RaisingHash(str):
    __hash__ = _boom  # type: ignore[assignment]
    __eq__ = _boom  # type: ignore[assignment]


class RaisingStr(str):
    __str__ = _boom  # type: ignore[assignment]
    __repr__ = _boom  # type: ignore[assignment]
    encode = _boom  # type: ignore[assignment]


class RaisingInt(int):
    __str__ = _boom  # type: ignore[assignment]
    __repr__ = _boom  # type: ignore[assignment]
    __index__ = _boom  # type: ignore[assignment]
    __float__ = _boom  # type: ignore[assignment]
    __hash__ = _boom  # type: ignore[assignment]


class PlainFloat(float):
    pass


class RaisingDecimal(Decimal):
    __str__ = _boom  # type: ignore[assignment]
    is_finite = _boom  # type: ignore[assignment]


class RaisingList(list):  # type: ignore[type-arg]
    __iter__ = _boom  # type: ignore[assignment]
    __len__ = _boom  # type: ignore[assignment]


class RaisingDict(dict):  # type: ignore[type-arg]
    items = _boom  # type: ignore[assignment]
    __iter__ = _boom  # type: ignore[assignment]
    __len__ = _boom  # type: ignore[assignment]


class RaisingObject:
    """Every dunder a library might call raises; attributes too."""

    __hash__ = _boom  # type: ignore[assignment]
    __eq__ = _boom  # type: ignore[assignment]
    __str__ = _boom  # type: ignore[assignment]
    __repr__ = _boom  # type: ignore[assignment]
    __len__ = _boom
    __iter__ = _boom
    __bool__ = _boom
    __getattr__ = _boom


class RaisingTz(dt.tzinfo):
    utcoffset = _boom
    dst = _boom
    tzname = _boom


class LyingTz(dt.tzinfo):
    def utcoffset(self, moment: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=30)  # out of range: datetime itself refuses it

    def dst(self, moment: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _cyclic() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


def _hostile_leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(),
        st.sampled_from([2**63, -(2**63) - 1, 2**64, 2**64 - 1, 10**30, -(10**30), 10**400]),
        st.builds(lambda: 10**5000),  # beyond what int() -> str() converts
        st.floats(),  # NaN and infinities included
        st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),  # lone surrogates
        st.text(max_size=4).map(lambda s: s + "\ud800"),
        st.sampled_from(["x" * 100_000, "", "\x00", "\ufeff"]),
        st.binary(max_size=4),
        st.none(),
        st.booleans(),
        st.decimals(),  # NaN, sNaN, infinities included
        st.sampled_from([Decimal("1E+999999"), Decimal("-0"), Decimal("sNaN")]),
        st.datetimes(),  # naive
        st.dates(),
        st.times(),
        st.uuids(),
        st.sampled_from(list(Colour) + list(Level) + list(Shape)),
        st.text(max_size=3).map(RaisingHash),
        st.text(max_size=3).map(RaisingStr),
        st.integers(-5, 5).map(RaisingInt),
        st.floats().map(PlainFloat),
        st.decimals(allow_nan=False).map(RaisingDecimal),
        st.builds(RaisingObject),
        st.builds(object),
        st.builds(lambda: dt.datetime(2026, 1, 1, tzinfo=RaisingTz())),
        st.builds(lambda: dt.datetime(2026, 1, 1, tzinfo=LyingTz())),
        st.sampled_from([3, 50, 2_000, 100_000]).map(_nested),
        st.builds(_cyclic),
        st.builds(lambda: RaisingList([1])),
        st.builds(lambda: RaisingDict(a=1)),
        st.builds(lambda: dict.fromkeys([1, (2, 3), None], "x")),
        st.builds(lambda: {10**5000: "huge key"}),
        st.just(Colour),  # a class
    )


def hostile_values() -> st.SearchStrategy[Any]:
    leaves = _hostile_leaves()
    return leaves | st.lists(leaves, max_size=2) | st.dictionaries(st.text(max_size=3), leaves)


# -- cases: a class, an event, and where it was corrupted --------------------------------------


class Case(msgspec.Struct, frozen=True):
    schema: Schema
    event: Any
    hostile_path: str | None  # where a hostile value was put ("$.a[0].b"), None: all valid
    hostile: Any = None
    original: Any = None  # the valid event before the hostile value was put in


def _positions(kind: Kind, value: Any, path: str) -> list[tuple[str, tuple[Any, ...]]]:
    """Every place in ``value`` a hostile value can go: (path, steps to reach it)."""
    if kind.optional:
        return [(path, ())] if value is None else _positions(kind.item, value, path)  # type: ignore[arg-type]
    out: list[tuple[str, tuple[Any, ...]]] = [(path, ())]
    if kind.fields and isinstance(value, msgspec.Struct):
        for name, sub in kind.fields:
            for p, steps in _positions(sub, getattr(value, name), f"{path}.{name}"):
                out.append((p, (name, *steps)))
    elif kind.item is not None and isinstance(value, list | tuple):
        for index, item in enumerate(value):
            for p, steps in _positions(kind.item, item, f"{path}[{index}]"):
                out.append((p, (index, *steps)))
    elif kind.item is not None and isinstance(value, dict):
        for key, item in value.items():
            for p, steps in _positions(kind.item, item, f"{path}[...]"):  # as msgspec says
                out.append((p, (("value", key), *steps)))
    return out


def _replace(value: Any, steps: tuple[Any, ...], new: Any) -> Any:
    if not steps:
        return new
    step, rest = steps[0], steps[1:]
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.replace(value, **{step: _replace(getattr(value, step), rest, new)})
    if isinstance(value, list | tuple):
        items = list(value)
        items[step] = _replace(items[step], rest, new)
        return type(value)(items)
    copy = dict(value)
    copy[step[1]] = _replace(copy[step[1]], rest, new)
    return copy


@st.composite
def cases(draw: st.DrawFn, hostile: bool = True) -> Case:
    schema = draw(schemas())
    values = {name: draw(kind.valid) for name, kind in schema.fields}
    event = schema.cls(**values)
    if not hostile or draw(st.integers(0, 4)) == 0:  # one case in five stays valid
        return Case(schema, event, None)
    root = Kind("event", schema.cls, st.nothing(), _exact(schema.cls), fields=schema.fields)
    places = _positions(root, event, "$")[1:]
    path, steps = draw(st.sampled_from(places))
    bad = draw(hostile_values())
    return Case(schema, _replace(event, steps, bad), path, bad, event)
