"""Graceful shutdown on SIGTERM/SIGINT, with a durable spool: nothing accepted is lost at a deploy.

What it shows:

* a long-running service loop publishing ``StockReserved`` events with ``accept()``: each call
  returns once the event is committed to the spool file, so it reaches Kafka even if the
  process dies the next instant;
* ``eventwire.GracefulShutdown(publisher, deadline=...)``: the first SIGTERM/SIGINT stops
  intake at once (the loop sees ``shutdown.requested``), outstanding events get the deadline to
  be delivered, whatever is left stays in the spool and is delivered by the next start with the
  same ``spool_path``; a second signal exits at once. The signal handler only sets a flag — no
  flush ever runs inside it;
* the one summary line ``eventwire.publisher_closed`` (delivered / spooled / failed) and the
  ``CloseReport`` the service prints before it exits.

Run it: ``python -m examples.graceful_shutdown --bootstrap-servers HOST:PORT [--spool FILE]
[--deadline 5]`` (a local broker: ``eventwire broker``), then press Ctrl-C or
``kill -TERM <pid>``. It prints ``publishing`` once it runs and ``report {...}`` (JSON) at the
end; run it again with the same ``--spool`` to deliver what a deadline left behind.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import msgspec

import eventwire
from examples import _common


@eventwire.event(topic="stock", key="sku", type="stock.reserved", version=1)
class StockReserved(msgspec.Struct, frozen=True, kw_only=True):
    sku: str
    order_id: str
    quantity: int


async def run_service(
    config: eventwire.PublisherConfig, *, deadline: float, limit: int | None = None
) -> eventwire.CloseReport:
    """Publish reservations until a shutdown signal (or ``limit`` events), then close."""
    publisher = eventwire.AsyncPublisher(config)
    async with publisher, eventwire.GracefulShutdown(publisher, deadline=deadline) as shutdown:
        print("publishing", flush=True)
        for n in itertools.count():
            if shutdown.requested or (limit is not None and n >= limit):
                break
            event = StockReserved(sku=f"sku-{n % 50}", order_id=f"ord-{n}", quantity=1 + n % 3)
            try:
                await publisher.accept(event)
            except eventwire.PublisherClosedError:
                break  # the signal arrived while this call waited
            if n % 100 == 99:
                await asyncio.sleep(0.01)  # a service paces itself; here: ~10k events/s
    assert shutdown.report is not None  # noqa: S101 - set when the block ends
    return shutdown.report


def main(argv: Sequence[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--spool", type=Path, help="spool file (default: a temporary one)")
    parser.add_argument("--deadline", type=float, default=5.0, help="shutdown deadline, s")
    args = parser.parse_args(argv)
    spool = args.spool or Path(tempfile.mkdtemp()) / "eventwire-spool.db"
    report = asyncio.run(
        run_service(_common.config(args, spool_path=spool), deadline=args.deadline)
    )
    summary = {
        "delivered": report.delivered,
        "spooled": report.spooled,
        "failed": report.failed,
        "timed_out": report.timed_out,
        "spool": str(spool),
    }
    print("report " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
