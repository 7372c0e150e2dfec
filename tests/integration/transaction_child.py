"""A process that dies inside a Kafka transaction (``-m tests.integration.transaction_child``).

It opens a transaction with ``--transactional-id``, publishes ``--count`` orders to
``--topic`` (each written: acknowledged by the broker, not committed), prints
``written <count>`` and waits for the parent to SIGKILL it. It never commits.
"""

from __future__ import annotations

import argparse
import sys
import time

import eventwire
from tests.events import order


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--transactional-id", required=True)
    parser.add_argument("--transaction-timeout", type=float, default=60.0)
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args(argv)
    config = eventwire.PublisherConfig(
        bootstrap_servers=args.bootstrap,
        topic_map={"orders": args.topic},
        transactional_id=args.transactional_id,
        transaction_timeout=args.transaction_timeout,
    )
    publisher = eventwire.Publisher(config)
    with publisher.transaction() as tx:
        receipts = tx.publish_many([order(n) for n in range(args.count)])
        print(f"written {len(receipts)}", flush=True)
        time.sleep(600)  # killed here, the transaction open


if __name__ == "__main__":
    main(sys.argv[1:])
