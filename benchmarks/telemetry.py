"""Telemetry overhead micro-benchmark: CPU per event of the core's per-event path (produce into
librdkafka's queue + settle a delivery report), with and without OpenTelemetry. No broker.

    python benchmarks/telemetry.py [--events N] [--repeat R]

Why a micro-benchmark: the throughput cases run against a broker on a machine shared with
other work, and their spread (often +-15 %) hides a 5 % budget. Here the same events go
through ``ProducerCore.produce`` (a real ``confluent_kafka.Producer``, bootstrap address
unreachable, so messages only queue) and ``ProducerCore.settle`` (synthetic successful
reports, the call the poll thread hands to the loop), timed with ``time.process_time`` and
best of R. Run it against another checkout (``PYTHONPATH=<checkout>/src``) to compare with a
version without telemetry hooks; the ``api_only`` row is what an application without an SDK
pays. Encoding is done before the clock starts: it is the same in every mode.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Sequence
from typing import Any

import eventwire
import eventwire.codec
from events import order
from eventwire._core.coordinator import ProducerCore
from eventwire._telemetry import instrumentation_for


class _NoSink:
    """Where the outcomes go: nowhere (the case measures the core and its telemetry)."""

    def settle(self, record: object, outcome: object) -> None:
        return None


class _Message:
    """What a delivery report's ``msg`` answers (topic, partition, offset, timestamp)."""

    __slots__ = ("_offset",)

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def topic(self) -> str:
        return "orders"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def _config(**changes: Any) -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(
        bootstrap_servers="127.0.0.1:9",  # discard port: nothing answers, messages only queue
        librdkafka_overrides={"queue.buffering.max.messages": 2_000_000},
        breaker=None,
        **changes,
    )


def _modes() -> dict[str, dict[str, Any]]:
    modes: dict[str, dict[str, Any]] = {"api_only": {}}
    if hasattr(eventwire, "Telemetry"):
        from otel_sdk import sdk_providers

        tracer_provider, meter_provider = sdk_providers()
        modes["disabled"] = {"telemetry": eventwire.Telemetry(enabled=False)}
        modes["sdk_metrics"] = {"telemetry": eventwire.Telemetry(meter_provider=meter_provider)}
        modes["sdk_traces_metrics"] = {
            "telemetry": eventwire.Telemetry(
                tracer_provider=tracer_provider, meter_provider=meter_provider
            )
        }
    return modes


def _once(changes: dict[str, Any], events: int) -> float:
    config = _config(**changes)
    core = ProducerCore(config, telemetry=instrumentation_for(config))
    codec = eventwire.codec.EventCodec(validate=False)
    sink = _NoSink()
    slots = [core.record(codec.encode(order(n)), sink) for n in range(events)]
    messages = [_Message(n) for n in range(events)]
    batch: list[Any] = []
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for slot in slots:
            core.produce(slot)
        for slot, message in zip(slots, messages, strict=True):  # the delivery callbacks
            slot._append = batch.append
            slot(None, message)
        for offset in range(0, events, 1000):  # the poll thread hands over batches
            core.settle(batch[offset : offset + 1000])
        cpu = time.process_time() - start
    finally:
        gc.enable()
        core.handle.transport.purge()
        core.stop_polling(1.0)
    return cpu / events * 1e6


def measure(events: int, repeat: int) -> dict[str, float]:
    results: dict[str, list[float]] = {}
    modes = _modes()
    names = list(modes)
    for round_ in range(repeat):  # interleaved and rotated: no mode always runs first
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            results.setdefault(name, []).append(_once(modes[name], events))
    return {name: min(values) for name, values in results.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    best = measure(args.events, args.repeat)
    base = best["api_only"]
    print(f"eventwire from {eventwire.__file__}")
    print(f"{'mode':<20} {'CPU us/event (best)':>20} {'vs api_only':>12}")
    for name, value in best.items():
        print(f"{name:<20} {value:>20.2f} {value / base:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
