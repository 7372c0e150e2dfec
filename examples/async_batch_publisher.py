"""Async batch publisher: publish a large stream in batches with ``publish_many`` and handle
each event's outcome.

What it shows:

* ``AsyncPublisher.publish_many(batch)`` hands a whole batch to librdkafka and waits until
  every event of it is settled: one outcome per event, in input order — a
  ``DeliveryReceipt``, or the error that event met;
* one bad event (here every 500th sensor reading has a humidity above 100 %, a ``Meta``
  constraint) is refused by validation and does not cancel its neighbours;
* batching bounds memory (one batch in flight) and keeps order per key (readings of a sensor
  arrive in the order they were taken).

Run it: ``python -m examples.async_batch_publisher --bootstrap-servers HOST:PORT
[--events 10000 --batch-size 1000]``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated

import msgspec

import eventwire
from examples import _common

START = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)


@eventwire.event(topic="readings", key="sensor_id", type="plant.reading.taken", version=1)
class ReadingTaken(msgspec.Struct, frozen=True, kw_only=True):
    sensor_id: str
    taken_at: dt.datetime
    temperature_c: float
    humidity_pct: Annotated[float, msgspec.Meta(ge=0, le=100)]


def readings(count: int) -> Iterator[ReadingTaken]:
    """``count`` readings from 20 sensors; every 500th is broken (humidity 140 %)."""
    for n in range(count):
        yield ReadingTaken(
            sensor_id=f"sensor-{n % 20:02d}",
            taken_at=START + dt.timedelta(seconds=n),
            temperature_c=18.0 + (n % 70) / 10,
            humidity_pct=140.0 if n % 500 == 499 else 40.0 + n % 30,
        )


def batches(stream: Iterator[ReadingTaken], size: int) -> Iterator[list[ReadingTaken]]:
    batch: list[ReadingTaken] = []
    for item in stream:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class BatchResult:
    delivered: list[ReadingTaken] = field(default_factory=list)
    refused: list[tuple[ReadingTaken, eventwire.EventwireError]] = field(default_factory=list)


async def run(config: eventwire.PublisherConfig, *, events: int, batch_size: int) -> BatchResult:
    """Publish ``events`` readings in batches; returns what was delivered and refused."""
    result = BatchResult()
    started = time.perf_counter()
    async with eventwire.AsyncPublisher(config) as publisher:
        for batch in batches(readings(events), batch_size):
            outcomes = await publisher.publish_many(batch)
            for reading, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, eventwire.DeliveryReceipt):
                    result.delivered.append(reading)
                else:
                    result.refused.append((reading, outcome))
    took = time.perf_counter() - started
    print(
        f"delivered {len(result.delivered):,}, refused {len(result.refused)}"
        f" in {took:.2f} s ({len(result.delivered) / took:,.0f} events/s)"
    )
    for reading, error in result.refused[:3]:
        print(f"  refused {reading.sensor_id} at {reading.taken_at:%H:%M:%S}: {error}")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--events", type=int, default=10_000, help="readings to publish")
    parser.add_argument("--batch-size", type=int, default=1_000, help="events per publish_many")
    args = parser.parse_args(argv)
    asyncio.run(run(_common.config(args), events=args.events, batch_size=args.batch_size))


if __name__ == "__main__":
    main()
