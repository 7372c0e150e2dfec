"""The ``eventwire`` command. Each subcommand lives in its own module, imported only when run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventwire",
        description="Typed domain events to Apache Kafka: demo and tooling.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="publish orders and payments to an embedded local broker and verify them",
        description=(
            "Start a local Kafka-compatible broker (Tansu), publish orders (3 line items each)"
            " and payments through AsyncPublisher, show the validation errors of a few invalid"
            " events, consume everything back to verify it, print a summary, stop the broker."
        ),
    )
    demo.add_argument("--orders", type=int, default=50_000, help="orders to publish (50,000)")
    demo.add_argument(
        "--payments", type=int, default=None, help="payments to publish (default: orders / 2)"
    )
    demo.add_argument("--partitions", type=int, default=3, help="partitions per topic (3)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from eventwire._cli.demo import run_demo

        payments = args.payments if args.payments is not None else args.orders // 2
        return run_demo(orders=args.orders, payments=payments, partitions=args.partitions)
    return 2  # pragma: no cover - argparse refuses unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
