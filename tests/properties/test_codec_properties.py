"""The codec against the reference, for generated event classes and valid or hostile values.

For every case: ``EventCodec.encode`` returns an encoded event or raises
``EventValidationError`` (never anything else); it accepts exactly what the reference accepts
(the typed decode of the event's JSON form) when every value has its declared Python type,
and what it accepts decodes back and re-encodes to the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import eventwire
from tests.properties.settings import campaign
from tests.properties.strategies import Case, Colour, Kind, cases, hostile_values

Encoding = Literal["json", "msgpack"]
STATS = {"cases": 0, "hostile": 0, "refused": 0}


def reference_accepts(cls: type[Any], event: Any) -> bool:
    """The reference definition of a valid event: its JSON form decodes with the typed
    decoder (timezone-aware datetimes, Decimal strings, ``Meta`` constraints)."""
    try:
        data = msgspec.json.encode(event)
    except Exception:  # noqa: BLE001 - whatever cannot even be encoded is refused
        return False
    try:
        eventwire.codec.EventCodec(validate=False).validate_bytes(cls, data)
    except eventwire.EventValidationError:
        return False
    return True


def python_types_ok(kind: Kind, value: Any) -> bool:
    """Every value has the Python type its field declares (the codec's rule beyond the
    reference: a ``bytes`` or a ``UUID`` would encode to a valid JSON string), except that a
    dict of a struct's fields may stand for the struct."""
    if kind.struct is not None and isinstance(value, dict):  # read as msgspec does
        # msgspec takes a mapping of a struct's fields where the struct is declared; the codec
        # then checks the bytes as a consumer's typed decoder reads them (the reference).
        keys_ok = all(type(key) is str for key in dict.keys(value))
        return keys_ok and all(
            python_types_ok(sub, dict.__getitem__(value, name))
            for name, sub in kind.fields
            if dict.__contains__(value, name)
        )
    if not kind.python_ok(value):
        return False
    if kind.optional:
        return value is None or python_types_ok(kind.item, value)  # type: ignore[arg-type]
    if kind.fields:
        return all(python_types_ok(sub, getattr(value, name)) for name, sub in kind.fields)
    if kind.item is None or value is None:
        return True
    # (read through the built-in's own methods: a hostile subclass's raise, msgspec's do not)
    if isinstance(value, dict):  # keys are `str`: a key of another type is refused
        pairs = dict.items(value)
        return all(_str_key(k) and python_types_ok(kind.item, v) for k, v in pairs)
    for base in (list, tuple, set, frozenset):
        if isinstance(value, base):
            return all(python_types_ok(kind.item, item) for item in base.__iter__(value))
    return python_types_ok(kind.item, value)


def _str_key(key: Any) -> bool:
    return type(key) is str or isinstance(key, Colour)


def _has_set(kind: Kind) -> bool:
    """Sets come back in another order: their bytes are compared after a second decode."""
    children = [sub for _, sub in kind.fields] + ([kind.item] if kind.item else [])
    return kind.name.startswith("frozenset") or any(_has_set(sub) for sub in children)


def _encodable(encode: Any, event: Any) -> bool:
    try:
        encode(event)
    except Exception:  # noqa: BLE001
        return False
    return True


_KEYS = re.compile(r"""\[(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\]'"]*)\]""")


def _field_path(path: str) -> str:
    """A path with every index and key made alike: ``$.a[0].b['x']`` -> ``$.a[].b[]``."""
    return _KEYS.sub("[]", path)


def expected_verdict(case: Case, encoding: Encoding) -> bool:
    cls = case.schema.cls
    root = Kind("event", cls, st.nothing(), lambda v: type(v) is cls, fields=case.schema.fields)
    accepted = reference_accepts(cls, case.event) and python_types_ok(root, case.event)
    if encoding == "msgpack":  # e.g. an `UnboundedInt` beyond 64 bits: JSON only
        accepted = accepted and _encodable(msgspec.msgpack.encode, case.event)
    return accepted


def attempt(call: Callable[[], Any]) -> Any:
    """The call's result, or the eventwire error it raised (anything else propagates)."""
    try:
        return call()
    except eventwire.EventwireError as exc:
        return exc


