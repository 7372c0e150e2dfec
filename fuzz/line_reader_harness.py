"""Coverage-guided fuzzing of ``eventwire produce``'s line reader (atheris).

The input is a whole input file: arbitrary bytes (invalid UTF-8, byte order marks, NUL
bytes, CR/LF mixes, huge and deeply nested lines). The reader splits it into numbered
lines and checks each against an event class; every line must come out as an event or an
``EventValidationError`` about that line, and every event it accepts must be accepted by
the publisher's codec (JSON) as well. Anything else escaping is a crash.
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports(include=["eventwire"]):
    import eventwire
    from eventwire._cli.input import FileInput
    from eventwire._cli.produce import _LineChecker

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from events import EVENTS

_CHECKERS = [
    _LineChecker(cls, forbid_unknown_fields=forbid) for cls in EVENTS for forbid in (False, True)
]
_CODEC = eventwire.codec.EventCodec()
_BOM = b"\xef\xbb\xbf"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    checker = _CHECKERS[data[0] % len(_CHECKERS)]
    file = data[1:]
    last = 0
    for chunk in FileInput(io.BytesIO(file), None, owned=False)._chunks(7):
        for number, raw in chunk:
            assert number > last, (number, last)
            last = number
            assert b"\n" not in raw, raw
            assert raw.strip(), raw
            if number == 1:  # one byte order mark at the start of the file is dropped
                first = file.split(b"\n", 1)[0].removeprefix(_BOM).rstrip(b"\r\n")
                assert raw == first, (raw, first)
            try:
                event, _ = checker.check(raw)
            except eventwire.EventValidationError as exc:
                str(exc)  # printable: the rejects file and the console show it
                continue
            try:
                _CODEC.encode(event)
            except eventwire.EventValidationError as exc:
                if "nested too deeply" not in exc.reason:
                    raise AssertionError(f"checked line refused: {raw!r:.200}") from exc


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
