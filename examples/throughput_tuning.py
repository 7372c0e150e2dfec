"""Throughput tuning: the ``throughput`` preset, ``publish_many`` in large chunks, and what
else there is to tune — measured against the default ``durable`` preset in the same run.

What it shows:

* ``PublisherConfig(preset="throughput")``: linger 20 ms, lz4 compression, bigger batches and
  a deeper local queue — still ``acks=all`` and idempotent (no preset trades durability);
* ``publish_many(chunk)`` with chunks of thousands: one call hands the chunk to librdkafka and
  waits for all its delivery reports (one ``call_soon_threadsafe`` per poll batch, not per
  event), so the per-event overhead is the codec;
* the knobs, in the order they usually matter:
  1. batch the calls (``publish_many``) instead of awaiting one ``publish`` at a time;
  2. the preset (``linger_ms`` and ``compression`` override it one by one);
  3. chunk size: large enough to keep batches full, small enough to bound memory;
  4. ``validate=False`` only for events your own code built and tested (it skips the
     schema check, not the encoding);
  5. ``queue_full_timeout`` and ``librdkafka_overrides={"queue.buffering.max.messages": ...}``
     when bursts outrun the broker (a full queue makes ``publish`` wait, never raise).
  Measure on your broker: a local one on a busy laptop hides what network batching gains.

Run it: ``python -m examples.throughput_tuning --bootstrap-servers HOST:PORT [--events 50000]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

import eventwire
from examples import _common

START = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


@eventwire.event(topic="clicks", key="session_id", type="web.click.recorded", version=1)
class ClickRecorded(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    url: str
    at: dt.datetime
    basket_value: Decimal


def clicks(count: int, offset: int = 0) -> list[ClickRecorded]:
    return [
        ClickRecorded(
            session_id=f"s-{n % 500:04d}",
            url=f"https://shop.example/products/{n % 97}",
            at=START + dt.timedelta(milliseconds=n),
            basket_value=Decimal(n % 10_000) / 100,
        )
        for n in range(offset, offset + count)
    ]


async def measure(config: eventwire.PublisherConfig, events: list[Any], chunk: int) -> float:
    """Publish ``events`` in chunks of ``chunk``; returns events per second."""
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish_many(events[:100])  # connection, metadata, producer id
        started = time.perf_counter()
        for offset in range(100, len(events), chunk):
            outcomes = await publisher.publish_many(events[offset : offset + chunk])
            if not all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes):
                raise RuntimeError("some events were not delivered")
        return (len(events) - 100) / (time.perf_counter() - started)


async def run(config: eventwire.PublisherConfig, *, events: int) -> dict[str, float]:
    """Publish ``events`` clicks once per setting; returns events/s by setting."""
    settings = {
        "durable preset, chunks of 1,000": (config, 1_000),
        "throughput preset, chunks of 1,000": (
            dataclasses.replace(config, preset="throughput"),
            1_000,
        ),
        "throughput preset, chunks of 10,000": (
            dataclasses.replace(config, preset="throughput"),
            10_000,
        ),
    }
    rates = {}
    for n, (label, (tuned, chunk)) in enumerate(settings.items()):
        rates[label] = await measure(tuned, clicks(events + 100, offset=n * (events + 100)), chunk)
        print(f"{label:<40} {rates[label]:>10,.0f} events/s")
    return rates


def main(argv: Sequence[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--events", type=int, default=50_000, help="events per setting")
    args = parser.parse_args(argv)
    asyncio.run(run(_common.config(args), events=args.events))


if __name__ == "__main__":
    main()
