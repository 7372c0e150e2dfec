"""Regression tests for what the fuzzing campaign (tests/properties, fuzz/) found: each value
here once made ``EventCodec.encode`` raise a raw built-in exception (or accept what the
reference refuses) instead of that event's ``EventValidationError``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
import pytest

import eventwire


class Boom(Exception):
    pass


def _boom(*args: object) -> Any:
    raise Boom("raised by the value")


class RaisingTz(dt.tzinfo):
    utcoffset = _boom
    dst = _boom
    tzname = _boom


class LyingTz(dt.tzinfo):
    def utcoffset(self, moment: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=30)

    def dst(self, moment: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)


class NoneTz(dt.tzinfo):
    """A tzinfo that leaves the datetime naive, as Python defines it."""

    def utcoffset(self, moment: dt.datetime | None) -> None:
        return None

    def dst(self, moment: dt.datetime | None) -> None:
        return None


class RaisingHash(str):
    __hash__ = _boom  # type: ignore[assignment]


class RaisingStr(str):
    __str__ = _boom  # type: ignore[assignment]
    encode = _boom  # type: ignore[assignment]


class RaisingDecimal(Decimal):
    __str__ = _boom  # type: ignore[assignment]


class RaisingHeaders(dict[str, str]):
    def items(self) -> Any:
        raise Boom("headers")


@eventwire.event(topic="hostile", key="id", type="test.hostile")
class Hostile(msgspec.Struct, frozen=True, kw_only=True):
    id: str = "k"
    ratio: float = 0.5
    anything: Any = None
    at: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    status: Literal["new", "done"] = "new"
    tags: frozenset[str] = frozenset()
    counts: dict[str, int] = {}
    price: Decimal = Decimal(1)
    big: eventwire.UnboundedInt = 0
    small: Annotated[int, msgspec.Meta(ge=0)] = 0


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _cyclic() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


class _Frozen:
    """A set member built once its hash ran: the hostile ``__hash__`` runs on the next one."""

    @staticmethod
    def member() -> frozenset[str]:
        class Once(str):
            calls = 0

            def __hash__(self) -> int:
                Once.calls += 1
                if Once.calls > 1:
                    raise Boom("hash")
                return str.__hash__(self)

        return frozenset([Once("x")])


# (changes, path, reason): each raised a raw exception (named in the id) before the fix.
CASES: list[Any] = [
    pytest.param({"ratio": 10**400}, "$.ratio", "Expected a finite `float`", id="OverflowError"),
    pytest.param({"anything": _nested(100_000)}, "$.anything", "nested too deeply", id="deep"),
    pytest.param({"anything": _cyclic()}, "$.anything", "nested too deeply", id="cyclic"),
    pytest.param(
        {"at": dt.datetime(2026, 1, 1, tzinfo=RaisingTz())}, "$.at", "Boom", id="utcoffset"
    ),
    pytest.param(
        {"at": dt.datetime(2026, 1, 1, tzinfo=LyingTz())}, "$.at", "offset", id="bad-offset"
    ),
    pytest.param({"tags": _Frozen.member()}, "$.tags", "", id="hash"),
    pytest.param({"status": "\ud800"}, "$.status", "surrogates", id="literal-surrogate"),
    pytest.param({"anything": {10**5000: 1}}, "$.anything[...]", "", id="huge-key-repr"),
    pytest.param({"at": dt.datetime(2026, 1, 1, tzinfo=NoneTz())}, "$.at", "timezone", id="naive"),
]


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(("changes", "path", "reason"), CASES)
def test_a_hostile_value_is_that_events_validation_error(
    encoding: Literal["json", "msgpack"], changes: dict[str, Any], path: str, reason: str
) -> None:
    codec = eventwire.codec.EventCodec(encoding=encoding)
    with pytest.raises(eventwire.EventValidationError) as caught:
        codec.encode(Hostile(**changes))
    error = caught.value
    assert error.path.startswith(path), error
    assert reason in error.reason
    assert error.__cause__ is not None  # the original, for whoever debugs it
    assert codec.encode(Hostile()).value  # the codec goes on working


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_without_validation_a_value_that_raises_when_encoded_is_still_refused(
    encoding: Literal["json", "msgpack"],
) -> None:
    codec = eventwire.codec.EventCodec(encoding=encoding, validate=False)
    for changes in (
        {"price": RaisingDecimal(1)},
        {"at": dt.datetime(2026, 1, 1, tzinfo=RaisingTz())},
        {"anything": _nested(100_000)},
    ):
        with pytest.raises(eventwire.EventValidationError) as caught:
            codec.encode(Hostile(**changes))  # type: ignore[arg-type]
        assert caught.value.path == f"$.{next(iter(changes))}"


@pytest.mark.parametrize(
    ("arguments", "path", "reason"),
    [
        ({"key": "k\ud800"}, "key", "surrogates not allowed"),
        ({"key": RaisingStr("k")}, None, None),  # a str subclass: taken as its value
        ({"headers": {"h": "v\ud800"}}, "headers", "header 'h' has a value that is not valid"),
        ({"headers": {"h\udc80": b"v"}}, "headers", "is not valid UTF-8"),
        ({"headers": RaisingHeaders(h="v")}, "headers", "Boom: headers"),
        ({"headers": [(RaisingStr("h"), b"v")]}, None, None),
        ({"topic": ["orders"]}, "topic", "topic must be str, not list"),
        ({"topic": RaisingHash("orders")}, None, None),
    ],
)
def test_hostile_call_arguments_are_that_events_validation_error(
    arguments: dict[str, Any], path: str | None, reason: str | None
) -> None:
    codec = eventwire.codec.EventCodec()
    if path is None:  # a subclass of str: its own methods never run
        encoded = codec.encode(Hostile(), **arguments)
        assert encoded.key == b"k"
        return
    with pytest.raises(eventwire.EventValidationError) as caught:
        codec.encode(Hostile(), **arguments)
    assert caught.value.path == path
    assert reason is not None
    assert reason in caught.value.reason


def test_an_any_value_without_a_json_form_is_refused_in_msgpack_too() -> None:
    """The reference is the typed decode of the JSON form whatever the encoding: a dict with a
    tuple key under ``Any`` encodes to MessagePack, but was accepted there only."""
    for encoding in ("json", "msgpack"):
        codec = eventwire.codec.EventCodec(encoding=encoding)  # type: ignore[arg-type]
        with pytest.raises(eventwire.EventValidationError) as caught:
            codec.encode(Hostile(anything={(1, 2): "x"}))
        assert caught.value.path == "$.anything"
        assert codec.encode(Hostile(anything={"k": [1, 2.5, None, "s"]})).value


def test_a_dict_key_error_names_the_dict_not_msgspecs_phrase() -> None:
    with pytest.raises(eventwire.EventValidationError) as caught:
        eventwire.codec.EventCodec().encode(Hostile(counts={1: 1}))  # type: ignore[dict-item]
    assert caught.value.path == "$.counts"
    assert caught.value.reason == "Expected `str`, got `int` (a dict key)"


def test_an_unprintable_exception_message_is_replaced_not_raised() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise Boom("no message either")

    class Tz(dt.tzinfo):
        def utcoffset(self, moment: dt.datetime | None) -> dt.timedelta:
            raise Unprintable

    with pytest.raises(eventwire.EventValidationError) as caught:
        eventwire.codec.EventCodec().encode(Hostile(at=dt.datetime(2026, 1, 1, tzinfo=Tz())))
    assert caught.value.reason == "Unprintable raised"


def test_validate_bytes_refuses_whatever_the_bytes_are_with_a_validation_error() -> None:
    codec = eventwire.codec.EventCodec()
    deep = b'{"anything":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for raw, reason in ((b"\xff", "malformed"), (deep, "nested too deeply"), (b"", "")):
        with pytest.raises(eventwire.EventValidationError) as caught:
            codec.validate_bytes(Hostile, raw)
        assert caught.value.path == "$"
        assert reason in caught.value.reason


class TestSigned64BitDefault:
    """A bare ``int`` is refused beyond a Java ``long``; ``eventwire.UnboundedInt`` opts a
    field out; a bound of the field's own ``Meta`` replaces the default on its side."""

    @pytest.mark.parametrize(
        ("changes", "path", "reason"),
        [
            ({"counts": {"a": 2**63}}, "$.counts[...]", "Expected `int` <= 9223372036854775807"),
            ({"small": 2**63}, "$.small", "Expected `int` <= 9223372036854775807"),
            ({"small": -1}, "$.small", "Expected `int` >= 0"),
        ],
    )
    def test_beyond_64_bits_is_refused_naming_the_opt_out(
        self, changes: dict[str, Any], path: str, reason: str
    ) -> None:
        with pytest.raises(eventwire.EventValidationError) as caught:
            eventwire.codec.EventCodec().encode(Hostile(**changes))
        assert caught.value.path == path
        assert caught.value.reason.startswith(reason)
        if "<=" in reason:
            assert "eventwire.UnboundedInt" in caught.value.reason

    def test_the_edges_of_the_range_pass(self) -> None:
        codec = eventwire.codec.EventCodec()
        for value in (2**63 - 1, -(2**63)):
            assert codec.encode(Hostile(counts={"a": value})).value

    def test_unbounded_int_takes_any_size_in_json_and_stops_at_64_bits_in_msgpack(self) -> None:
        event = Hostile(big=-(10**40))
        encoded = eventwire.codec.EventCodec().encode(event)
        assert b'"big":-10000000000000000000000000000000000000000' in encoded.value
        assert eventwire.codec.EventCodec().validate_bytes(Hostile, encoded.value).big == -(10**40)
        with pytest.raises(eventwire.EventValidationError, match="can't serialize ints"):
            eventwire.codec.EventCodec(encoding="msgpack").encode(event)

    def test_the_json_schema_leaves_the_default_range_implicit(self) -> None:
        """The same in every version: it would only add noise to ``schema check``."""
        from eventwire._schema_export import event_schema

        properties = event_schema(Hostile)["$defs"]["Hostile"]["properties"]
        assert properties["small"] == {"type": "integer", "minimum": 0, "default": 0}
        assert properties["big"] == {"type": "integer", "default": 0}
        assert properties["counts"]["additionalProperties"] == {"type": "integer"}


