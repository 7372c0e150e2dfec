"""Throughput of Kafka transactions of 1, 100 and 1,000 events, on Apache Kafka.

    python benchmarks/transactions.py [--rounds R] [--quick] [--output benchmarks/RESULTS.md]

One Apache Kafka broker (``eventwire.testing.KafkaCluster``, KRaft, one JVM) runs the whole
benchmark and is stopped at the end. For each transaction size S, in interleaved rounds (a
discarded warm-up round, then R rounds, case order shuffled per round with a fixed seed):

* ``raw_transaction``: ``confluent_kafka.Producer`` with eventwire's librdkafka settings and a
  ``transactional.id``: ``begin_transaction()``, S ``produce()`` of pre-encoded records
  (eventwire's bytes, key and CloudEvents headers), ``commit_transaction()`` (which flushes).
  No callback. The least a transactional publisher does;
* ``async_transaction``: ``async with publisher.transaction() as tx: await
  tx.publish_many(S events)`` (``await tx.publish(event)`` for S = 1), validation on;
* ``sync_transaction``: the same with ``Publisher`` and ``with``;
* ``async_publish_many``: no transaction: ``await publisher.publish_many(S events)``
  (``await publisher.publish(event)`` for S = 1), the same-run reference of what a
  transaction adds over plain publishing.

Every case publishes T transactions (or chunks) of S events to its own 3-partition topic:
T = 400, 60 and 12 for S = 1, 100 and 1,000. Reported per case and size: events/s,
transactions/s, CPU µs per event (``time.process_time()`` of the whole process, librdkafka's
threads included, not the broker's) and the time of one transaction (begin to committed; for
``publish_many`` one call), p50 and p99. Each topic is read back (``read_committed``) at the
end and must hold every event of every round.

The report replaces the section between ``<!-- transactions:begin -->`` and
``<!-- transactions:end -->`` of ``--output`` (appended when missing); with the default
output it is also kept in ``benchmarks/TRANSACTIONS.md``, which ``run.py`` appends to every
report it writes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.metadata
import logging
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import confluent_kafka
from confluent_kafka import Producer

import eventwire
from events import DECLARED_TOPIC, orders
from eventwire.codec import EventCodec
from eventwire.testing import KafkaCluster

HERE: Final = Path(__file__).resolve().parent
SIZES: Final = (1, 100, 1000)
#: Transactions (or calls) per case, size and round.
COUNTS: Final = {1: 400, 100: 60, 1000: 12}
CASES: Final = ("raw_transaction", "async_transaction", "sync_transaction", "async_publish_many")
BEGIN: Final = "<!-- transactions:begin -->"
END: Final = "<!-- transactions:end -->"
SEED: Final = 20261207


@dataclasses.dataclass
class Sample:
    case: str
    size: int
    round: int
    events: int
    wall_s: float
    cpu_s: float
    #: Seconds per transaction (or call).
    units: list[float]


class Bench:
    """The broker, one topic per case and size, and the pre-built events."""

    def __init__(self, cluster: KafkaCluster, quick: bool) -> None:
        self.cluster = cluster
        self.counts = {
            size: max(2, count // 4) if quick else count for size, count in COUNTS.items()
        }
        self.topics = {
            (case, size): cluster.create_topic(f"tx-bench-{case}-{size}-{uuid.uuid4().hex[:6]}", 3)
            for case in CASES
            for size in SIZES
        }
        self.events = orders(max(size * count for size, count in self.counts.items()))
        self.expected: dict[tuple[str, int], int] = dict.fromkeys(self.topics, 0)

    def config(self, case: str, size: int, **changes: Any) -> eventwire.PublisherConfig:
        return eventwire.PublisherConfig(
            bootstrap_servers=self.cluster.bootstrap_servers,
            topic_map={DECLARED_TOPIC: self.topics[case, size]},
            **changes,
        )

    def batches(self, size: int) -> list[Sequence[Any]]:
        return [self.events[i * size : (i + 1) * size] for i in range(self.counts[size])]


def _measure(
    bench: Bench, case: str, size: int, round_: int, run: Callable[[list[float]], None]
) -> Sample:
    units: list[float] = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    run(units)
    sample = Sample(
        case,
        size,
        round_,
        bench.counts[size] * size,
        time.perf_counter() - wall0,
        time.process_time() - cpu0,
        units,
    )
    bench.expected[case, size] += sample.events
    return sample


# -- the cases ------------------------------------------------------------------------------------


def raw_transaction(bench: Bench, size: int, round_: int) -> Sample:
    config = bench.config("raw_transaction", size, transactional_id=f"raw-{size}-{round_}")
    settings = {k: v for k, v in config._to_librdkafka().items() if not callable(v)}
    codec = EventCodec(
        encoding="json", validate=True, source="/bench", resolve_topic=config._resolve_topic
    )
    records = [[codec.encode(event) for event in batch] for batch in bench.batches(size)]
    producer = Producer(settings)
    producer.init_transactions(60)
    producer.begin_transaction()  # warm-up: connections, partitions added
    producer.produce(records[0][0].topic, records[0][0].value, records[0][0].key)
    producer.abort_transaction(60)

    def run(units: list[float]) -> None:
        for batch in records:
            started = time.perf_counter()
            producer.begin_transaction()
            for enc in batch:
                producer.produce(enc.topic, enc.value, enc.key, headers=enc.headers)
            producer.commit_transaction(60)
            units.append(time.perf_counter() - started)

    try:
        return _measure(bench, "raw_transaction", size, round_, run)
    finally:
        producer.flush(10)


async def _async_transaction(bench: Bench, size: int, round_: int) -> Sample:
    tid = f"async-{size}-{round_}"
    config = bench.config("async_transaction", size, transactional_id=tid)
    batches = bench.batches(size)
    async with eventwire.AsyncPublisher(config) as publisher:
        try:
            async with publisher.transaction() as warm:  # init, connections
                await warm.publish(batches[0][0])
                raise _WarmUp
        except _WarmUp:
            pass
        units: list[float] = []
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for batch in batches:
            started = time.perf_counter()
            async with publisher.transaction() as tx:
                if size == 1:
                    await tx.publish(batch[0])
                else:
                    await tx.publish_many(batch)
            units.append(time.perf_counter() - started)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    bench.expected["async_transaction", size] += size * len(batches)
    return Sample("async_transaction", size, round_, size * len(batches), wall, cpu, units)


def async_transaction(bench: Bench, size: int, round_: int) -> Sample:
    return asyncio.run(_async_transaction(bench, size, round_))


class _WarmUp(Exception):
    """Aborts the warm-up transaction: nothing of it is counted or read back."""


def sync_transaction(bench: Bench, size: int, round_: int) -> Sample:
    config = bench.config("sync_transaction", size, transactional_id=f"sync-{size}-{round_}")
    batches = bench.batches(size)
    with eventwire.Publisher(config) as publisher:
        try:
            with publisher.transaction() as warm:
                warm.publish(batches[0][0])
                raise _WarmUp
        except _WarmUp:
            pass

        def run(units: list[float]) -> None:
            for batch in batches:
                started = time.perf_counter()
                with publisher.transaction() as tx:
                    if size == 1:
                        tx.publish(batch[0])
                    else:
                        tx.publish_many(batch)
                units.append(time.perf_counter() - started)

        return _measure(bench, "sync_transaction", size, round_, run)


async def _async_publish_many(bench: Bench, size: int, round_: int) -> Sample:
    config = bench.config("async_publish_many", size)
    batches = bench.batches(size)
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(batches[0][0])  # warm-up (read back: counted)
        bench.expected["async_publish_many", size] += 1
        units: list[float] = []
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for batch in batches:
            started = time.perf_counter()
            if size == 1:
                await publisher.publish(batch[0])
            else:
                outcomes = await publisher.publish_many(batch)
                failed = [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)]
                if failed:
                    raise failed[0]
            units.append(time.perf_counter() - started)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    bench.expected["async_publish_many", size] += size * len(batches)
    return Sample("async_publish_many", size, round_, size * len(batches), wall, cpu, units)


def async_publish_many(bench: Bench, size: int, round_: int) -> Sample:
    return asyncio.run(_async_publish_many(bench, size, round_))


RUN: Final[dict[str, Callable[[Bench, int, int], Sample]]] = {
    "raw_transaction": raw_transaction,
    "async_transaction": async_transaction,
    "sync_transaction": sync_transaction,
    "async_publish_many": async_publish_many,
}


# -- the report -----------------------------------------------------------------------------------


def _median_range(values: Sequence[float], fmt: str) -> str:
    low, mid, high = (format(v, fmt) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low}-{high})"


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def render(samples: list[Sample], bench: Bench, rounds: int, env: dict[str, Any]) -> str:
    measured = [s for s in samples if s.round > 0]
    lines = [
        BEGIN,
        "## Kafka transactions (Apache Kafka)",
        "",
        f"Generated by `benchmarks/transactions.py` on {env['date']}: Apache Kafka "
        f"{bench.cluster.version}, one broker (KRaft, one JVM) on this machine; "
        f"confluent-kafka {env['confluent_kafka']} / librdkafka {env['librdkafka']}; "
        f"{os.cpu_count()} cores, load average at the start {env['load']}. "
        f"{rounds} measured rounds after a discarded warm-up round, case order shuffled per "
        "round; per round and size, T transactions (or calls) of S events "
        f"(T = {', '.join(f'{bench.counts[s]} for S = {s:,}' for s in SIZES)}), each case to "
        "its own 3-partition topic, read back (`read_committed`) and complete at the end. "
        "CPU = `time.process_time()` of the benchmark process (librdkafka's threads "
        "included, not the broker's) per event. Median (min-max) over rounds; the "
        "transaction time is begin to committed (for `async_publish_many`: one call), "
        "p50/p99 over every transaction of every measured round.",
        "",
        "| S | case | events/s | transactions/s | CPU µs/event | ms per transaction p50 / p99 "
        "| ratio to raw_transaction (events/s) |",
        "|--:|---|--:|--:|--:|--:|--:|",
    ]
    for size in SIZES:
        raw = {
            s.round: s.events / s.wall_s
            for s in measured
            if s.case == "raw_transaction" and s.size == size
        }
        for case in CASES:
            rows = [s for s in measured if s.case == case and s.size == size]
            if not rows:
                continue
            rates = [s.events / s.wall_s for s in rows]
            units = [u * 1000 for s in rows for u in s.units]
            ratios = [s.events / s.wall_s / raw[s.round] for s in rows if s.round in raw]
            lines.append(
                f"| {size:,} | `{case}` | {_median_range(rates, ',.0f')} "
                f"| {_median_range([s.events / size / s.wall_s for s in rows], ',.0f')} "
                f"| {_median_range([s.cpu_s / s.events * 1e6 for s in rows], '.1f')} "
                f"| {_percentile(units, 0.5):.1f} / {_percentile(units, 0.99):.1f} "
                f"| {_median_range(ratios, '.2f')} |"
            )
    lines += ["", END, ""]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def read_back(bench: Bench) -> None:
    for (case, size), topic in bench.topics.items():
        expected = bench.expected[case, size]
        count = len(bench.cluster.consume(topic, count=expected, timeout=120))
        if count != expected:
            raise AssertionError(f"{case} S={size}: read back {count} of {expected}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round, a quarter of T")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    logging.getLogger("eventwire").setLevel(logging.ERROR)  # aborted warm-ups say so
    env = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "confluent_kafka": importlib.metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    order = random.Random(SEED)
    samples: list[Sample] = []
    with KafkaCluster(brokers=1) as cluster:
        bench = Bench(cluster, args.quick)
        for round_ in range(rounds + 1):
            plan = [(case, size) for case in CASES for size in SIZES]
            order.shuffle(plan)
            for case, size in plan:
                sample = RUN[case](bench, size, round_)
                samples.append(sample)
                print(
                    f"round {round_} {case} S={size}: {sample.events / sample.wall_s:,.0f} "
                    f"events/s, {sample.cpu_s / sample.events * 1e6:.1f} CPU µs/event",
                    file=sys.stderr,
                    flush=True,
                )
        read_back(bench)
        section = render(samples, bench, rounds, env)
    print(section)
    write_section(args.output, section)
    if args.output.resolve() == HERE / "RESULTS.md":
        (HERE / "TRANSACTIONS.md").write_text(section, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
