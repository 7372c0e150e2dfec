"""A publishing process for the crash tests: ``python -m tests.integration.spool_child ...``.

It accepts ``--count`` orders (numbered from ``--start``) through an ``AsyncPublisher`` with a
spool, in chunks of ``--chunk``, with at most ``--window`` chunks awaiting delivery. After each
chunk is accepted (durable) it appends the chunk's ``ce_id``s to ``--side-file`` and prints the
running count on stdout, so the parent can kill it at a known point. At the end (or on SIGTERM,
through ``GracefulShutdown``) it closes the publisher and prints ``report <json>``.

``--crash-after-commit`` is the seam for "killed between the spool write and produce()": the
spool writer exits the process (``os._exit``) right after its first commit, before producing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import sys
from typing import Any

import eventwire
import eventwire._durable.relay
from tests.events import order


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--spool", required=True)
    parser.add_argument("--side-file", required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--deadline", type=float, default=5.0)
    parser.add_argument("--max-events", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=64)
    parser.add_argument("--window", type=int, default=8, help="chunks awaiting delivery")
    parser.add_argument("--crash-after-commit", action="store_true")
    return parser.parse_args(argv)


def _crash_after_first_commit() -> None:
    def dispatch(self: Any, entries: Any) -> None:
        os._exit(70)  # after the commit, before anything is produced

    eventwire._durable.relay.Relay._dispatch = dispatch  # type: ignore[method-assign]


async def _main(args: argparse.Namespace) -> None:
    config = eventwire.PublisherConfig(
        bootstrap_servers=args.bootstrap,
        topic_map={"orders": args.topic},
        spool_path=args.spool,
        spool_max_events=args.max_events,
        spool_full_timeout=60.0,
        delivery_timeout=30.0,
        breaker=eventwire.BreakerPolicy(failures=1, window=5.0, cooldown=0.2, probe_timeout=0.3),
        librdkafka_overrides={"socket.timeout.ms": 2_000, "reconnect.backoff.max.ms": 200},
    )
    accepted = 0
    with open(args.side_file, "a", encoding="ascii") as side:  # noqa: ASYNC230 - tiny writes
        async with eventwire.AsyncPublisher(config) as publisher:
            async with eventwire.GracefulShutdown(publisher, deadline=args.deadline) as shutdown:
                print("started", flush=True)
                handles: list[eventwire.Accepted] = []
                window: collections.deque[list[eventwire.Accepted]] = collections.deque()
                for first in range(args.start, args.start + args.count, args.chunk):
                    if len(window) >= args.window:  # a bounded number of chunks in flight
                        oldest = window.popleft()
                        await asyncio.wait([asyncio.ensure_future(a.delivered()) for a in oldest])
                    last = min(first + args.chunk, args.start + args.count)
                    events = [order(n, key=f"k{n % args.keys}") for n in range(first, last)]
                    try:
                        results = await publisher.accept_many(events)
                    except eventwire.PublisherClosedError:
                        break
                    chunk = [r for r in results if isinstance(r, eventwire.Accepted)]
                    handles.extend(chunk)
                    window.append(chunk)
                    # write() reaches the OS before the count is printed: a SIGKILL after the
                    # print cannot lose these lines.
                    side.write("".join(f"{a.event_id}\n" for a in chunk))
                    side.flush()
                    accepted += len(chunk)
                    print(f"accepted {accepted}", flush=True)
                    if len(chunk) < len(events):
                        break
                if not shutdown.requested:  # wait for every receipt, or for a signal
                    delivered = asyncio.ensure_future(
                        asyncio.gather(*(a.delivered() for a in handles))
                    )
                    signalled = asyncio.ensure_future(shutdown.wait())
                    await asyncio.wait({delivered, signalled}, return_when="FIRST_COMPLETED")
                    for task in (delivered, signalled):
                        task.cancel()
                    await asyncio.gather(delivered, signalled, return_exceptions=True)
            report = shutdown.report
    assert report is not None
    print("report " + json.dumps(eventwire_report(report)), flush=True)


def eventwire_report(report: eventwire.CloseReport) -> dict[str, Any]:
    return {
        "delivered": report.delivered,
        "spooled": report.spooled,
        "failed": report.failed,
        "undelivered": report.undelivered,
        "timed_out": report.timed_out,
    }


if __name__ == "__main__":
    # An application: eventwire's log lines join the counts on stdout, where the parent waits
    # for some of them (eventwire.shutdown_requested).
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    arguments = _args(sys.argv[1:])
    if arguments.crash_after_commit:
        _crash_after_first_commit()
    asyncio.run(_main(arguments))
