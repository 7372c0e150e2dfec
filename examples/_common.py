"""The command line every example shares: where the broker is, and a topic prefix so that a
run (or a test) can keep its topics apart."""

from __future__ import annotations

import argparse
import os
from typing import Any

import eventwire


def summary(doc: str | None) -> str:
    """The first paragraph of a docstring, as one line (a first sentence may wrap)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with ``--bootstrap-servers`` and ``--topic-prefix``; the
    docstring's first paragraph describes the example in ``--help``."""
    parsed = argparse.ArgumentParser(description=summary(doc))
    parsed.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("EVENTWIRE_BOOTSTRAP_SERVERS", "localhost:9092"),
        help="Kafka bootstrap servers (default: $EVENTWIRE_BOOTSTRAP_SERVERS or"
        " localhost:9092; `eventwire broker` runs a local one)",
    )
    parsed.add_argument(
        "--topic-prefix", default="", help="prefix every topic name (e.g. 'staging.')"
    )
    return parsed


def config(args: argparse.Namespace, **settings: Any) -> eventwire.PublisherConfig:
    """A ``PublisherConfig`` for the parsed arguments plus the example's own settings."""
    return eventwire.PublisherConfig(
        bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix, **settings
    )
