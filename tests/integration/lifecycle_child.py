"""A process that leaves its publisher open at exit (``-m tests.integration.lifecycle_child``).

It publishes one event (so the connection is up), prints ``ready`` and waits for a line on
stdin (the parent pauses the proxy meanwhile), then hands ``--count`` more orders to the
publisher without waiting for them: ``sync`` from a daemon thread's ``publish_many``, ``async``
as ``publish`` tasks left behind when ``asyncio.run`` ends. It prints ``queued N`` (after the
loop closed) and exits without closing the publisher: eventwire's exit hook must deliver what
it holds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time

import eventwire
from tests.events import order


def _config(args: argparse.Namespace) -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(
        bootstrap_servers=args.bootstrap, topic_map={"orders": args.topic}
    )


def _sync(args: argparse.Namespace) -> None:
    publisher = eventwire.Publisher(_config(args))
    publisher.publish(order(0))
    print("ready", flush=True)
    sys.stdin.readline()
    events = [order(n) for n in range(1, args.count + 1)]
    threading.Thread(target=publisher.publish_many, args=(events,), daemon=True).start()
    while publisher.outstanding < args.count:  # publish_many takes the whole call at once
        time.sleep(0.001)
    print(f"queued {publisher.outstanding}", flush=True)


async def _async(args: argparse.Namespace) -> eventwire.AsyncPublisher:
    publisher = eventwire.AsyncPublisher(_config(args))
    await publisher.publish(order(0))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    tasks = [asyncio.ensure_future(publisher.publish(order(n))) for n in range(1, args.count + 1)]
    await asyncio.sleep(0)  # each task runs to its produce() and waits for its receipt
    del tasks  # cancelled by asyncio.run; the events are in librdkafka's queue
    return publisher


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sync", "async"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "sync":
        _sync(args)
    else:
        publisher = asyncio.run(_async(args))  # the loop is closed before anything is delivered
        print(f"queued {publisher.outstanding}", flush=True)


if __name__ == "__main__":
    main()
