"""The transactional outbox's relay: throughput against ``publish_many``, and the latency from
a writer's commit to Kafka's acknowledgement.

    python benchmarks/outbox.py [--events 50000] [--rounds 3] [--latency-events 300]

One local Tansu broker and one local PostgreSQL (``LocalPostgres``) for the whole run, both
stopped by PID at the end. Per round, in shuffled order, on a fresh 3-partition topic each:

* ``sync_publish_many``: ``Publisher.publish_many`` of N events in chunks of 10,000 (the
  reference: what a service publishing directly gets on this machine);
* ``relay_postgresql`` / ``relay_sqlite``: 100 warm-up rows and N rows added beforehand
  (not timed), then ``OutboxRelay.run(once=True)``, timed from the warm-up rows'
  acknowledgement to the deletion of the last row (as ``publish_many`` is timed after its own
  100 warm-up events); the whole run (lease, producer start, the final emptiness check) is
  reported beside it.

The ratio is relay events/s over ``sync_publish_many`` events/s *of the same round*. CPU is
this process's (the relay's threads and librdkafka's), not PostgreSQL's.

Latency: a relay runs; a writer commits one event per transaction every 20 ms; each row's
latency is from ``add()`` to Kafka's acknowledgement (``OutboxStats``); the writer also
measures ``add()`` to the end of its commit, which that latency includes. With LISTEN/NOTIFY
(PostgreSQL, psycopg) and, for contrast, polling every second.

Writes ``benchmarks/OUTBOX.md`` and ``OUTBOX.json``, and replaces the outbox section at the
end of ``RESULTS.md`` (``run.py`` appends ``OUTBOX.md`` when it rewrites that file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from sqlalchemy import create_engine, delete

import eventwire
from eventwire import outbox
from eventwire.testing import LocalBroker, LocalPostgres

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from events import orders  # noqa: E402 - the benchmarks' own event, beside this file

CHUNK = 10_000


def progress(message: str) -> None:
    sys.stderr.write(f"[outbox bench] {message}\n")
    sys.stderr.flush()


def config_for(broker: LocalBroker, topic: str, **settings: Any) -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers, topic_map={"orders": topic}, **settings
    )


def delete_topic(broker: LocalBroker, topic: str) -> None:
    """Tansu keeps every record in memory and slows as it grows: a finished case's topic
    goes (as in run.py)."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    try:
        for future in admin.delete_topics([topic], operation_timeout=10).values():
            future.result(timeout=15)
    except (KafkaException, TimeoutError) as exc:
        progress(f"warning: could not delete topic {topic}: {exc}")


def publish_many(broker: LocalBroker, events: list[Any]) -> tuple[float, float]:
    topic = broker.unique_topic("bench-publish", partitions=3)
    with eventwire.Publisher(config_for(broker, topic)) as publisher:
        publisher.publish_many(events[:100])  # warm-up: connection, producer id, metadata
        wall, cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(events), CHUNK):
            outcomes = publisher.publish_many(events[first : first + CHUNK])
            assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes)
        elapsed = time.perf_counter() - wall, time.process_time() - cpu
    delete_topic(broker, topic)
    return elapsed


#: Rows the relay publishes before the timed section, as ``publish_many`` publishes 100
#: events before its own: the producer's start, connection and metadata are not timed.
RELAY_WARM_UP = 100


