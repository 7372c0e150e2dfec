"""Float fields must be finite: JSON has no NaN or Infinity (msgspec writes ``null``), so such
an event would reach Kafka as bytes its own typed decoder refuses."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
import pytest

import eventwire
import eventwire.codec


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
        eventwire.codec.EventCodec(encoding=encoding).encode(event)
    assert info.value.path == path
    assert "finite" in str(info.value)


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_finite_floats_and_ints_pass_and_decode_back(encoding: Literal["json", "msgpack"]) -> None:
    codec = eventwire.codec.EventCodec(encoding=encoding)
    event = ReadingTaken(sensor="s", value=-0.0, history=[1e308, -5e-324, 3], spare=None)
    encoded = codec.encode(event)
    assert codec.validate_bytes(ReadingTaken, encoded.value) is not None


@eventwire.event(topic="readings", key="sensor", type="test.ratio_measured", version=1)
class RatioMeasured(msgspec.Struct, frozen=True, kw_only=True):
    sensor: str
    ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5
    note: Annotated[float, msgspec.Meta(description="no bounds")] = 0.0


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(
    ("fields", "path", "reason"),
    [
        # msgspec's convert lets a Decimal stand for a float; it would reach Kafka as a string
        ({"ratio": Decimal("0.5")}, "$.ratio", "Expected `float`, got `str`"),
        ({"note": Decimal("2")}, "$.note", "Expected `float`, got `str`"),
        # no bounds to refuse NaN: JSON would carry null
        ({"note": math.nan}, "$.note", "Expected `float`, got `null`"),
        ({"note": math.inf}, "$.note", "Expected `float`, got `null`"),
        ({"ratio": math.nan}, "$.ratio", "Expected `float` >= 0.0"),
    ],
)
def test_a_constrained_float_gets_no_decimal_and_no_nan(
    encoding: Literal["json", "msgpack"], fields: dict[str, object], path: str, reason: str
) -> None:
    event = RatioMeasured(sensor="s", **fields)  # type: ignore[arg-type]
    with pytest.raises(eventwire.EventValidationError) as info:
        eventwire.codec.EventCodec(encoding=encoding).encode(event)
    assert (info.value.path, info.value.reason) == (path, reason)


def test_a_constrained_float_passes_and_decodes_back() -> None:
    codec = eventwire.codec.EventCodec()
    event = RatioMeasured(sensor="s", ratio=1, note=-1e300)
    encoded = codec.encode(event)
    assert msgspec.json.decode(encoded.value, type=RatioMeasured) == event
    assert codec.validate_bytes(RatioMeasured, encoded.value) is not None
