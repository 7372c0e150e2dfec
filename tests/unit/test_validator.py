"""The compiled pre-check (``eventwire._validator``) against the checks that decide.

The pre-check may only say yes to events that ``msgspec.convert`` against the check type
accepts (that is what the codec then skips), and it must say yes to valid events (or the
fast path silently stops being taken). Values come from hypothesis, for every kind of field
the generator models, at the top level, nested, inside containers and unions.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventwire
import eventwire.codec
import eventwire.inspect
from eventwire._validator import compile_check
from eventwire._wire_types import CHECK_BUILTIN_TYPES, finite_decimal_hook


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Part(msgspec.Struct, frozen=True, kw_only=True):
    code: Annotated[str, msgspec.Meta(min_length=2, max_length=4, pattern="^[A-Z]")]
    count: Annotated[int, msgspec.Meta(gt=0, le=100, multiple_of=5)]


class Node(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    children: list[Node] = []


@eventwire.event(topic="kinds", key="name", type="test.kinds")
class Kinds(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    name: str
    ratio: Annotated[float, msgspec.Meta(ge=0.0, lt=1.0)]
    flag: bool
    at: dt.datetime
    day: dt.date
    ident: uuid.UUID
    money: Decimal
    status: Literal["new", "done", 3]
    colour: Colour
    parts: Annotated[list[Part], msgspec.Meta(min_length=1, max_length=3)]
    counts: dict[str, Annotated[int, msgspec.Meta(ge=0)]]
    tags: frozenset[str]
    scores: tuple[int, ...]
    best: Part | None = None
    either: int | str | Part = 0
    anything: Any = None


def _valid_parts() -> st.SearchStrategy[Part]:
    return st.builds(
        Part,
        code=st.from_regex(r"\A[A-Z][A-Z0-9]{1,3}\Z"),
        count=st.integers(1, 20).map(lambda n: n * 5),
    )


def _trees() -> st.SearchStrategy[Node]:
    return st.recursive(
        st.builds(Node, label=st.text(max_size=3)),
        lambda kids: st.builds(
            Node, label=st.text(max_size=3), children=st.lists(kids, max_size=2)
        ),
        max_leaves=6,
    )


_INT64 = st.integers(-(2**63), 2**63 - 1)  # a bare `int` is checked to be a 64-bit one
VALID: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(max_size=5),
    "ratio": st.floats(0.0, 1.0, exclude_max=True),
    "flag": st.booleans(),
    "at": st.datetimes(timezones=st.just(dt.UTC)),
    "day": st.dates(),
    "ident": st.uuids(),
    "money": st.decimals(allow_nan=False, allow_infinity=False),
    "status": st.sampled_from(["new", "done", 3]),
    "colour": st.sampled_from(Colour),
    "parts": st.lists(_valid_parts(), min_size=1, max_size=3),
    "counts": st.dictionaries(st.text(max_size=3), st.integers(0, 10**6), max_size=3),
    "tags": st.frozensets(st.text(max_size=3), max_size=3),
    "scores": st.lists(_INT64, max_size=3).map(tuple),
    "best": st.none() | _valid_parts(),
    "either": _INT64 | st.text(max_size=3) | _valid_parts(),
    "anything": _INT64 | st.text() | st.none(),  # a larger int under Any: the slow path
}


def _odd_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.integers(-3, 200),
        st.integers(),
        st.floats(),
        st.booleans(),
        st.none(),
        st.text(max_size=5),
        st.binary(max_size=3),
        st.decimals(),
        st.datetimes(),
        st.datetimes(timezones=st.just(dt.UTC)),
        st.dates(),
        st.uuids(),
        st.sampled_from(["new", "done", 3, 3.0, True, Colour.RED, "red"]),
        st.builds(Part, code=st.text(max_size=5), count=st.integers(-5, 105)),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(st.text(max_size=2) | st.integers(), inner, max_size=2)
            | st.frozensets(st.text(max_size=2) | st.integers(), max_size=2)
        ),
        max_leaves=5,
    )


def _kinds(**changes: Any) -> st.SearchStrategy[Kinds]:
    fields = {**VALID, **{name: st.just(value) for name, value in changes.items()}}
    return st.fixed_dictionaries(fields).map(lambda f: Kinds(**f))


def _convert_accepts(event: Any) -> bool:
    try:
        msgspec.convert(
            event,
            eventwire.inspect.spec_of(type(event)).check_type,
            from_attributes=True,
            dec_hook=finite_decimal_hook,
            builtin_types=CHECK_BUILTIN_TYPES,
        )
    except msgspec.ValidationError:
        return False
    return True


CHECK = compile_check(Kinds, eventwire.inspect.spec_of(Kinds).check_type)


def test_every_field_kind_compiles() -> None:
    assert CHECK is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=_kinds())
def test_valid_events_take_the_fast_path(event: Kinds) -> None:
    assert CHECK is not None
    assert _convert_accepts(event)
    assert CHECK(event)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), field=st.sampled_from(sorted(VALID)), value=_odd_values())
def test_the_precheck_never_accepts_what_convert_refuses(
    data: st.DataObject, field: str, value: Any
) -> None:
    event = data.draw(_kinds(**{field: value}))
    assert CHECK is not None
    if CHECK(event):
        assert _convert_accepts(event), f"pre-check accepted {field}={value!r}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), field=st.sampled_from(sorted(VALID)), value=_odd_values())
def test_codec_verdicts_and_messages_are_those_of_convert(
    data: st.DataObject, field: str, value: Any
) -> None:
    """With the pre-check in front, the codec refuses exactly what ``convert`` refuses, with
    the same path and reason as without it; the typed decode (the reference) agrees."""
    event = data.draw(_kinds(**{field: value}))
    codec = eventwire.codec.EventCodec()
    try:
        msgspec.convert(
            event,
            eventwire.inspect.spec_of(Kinds).check_type,
            from_attributes=True,
            dec_hook=finite_decimal_hook,
            builtin_types=CHECK_BUILTIN_TYPES,
        )
        expected = None
    except msgspec.ValidationError as exc:
        expected = str(exc)
    if expected is None:
        # `convert` is laxer than the reference in places (a Decimal passes for a constrained
        # float, and would reach Kafka as a JSON string): the codec refuses exactly what the
        # typed decode of the event's JSON form refuses, with its path and reason
        try:
            codec.validate_bytes(Kinds, msgspec.json.encode(event))
        except eventwire.EventValidationError as exc:
            reference: eventwire.EventValidationError | None = exc
        else:
            reference = None
        if reference is not None:
            with pytest.raises(eventwire.EventValidationError) as caught:
                codec.encode(event)
            assert (caught.value.path, caught.value.reason) == (reference.path, reference.reason)
            return
        encoded = codec.encode(event)
        assert codec.validate_bytes(Kinds, encoded.value) is not None  # the reference agrees
        return
    with pytest.raises(eventwire.EventValidationError) as caught:
        codec.encode(event)
    reason, _, path = expected.rpartition(" - at `")
    path = path.rstrip("`")
    if path.startswith("key` in `"):  # msgspec's words for a dict key: the codec's path is the dict
        path, reason = path.removeprefix("key` in `"), reason + " (a dict key)"
    assert caught.value.path == path
    # (beyond 64 bits the reason goes on to name the opt-out)
    assert caught.value.reason.startswith(reason) or "Decimal" in caught.value.reason


@settings(max_examples=200, deadline=None)
@given(tree=_trees(), odd=st.lists(_odd_values(), max_size=3))
def test_recursive_structs_are_checked_through_a_function(tree: Node, odd: list[Any]) -> None:
    # Recursive event types cannot be declared yet (their shadow types are not built), so the
    # generator is driven directly, with the struct as its own check type.
    check = compile_check(Node, Node)
    assert check is not None
    assert check(tree)
    bad = Node(label="x", children=[tree, *odd])
    if check(bad):
        msgspec.convert(bad, Node, from_attributes=True)  # raises if the pre-check was wrong


def test_unmodelled_types_fall_back_to_convert() -> None:
    @eventwire.event(topic="odd", key=None, type="test.odd")
    class Odd(msgspec.Struct, frozen=True):
        pair: tuple[int, str]

    assert compile_check(Odd, eventwire.inspect.spec_of(Odd).check_type) is None
    with pytest.raises(eventwire.EventValidationError) as caught:
        eventwire.codec.EventCodec().encode(Odd(pair=(1, 2)))  # type: ignore[arg-type]
    assert caught.value.path == "$.pair[1]"


def test_a_field_named_like_a_keyword_falls_back_to_convert() -> None:
    cls = msgspec.defstruct("Keyword", [("class", int)], frozen=True)
    eventwire.event(topic="keyword", key=None, type="test.keyword")(cls)
    assert compile_check(cls, eventwire.inspect.spec_of(cls).check_type) is None
    eventwire.codec.EventCodec().encode(cls(1))
    with pytest.raises(eventwire.EventValidationError) as caught:
        eventwire.codec.EventCodec().encode(cls("1"))
    assert caught.value.path == "$.class"


def test_a_class_name_that_is_no_identifier_still_compiles() -> None:
    cls = msgspec.defstruct("odd-name", [("n", int)], frozen=True)
    eventwire.event(topic="odd-name", key=None, type="test.odd-name")(cls)
    check = compile_check(cls, eventwire.inspect.spec_of(cls).check_type)
    assert check is not None
    assert check(cls(1))
    assert not check(cls("1"))
