"""Coverage-guided fuzzing of the codec (atheris).

Each input picks an event class and one of two paths:

* **bytes**: the input is a payload; ``validate_bytes`` (the CLI's and the consumer's
  check) may only accept it or raise ``EventValidationError``; what it accepts, decoded
  into the class, must be accepted by ``EventCodec.encode`` in both encodings and come out
  as bytes that validate again;
* **object**: the input is decoded as MessagePack into arbitrary values (any shape, 64-bit
  integers, NaN, raw bytes), optionally wrapped in hostile objects, and placed in the fields
  of an event built without validation; ``encode`` may only return an encoded event or
  raise ``EventValidationError``.

Anything else escaping is a crash. Run: ``python fuzz/codec_harness.py [libFuzzer flags]
[corpus dirs]`` (``make faults`` runs it for a fixed time).
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from typing import Any

import atheris

with atheris.instrument_imports(include=["eventwire"]):
    import msgspec

    import eventwire

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from events import EVENTS, VALID


class _Boom(Exception):
    pass


def _boom(*args: object) -> Any:
    raise _Boom


class _RaisingStr(str):
    __hash__ = _boom  # type: ignore[assignment]
    encode = _boom  # type: ignore[assignment]


class _RaisingTz(dt.tzinfo):
    utcoffset = _boom
    dst = _boom


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _wrap(provider: atheris.FuzzedDataProvider, value: Any) -> Any:
    """A hostile stand-in for ``value`` (or the value itself)."""
    choice = provider.ConsumeIntInRange(0, 12)
    if choice == 1 and isinstance(value, str):
        return _RaisingStr(value)
    if choice == 2:
        return dt.datetime(2026, 1, 1, tzinfo=_RaisingTz())
    if choice == 3:
        return _nested(provider.ConsumeIntInRange(0, 3000))
    if choice == 4 and isinstance(value, int | float):
        return value * 10 ** provider.ConsumeIntInRange(0, 500)
    if choice == 5 and isinstance(value, str):
        return Decimal(value) if value.isdigit() else value + "\ud800"
    if choice == 6:
        return dt.datetime.fromtimestamp(provider.ConsumeIntInRange(0, 2**31), tz=dt.UTC)
    if choice == 7 and isinstance(value, list):
        return tuple(value)
    return value


_CODECS = {
    encoding: eventwire.codec.EventCodec(encoding=encoding)  # type: ignore[arg-type]
    for encoding in ("json", "msgpack")
}
_DECODERS = {cls: msgspec.json.Decoder(cls) for cls in EVENTS}
_ANY = msgspec.msgpack.Decoder()
_VALID = {type(event): event for event in VALID}


def test_one_input(data: bytes) -> None:
    if not data:
        return
    # The first byte picks the class (bit 0) and the path (bit 1): a seed file is that
    # byte and then a payload.
    cls = EVENTS[data[0] % len(EVENTS)]
    if data[0] & 2:
        _object_path(cls, atheris.FuzzedDataProvider(data[1:]))
    else:
        _bytes_path(cls, data[1:])


def _bytes_path(cls: type[Any], payload: bytes) -> None:
    try:
        _CODECS["json"].validate_bytes(cls, payload)
    except eventwire.EventValidationError:
        return
    event = _DECODERS[cls].decode(payload)
    for codec in _CODECS.values():
        try:
            value = codec.encode(event).value
        except eventwire.EventValidationError as exc:
            # What the typed decode accepted, the codec accepts (JSON), unless it is nested
            # so deep that the stack depth of the call decides.
            if codec.encoding == "json" and "nested too deeply" not in exc.reason:
                raise AssertionError(f"accepted bytes refused: {payload!r:.200}") from exc
            continue
        if codec.encoding == "json":
            codec.validate_bytes(cls, value)


def _object_path(cls: type[Any], provider: atheris.FuzzedDataProvider) -> None:
    fields = cls.__struct_fields__
    values: dict[str, Any] = {}
    while provider.remaining_bytes() and len(values) < len(fields):
        name = fields[provider.ConsumeIntInRange(0, len(fields) - 1)]
        chunk = provider.ConsumeBytes(provider.ConsumeIntInRange(1, 64))
        try:
            value = _ANY.decode(chunk)
        except msgspec.DecodeError:
            value = chunk.decode("utf-8", "surrogateescape")
        values[name] = _wrap(provider, value)
    event = msgspec.structs.replace(_VALID[cls], **values)  # no validation: any value goes
    for codec in _CODECS.values():
        try:
            codec.encode(event)
        except eventwire.EventValidationError as exc:
            if not exc.path.startswith("$"):
                raise AssertionError(f"no field path: {exc}") from exc


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
