"""Startup time of `KafkaCluster` with different JVM flags.

    python benchmarks/kafka_startup.py [--rounds R] [--brokers 1 3]

For each broker count and flag set, in interleaved rounds: seconds from `start()` to every
broker serving (the cluster's ``startup_seconds``) and the CPU seconds its JVMs had used by
then (user + system, from /proc). The jars must have been fetched before (one start does it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from eventwire.testing import KafkaCluster
from eventwire.testing._kafka_node import DEFAULT_JVM_OPTIONS

FLAG_SETS = {
    "default (G1, C2)": ("-Xmx512m",),
    "SerialGC": ("-Xmx512m", "-XX:+UseSerialGC"),
    "SerialGC + C1 (kit)": DEFAULT_JVM_OPTIONS,
}


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one(brokers: int, flags: tuple[str, ...]) -> tuple[float, float]:
    with KafkaCluster(brokers=brokers, jvm_options=flags) as cluster:
        assert cluster.startup_seconds is not None
        pids = [pid for b in cluster.broker_ids if (pid := cluster.pid(b)) is not None]
        controller = cluster._controller
        if controller is not None and controller.process is not None:
            pids.append(controller.process.popen.pid)
        return cluster.startup_seconds, sum(_cpu_seconds(pid) for pid in pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--brokers", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    KafkaCluster(brokers=1).start().stop()  # fetch the jars, warm the page cache
    results: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for brokers in args.brokers:
            for name, flags in FLAG_SETS.items():
                results.setdefault((brokers, name), []).append(_one(brokers, flags))
                print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print("| brokers | JVM flags | start (s), median | JVM CPU (s), median |")
    print("|---|---|---|---|")
    for (brokers, name), runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"| {brokers} | {name} | {wall:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