def check_case(case: Case, encoding: Encoding) -> None:
    codec = eventwire.codec.EventCodec(encoding=encoding)
    expected = expected_verdict(case, encoding)
    note(f"hostile at {case.hostile_path}; expected {'valid' if expected else 'refused'}")
    encoded = attempt(lambda: codec.encode(case.event))
    if isinstance(encoded, eventwire.EventwireError):
        note(f"refused: {encoded!r}")
        assert isinstance(encoded, eventwire.EventValidationError)
        assert not expected, f"a valid event was refused: {encoded}"
        assert encoded.event_type == eventwire.inspect.spec_of(case.schema.cls).type
        assert encoded.path.startswith("$")
        if case.hostile_path is not None and expected_verdict(
            Case(case.schema, case.original, None), encoding
        ):  # the error names the place, around it, or in it (when nothing else is wrong)
            hostile, named = _field_path(case.hostile_path), _field_path(encoded.path)
            assert hostile.startswith(named) or named.startswith(hostile), encoded.path
        STATS["refused"] += 1
        return
    assert expected, "an event the reference refuses was accepted"
    plain = msgspec.json.encode if encoding == "json" else msgspec.msgpack.encode
    assert encoded.value == plain(case.event)
    # The accepted bytes decode with the typed decoder and encode again to the same bytes.
    decoder = (msgspec.json if encoding == "json" else msgspec.msgpack).Decoder(case.schema.cls)
    # (An int in a float field comes back as a float: compared from the second round on.)
    first = plain(decoder.decode(encoded.value))
    second = plain(decoder.decode(first))
    if any(_has_set(kind) for _, kind in case.schema.fields):
        assert decoder.decode(second) == decoder.decode(first)
    else:
        assert second == first


@campaign(150)
@given(case=cases())
@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_codec_verdict_is_the_reference_and_nothing_escapes(encoding: Encoding, case: Case) -> None:
    STATS["cases"] += 1
    STATS["hostile"] += case.hostile_path is not None
    check_case(case, encoding)


@campaign(100, share=0.5)
@given(case=cases())
def test_without_validation_only_eventwire_errors_escape(case: Case) -> None:
    """``validate=False`` skips the schema check, not the rule: encoding a hostile value
    still fails as that event's ``EventValidationError``."""
    for encoding in ("json", "msgpack"):
        codec = eventwire.codec.EventCodec(encoding=encoding, validate=False)
        try:
            encoded = codec.encode(case.event)
        except eventwire.EventValidationError:
            continue
        plain = msgspec.json.encode if encoding == "json" else msgspec.msgpack.encode
        assert encoded.value == plain(case.event)


def _call_arguments() -> st.SearchStrategy[dict[str, Any]]:
    headers = st.one_of(
        st.dictionaries(st.text(max_size=4), st.text(max_size=4) | st.binary(max_size=4)),
        st.lists(st.tuples(st.text(max_size=4), st.text(max_size=4) | st.none())),
        st.dictionaries(st.text(max_size=4) | st.integers() | st.binary(), hostile_values()),
        st.lists(hostile_values(), max_size=2),
        hostile_values(),
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "key": st.text(max_size=4) | st.binary(max_size=4) | hostile_values(),
            "headers": headers,
            "topic": st.sampled_from(["orders", "a.b_c-1"]) | hostile_values(),
        },
    )


@campaign(150, share=0.5)
@given(case=cases(hostile=False), arguments=_call_arguments())
def test_hostile_call_arguments_are_that_events_error(
    case: Case, arguments: dict[str, Any]
) -> None:
    """``key``, ``headers`` and ``topic`` of a call: anything refused is an eventwire error
    naming the argument; anything accepted is what ``produce()`` can take."""
    config = eventwire.PublisherConfig(bootstrap_servers="fake.invalid:9092")
    codec = eventwire.codec.EventCodec(resolve_topic=config._resolve_topic)
    encoded = attempt(lambda: codec.encode(case.event, **arguments))
    if isinstance(encoded, eventwire.ConfigError):  # a str that is no legal topic name
        assert "topic" in arguments
        assert "is not a legal Kafka topic name" in str(encoded)
        return
    if isinstance(encoded, eventwire.EventwireError):
        assert isinstance(encoded, eventwire.EventValidationError)
        assert encoded.path in {"key", "headers", "topic"}, encoded
        return
    assert type(encoded.topic) is str
    encoded.topic.encode()
    assert encoded.key is None or type(encoded.key) is bytes
    if isinstance(encoded.headers, dict):
        pairs = list(encoded.headers.items())
    else:
        pairs = list(encoded.headers)
    for name, value in pairs:
        assert type(name) is str
        name.encode()  # librdkafka encodes names itself: a lone surrogate would raise there
        assert value is None or type(value) in (str, bytes)
        if type(value) is str:
            value.encode()
