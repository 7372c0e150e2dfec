"""Float fields must be finite: JSON has no NaN or Infinity (msgspec writes ``null``), so such
an event would reach Kafka as bytes its own typed decoder refuses."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import msgspec
import pytest

import eventwire


@eventwire.event(topic="readings", key="sensor", type="test.reading_taken", version=1)
class ReadingTaken(msgspec.Struct, frozen=True, kw_only=True):
    sensor: str
    value: float
    history: list[float] = []
    spare: float | None = None


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda x: ReadingTaken(sensor="s", value=x), "$.value"),
        (lambda x: ReadingTaken(sensor="s", value=1.0, history=[0.5, x]), "$.history[1]"),
        (lambda x: ReadingTaken(sensor="s", value=1.0, spare=x), "$.spare"),
    ],
)
def test_a_non_finite_float_is_refused_naming_its_path(
    encoding: Literal["json", "msgpack"],
    bad: float,
    build: Callable[[float], ReadingTaken],
    path: str,
) -> None:
    event = build(bad)
    with pytest.raises(eventwire.EventValidationError) as info:
        eventwire.EventCodec(encoding=encoding).encode(event)
    assert info.value.path == path
    assert "finite" in str(info.value)


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_finite_floats_and_ints_pass_and_decode_back(encoding: Literal["json", "msgpack"]) -> None:
    codec = eventwire.EventCodec(encoding=encoding)
    event = ReadingTaken(sensor="s", value=-0.0, history=[1e308, -5e-324, 3], spare=None)
    encoded = codec.encode(event)
    assert codec.validate_bytes(ReadingTaken, encoded.value) is not None
