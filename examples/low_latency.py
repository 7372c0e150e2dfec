"""Low-latency configuration: the ``low_latency`` preset for request paths that await each
event, with the latency measured and printed.

What it shows:

* ``PublisherConfig(preset="low_latency")``: ``linger.ms=0`` and Nagle off, so a lone event
  leaves at once instead of waiting to fill a batch — still ``acks=all`` and idempotent;
* a request handler that ``await``s one ``publish()`` at a time (one event in flight): the
  time it waits is the full round trip to the broker's acknowledgement;
* the measured p50 / p99 / max of that wait, for ``low_latency`` and, for comparison, the
  default ``durable`` preset (linger 5 ms).

Run it: ``python -m examples.low_latency --bootstrap-servers HOST:PORT [--requests 500]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import statistics
import time
import uuid
from collections.abc import Sequence

import msgspec

import eventwire
from examples import _common


@eventwire.event(topic="payments.authorized", key="payment_id", type="pay.authorized", version=1)
class PaymentAuthorized(msgspec.Struct, frozen=True, kw_only=True):
    payment_id: str
    request_id: str
    authorized_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ordered = sorted(seconds)
        p99 = ordered[max(0, round(len(ordered) * 0.99) - 1)]
        return cls(statistics.median(ordered) * 1e3, p99 * 1e3, ordered[-1] * 1e3)


async def handle_requests(config: eventwire.PublisherConfig, requests: int) -> Latency:
    """A handler publishing one event per request and awaiting its acknowledgement."""
    waits = []
    async with eventwire.AsyncPublisher(config) as publisher:
        for n in range(requests + 20):
            event = PaymentAuthorized(
                payment_id=f"pay-{config.preset}-{n}",
                request_id=uuid.uuid4().hex,
                authorized_at=dt.datetime.now(dt.UTC),
            )
            started = time.perf_counter()
            await publisher.publish(event)
            if n >= 20:  # the first ones pay for connection setup and metadata
                waits.append(time.perf_counter() - started)
    return Latency.of(waits)


async def run(config: eventwire.PublisherConfig, *, requests: int) -> dict[str, Latency]:
    """Measure both presets; returns the latency of each."""
    results = {}
    for preset in ("low_latency", "durable"):
        results[preset] = await handle_requests(
            dataclasses.replace(config, preset=preset), requests
        )
        lat = results[preset]
        print(
            f"{preset:<12} publish latency p50 {lat.p50_ms:6.2f} ms  p99 {lat.p99_ms:6.2f} ms"
            f"  max {lat.max_ms:6.2f} ms"
        )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--requests", type=int, default=500, help="requests per preset")
    args = parser.parse_args(argv)
    asyncio.run(run(_common.config(args), requests=args.requests))


if __name__ == "__main__":
    main()
