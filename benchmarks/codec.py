"""Codec micro-benchmark: microseconds per event, no broker involved.

``timeit`` loops (garbage collection off during a loop, as ``timeit`` does), best of
``repeat``; the same event every iteration.
"""

from __future__ import annotations

import timeit
from dataclasses import dataclass
from typing import Final

import msgspec

import eventwire
import eventwire.codec
from events import OrderPlaced, order

LOOPS: Final = 50_000
REPEAT: Final = 5


@dataclass(frozen=True)
class CodecTiming:
    name: str
    what: str
    best_us: float
    median_us: float


def measure(loops: int = LOOPS, repeat: int = REPEAT) -> list[CodecTiming]:
    event = order(4242)
    data = msgspec.json.encode(event)
    rows = (
        ("msgspec.json.encode", "encode alone", "encode(event)"),
        ("msgspec.json.decode(type=OrderPlaced)", "typed decode alone", "decode(data, type=T)"),
        (
            "EventCodec(validate=True).encode",
            "eventwire encode + validate + headers",
            "ew_v(event)",
        ),
        ("EventCodec(validate=False).encode", "eventwire encode + headers", "ew_nv(event)"),
    )
    namespace = {
        "encode": msgspec.json.encode,
        "decode": msgspec.json.decode,
        "T": OrderPlaced,
        "event": event,
        "data": data,
        "ew_v": eventwire.codec.EventCodec(validate=True).encode,
        "ew_nv": eventwire.codec.EventCodec(validate=False).encode,
    }
    timings: list[CodecTiming] = []
    for name, what, stmt in rows:
        timer = timeit.Timer(stmt, globals=namespace)
        timer.timeit(loops // 10)  # warm caches (per-class codec, decoder)
        runs = sorted(timer.repeat(repeat=repeat, number=loops))
        timings.append(
            CodecTiming(
                name=name,
                what=what,
                best_us=runs[0] / loops * 1e6,
                median_us=runs[len(runs) // 2] / loops * 1e6,
            )
        )
    return timings