def relay(broker: LocalBroker, url: str, events: list[Any]) -> tuple[float, float, float]:
    """``(wall s, CPU s, whole-run wall s)``: the first two from the warm-up rows'
    acknowledgement to the last row's deletion, the third of ``run(once=True)`` whole."""
    topic = broker.unique_topic("bench-relay", partitions=3)
    config = config_for(broker, topic)
    engine = create_engine(url)
    try:
        outbox.create_tables(engine)
        with engine.begin() as conn:
            conn.execute(delete(outbox.outbox_table))
            conn.execute(delete(outbox.lease_table))
        with engine.begin() as conn:
            outbox.add_many(conn, events[:RELAY_WARM_UP], config=config)
        for first in range(0, len(events), CHUNK):
            with engine.begin() as conn:
                outbox.add_many(conn, events[first : first + CHUNK], config=config)
    finally:
        engine.dispose()
    runner = outbox.OutboxRelay(url, config)
    marks: dict[str, tuple[float, float]] = {}
    done = threading.Event()

    def watch() -> None:
        # Polls the relay's figures (every 2 ms: a small share of one core).
        while not done.is_set():
            stats = runner.stats()
            now = (time.perf_counter(), time.process_time())
            if "start" not in marks and stats.published >= RELAY_WARM_UP:
                marks["start"] = now
            if stats.deleted >= RELAY_WARM_UP + len(events):
                marks["end"] = now
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    whole = time.perf_counter()
    report = runner.run(once=True)
    whole = time.perf_counter() - whole
    done.set()
    watcher.join()
    assert report.published >= RELAY_WARM_UP + len(events), report
    assert report.left == 0, report
    delete_topic(broker, topic)
    (start_wall, start_cpu), (end_wall, end_cpu) = marks["start"], marks["end"]
    return end_wall - start_wall, end_cpu - start_cpu, whole


WARM_UP = 20