class _Point(msgspec.Struct, frozen=True):
    x: int


class _Row(msgspec.Struct, frozen=True, array_like=True):
    x: int


@eventwire.event(topic="shapes", key="id", type="shape.drawn", version=1)
class _Drawn(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    at: _Point
    row: _Row


def test_a_dict_for_a_nested_struct_is_accepted_only_as_a_consumer_reads_it() -> None:
    """msgspec takes a mapping of a struct's fields where the struct is declared; the bytes
    are then checked as a consumer's typed decoder reads them (the reference). Found by the
    `make faults` campaign: a dict standing for a plain struct encodes to the same JSON."""
    codec = eventwire.codec.EventCodec()
    same = codec.encode(_Drawn(id="d", at={"x": 1}, row=_Row(x=2)))  # type: ignore[arg-type]
    assert same.value == codec.encode(_Drawn(id="d", at=_Point(x=1), row=_Row(x=2))).value
    with pytest.raises(eventwire.EventValidationError) as caught:  # an object, not an array
        codec.encode(_Drawn(id="d", at=_Point(x=1), row={"x": 2}))  # type: ignore[arg-type]
    assert caught.value.path == "$.row"
    with pytest.raises(eventwire.EventValidationError) as caught:
        codec.encode(_Drawn(id="d", at={"x": "1"}, row=_Row(x=2)))  # type: ignore[arg-type]
    assert caught.value.path == "$.at.x"