def latency(broker: LocalBroker, url: str, count: int, *, listen: bool) -> dict[str, float]:
    """Per-row latency from ``add()`` to the acknowledgement, after ``WARM_UP`` rows (the
    producer's connection and the topic's metadata come with the first rows)."""
    topic = broker.unique_topic("bench-latency", partitions=3)
    config = config_for(broker, topic, preset="low_latency")
    engine = create_engine(url)
    outbox.create_tables(engine)
    runner = outbox.OutboxRelay(url, config, listen=listen, poll_interval=1.0)
    thread = threading.Thread(target=runner.run)
    thread.start()
    events = orders(WARM_UP + count)
    commit_delays = []
    try:
        for index, event in enumerate(events):
            with engine.begin() as conn:
                added = time.perf_counter()
                outbox.add(conn, event, config=config)
            commit_delays.append(time.perf_counter() - added)
            if index + 1 == WARM_UP:
                wait_until(lambda: runner.stats().published >= WARM_UP, "the warm-up rows")
            time.sleep(0.02)
        wait_until(lambda: runner.stats().published >= WARM_UP + count, "every row")
    finally:
        runner.stop()
        thread.join(60)
        engine.dispose()
    # The measured rows' latencies, in acknowledgement order, are the reservoir's last ones
    # (a benchmark may read the relay's private figures; stats() gives the p50/p99 of all).
    measured = sorted(list(runner._latencies._recent)[-count:])
    delays = sorted(commit_delays[WARM_UP:])
    return {
        "p50_ms": measured[len(measured) // 2] * 1000,
        "p99_ms": measured[min(len(measured) - 1, int(0.99 * len(measured)))] * 1000,
        "max_ms": measured[-1] * 1000,
        "add_to_commit_p50_ms": delays[len(delays) // 2] * 1000,
    }


def wait_until(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not published in {timeout:g} s"
        time.sleep(0.01)


def _load(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


_HEADING = "## Transactional outbox: relay throughput and commit-to-acknowledgement latency"


def render(result: dict[str, Any]) -> str:
    rounds = result["rounds"]
    lines = [
        _HEADING,
        "",
        f"Generated by `benchmarks/outbox.py` on {result['date']}: N = {result['events']:,}"
        f" events per case and round (the benchmarks' 650-byte order), {len(rounds)} rounds,"
        " case order shuffled per round, a fresh 3-partition topic per case, one Tansu"
        f" broker and one PostgreSQL {result['postgres']} (`LocalPostgres`, fsync off) on"
        " this machine. The relay cases run `OutboxRelay.run(once=True)` over rows added"
        f" beforehand (not timed) and are timed, like `publish_many` after its 100 warm-up"
        f" events, from the acknowledgement of {RELAY_WARM_UP} warm-up rows to the deletion of"
        " the last row; the last column times the whole run (lease, producer start,"
        " connection, and the final check that the table is empty). Ratio = relay events/s"
        " over `sync_publish_many` events/s of the same round (goal: at least 0.5x). CPU ="
        " this process's CPU per event (PostgreSQL's own is not counted). Load average at the"
        f" start and end: {_load(result['load'][0])} / {_load(result['load'][1])} (2 cores,"
        " shared with other work: the wall figures move with it, the CPU ones less).",
        "",
        "| case | events/s (median) | events/s (min-max) | ratio to publish_many (min-max)"
        " | CPU us/event (median) | whole run, events/s (median) |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for case in ("sync_publish_many", "relay_postgresql", "relay_sqlite"):
        rates = [r[case]["rate"] for r in rounds]
        ratios = [r[case]["rate"] / r["sync_publish_many"]["rate"] for r in rounds]
        cpu = [r[case]["cpu_us"] for r in rounds]
        lines.append(
            f"| `{case}` | {_median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} |"
            f" {_median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x) |"
            f" {_median(cpu):.1f} | {_median([r[case]['whole_rate'] for r in rounds]):,.0f} |"
        )
    lines += [
        "",
        f"Latency, {result['latency_events']} rows after {WARM_UP} warm-up rows, one per"
        " transaction every 20 ms, a relay running (`low_latency` preset); from `add()` to"
        " Kafka's acknowledgement. `add()` runs"
        " inside the transaction, so this includes the rest of the transaction: the last"
        " column is that part (`add()` to the end of the commit, measured by the writer).",
        "",
        "| wake-up | p50 ms | p99 ms | max ms | add to commit end, p50 ms |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, figures in result["latency"].items():
        lines.append(
            f"| {name} | {figures['p50_ms']:.1f} | {figures['p99_ms']:.1f} |"
            f" {figures['max_ms']:.1f} | {figures['add_to_commit_p50_ms']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _update_results(text: str) -> None:
    """Put the new figures in RESULTS.md too (run.py appends OUTBOX.md last when it writes
    RESULTS.md; between two of its runs, this keeps them current)."""
    results = HERE / "RESULTS.md"
    if not results.exists():
        return
    current = results.read_text(encoding="utf-8")
    start = current.find(_HEADING)
    kept = current if start < 0 else current[:start]
    results.write_text(kept.rstrip("\n") + "\n\n" + text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--output", type=Path, default=HERE / "OUTBOX.md")
    args = parser.parse_args(argv)
    events = orders(args.events)
    rng = random.Random(20261207)
    load_start = os.getloadavg()
    with (
        LocalBroker(partitions=3) as broker,
        LocalPostgres() as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        pg_url = server.create_database("bench")
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        rounds = []
        for number in range(args.rounds):
            cases = ["sync_publish_many", "relay_postgresql", "relay_sqlite"]
            rng.shuffle(cases)
            measured: dict[str, dict[str, float]] = {}
            for case in cases:
                if case == "sync_publish_many":
                    wall, cpu = publish_many(broker, events)
                    whole = wall
                else:
                    url = pg_url if case == "relay_postgresql" else sqlite_url
                    wall, cpu, whole = relay(broker, url, events)
                measured[case] = {
                    "rate": len(events) / wall,
                    "cpu_us": cpu / len(events) * 1e6,
                    "whole_rate": (len(events) + RELAY_WARM_UP) / whole,
                }
                progress(f"round {number + 1}: {case} {len(events) / wall:,.0f} events/s")
            rounds.append(measured)
        result: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "events": args.events,
            "rounds": rounds,
            "postgres": "18.6",
            "latency_events": args.latency_events,
            "latency": {},
            "load": [],
        }
        for name, listen in (("LISTEN/NOTIFY (PostgreSQL)", True), ("polling 1 s", False)):
            url = server.create_database(f"latency_{'listen' if listen else 'poll'}")
            result["latency"][name] = latency(broker, url, args.latency_events, listen=listen)
            progress(f"latency {name}: {result['latency'][name]}")
    result["load"] = [list(load_start), list(os.getloadavg())]
    text = render(result)
    args.output.write_text(text, encoding="utf-8")
    args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    if args.output.resolve() == (HERE / "OUTBOX.md").resolve():
        _update_results(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
