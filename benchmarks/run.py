"""Run every eventwire benchmark against one local broker and write the results.

    python benchmarks/run.py [--events N] [--rounds R] [--quick] [--output benchmarks/RESULTS.md]
                             [--broker tansu|kafka-1|kafka-3]

One broker (Tansu, or Apache Kafka: see ``brokers.py``) is started for the whole run and
stopped by PID at the end (also on Ctrl-C or SIGTERM). Throughput cases run in interleaved
rounds (a discarded warm-up round, then R rounds of every case, order shuffled per round with
a fixed seed), each on a fresh 3-partition topic that is deleted afterwards. Then the
lone-publish latency and, with the broker stopped, the codec micro-benchmark. Progress goes
to stderr; the report to stdout, ``--output`` and ``results.json`` next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import importlib.util
import json
import logging
import os
import random
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import codec
import confluent_kafka
import java_producer
import latency
import report
import tiers
from confluent_kafka.admin import AdminClient
from throughput import (
    CASES,
    CEILING,
    CHUNK,
    CONCURRENT_WORKERS,
    REQUIRES,
    WARMUP_EVENTS,
    CaseFailed,
    Workload,
    pairs,
)

import brokers
from brokers import Broker
from events import order, orders

HERE: Final = Path(__file__).resolve().parent
PARTITIONS: Final = 3
SEED: Final = 20261128
FULL_EVENTS: Final = 100_000
FULL_ROUNDS: Final = 5
QUICK_EVENTS: Final = 20_000
QUICK_ROUNDS: Final = 2


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Watchdog:
    """Interrupts the main thread (as Ctrl-C would) when a step runs far too long, after
    dumping every thread's stack: a hang is then reported instead of blocking forever.

    The first SIGINT only cancels the main task inside ``asyncio.run``; if the step is still
    running 5 s later (a wait that ignores cancellation), SIGINT is sent again.
    """

    def __init__(self) -> None:
        self.fired: str | None = None

    @contextlib.contextmanager
    def limit(self, seconds: float, what: str) -> Iterator[None]:
        done = threading.Event()
        thread = threading.Thread(
            target=self._watch, args=(seconds, what, done), name="bench-watchdog", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            done.set()

    def _watch(self, seconds: float, what: str, done: threading.Event) -> None:
        if done.wait(seconds):
            return
        self.fired = f"{what} still running after {seconds:.0f} s"
        progress(f"WATCHDOG: {self.fired}; stacks of every thread follow")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        main = threading.main_thread().ident
        for _ in range(3):
            if main is not None:
                signal.pthread_kill(main, signal.SIGINT)
            if done.wait(5.0):
                return


def _on_sigterm(signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


# -- broker helpers ----------------------------------------------------------------------------


def _broker_rss(broker: Broker) -> str:
    """The broker's resident memory (Tansu grows with what it stores), for progress lines."""
    try:
        with open(f"/proc/{broker.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return f"{int(line.split()[1]) / 1024:,.0f} MB"
    except (OSError, ValueError):
        pass
    return "?"


def _topic_name(case: str, round_: int) -> str:
    return f"bench-{case.replace('_', '-')}-r{round_}-{uuid.uuid4().hex[:8]}"


def _delete_topic(admin: AdminClient, topic: str) -> None:
    # Tansu keeps every record in memory; dropping finished topics keeps later cases fair.
    try:
        for future in admin.delete_topics([topic], operation_timeout=10).values():
            future.result(timeout=15)
    except (confluent_kafka.KafkaException, TimeoutError) as exc:
        progress(f"warning: could not delete topic {topic}: {exc}")


def _read_back(broker: Broker, topic: str, expected: int, timeout: float = 120.0) -> int:
    """How many records ``topic`` holds, counted by reading it from offset 0 (``assign()``,
    no group), stopping once ``expected`` were seen.

    Tansu's watermarks cannot be used: it answers the same high watermark for every partition
    (broker.md gap 8), so records are counted by reading them.
    """
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": f"eventwire-bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    counted = 0
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        while counted < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    counted += 1
    finally:
        consumer.close()
    return counted


# -- steps -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """Everything measured so far (kept on interrupt, so a partial report can be written)."""

    samples: list[report.Sample] = dataclasses.field(default_factory=list)
    latency: dict[str, Any] = dataclasses.field(default_factory=dict)
    codec: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    interrupted: str | None = None


def run_throughput(
    broker: Broker,
    base: Workload,
    *,
    cases: Sequence[str],
    rounds: int,
    run: Run,
    watchdog: Watchdog,
) -> None:
    rng = random.Random(SEED)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    limit = 90.0 + base.count / 1_000
    for round_ in range(rounds + 1):
        label = "warm-up round" if round_ == 0 else f"round {round_}/{rounds}"
        ordered = list(cases)
        rng.shuffle(ordered)
        for position, case in enumerate(ordered, 1):
            topic = broker.create_topic(_topic_name(case, round_), PARTITIONS)
            workload = dataclasses.replace(base, topic=topic)
            progress(f"{label} [{position}/{len(ordered)}] {case} ({base.count:,} events)")
            try:
                with watchdog.limit(limit, f"{label} {case}"):
                    measured = CASES[case](workload)
                    check = ""
                    if case == CEILING:  # no per-message callback: count what the broker has
                        stored = _read_back(broker, topic, base.count + WARMUP_EVENTS)
                        if stored != base.count + WARMUP_EVENTS:
                            raise CaseFailed(
                                f"read back {stored:,} records, expected "
                                f"{base.count + WARMUP_EVENTS:,} (N + warm-up)"
                            )
                        check = f"read back {stored:,}"
            except Exception as exc:  # noqa: BLE001 - a failing case is recorded, the run goes on
                sample = report.Sample(
                    round_,
                    case,
                    base.count,
                    error=f"{type(exc).__name__}: {exc}",
                    load1=os.getloadavg()[0],
                )
                progress(f"    FAILED: {sample.error}")
            else:
                sample = report.Sample(
                    round_,
                    case,
                    base.count,
                    measured.wall_s,
                    measured.cpu_s,
                    verified=check,
                    load1=os.getloadavg()[0],
                )
                progress(
                    f"    {sample.throughput:,.0f} events/s, "
                    f"{sample.cpu_us_per_event:.1f} us CPU/event, broker RSS {_broker_rss(broker)}"
                    + f", load {sample.load1:.1f}"
                    + (f" [{check}]" if check else "")
                )
            run.samples.append(sample)
            _delete_topic(admin, topic)


def run_latency(broker: Broker, samples: int, warmup: int, run: Run, watchdog: Watchdog) -> None:
    total = samples + warmup
    events = orders(total)
    topics = (
        broker.create_topic(_topic_name("latency_raw", 0), PARTITIONS),
        broker.create_topic(_topic_name("latency_eventwire", 0), PARTITIONS),
        broker.create_topic(_topic_name("latency_design", 0), PARTITIONS),
    )
    progress(f"lone-publish latency: {samples:,} samples each after {warmup} warm-up")
    try:
        with watchdog.limit(60.0 + total * 0.05, "latency"):
            measured = latency.measure(
                broker.bootstrap_servers, topics, events, pairs(events), warmup
            )
    except Exception as exc:  # noqa: BLE001 - recorded in the report
        run.latency = {"error": f"{type(exc).__name__}: {exc}"}
        progress(f"    FAILED: {run.latency['error']}")
        return
    finally:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        for topic in topics:
            _delete_topic(admin, topic)
    raw = report.LatencyStats.of(measured.raw_us)
    wired = report.LatencyStats.of(measured.eventwire_us)
    design = report.LatencyStats.of(measured.design_us)
    run.latency = {
        "raw": dataclasses.asdict(raw),
        "eventwire": dataclasses.asdict(wired),
        "design": dataclasses.asdict(design),
    }
    progress(
        f"    p50 raw {raw.p50:.0f} us / eventwire {wired.p50:.0f} us; "
        f"p99 raw {raw.p99:.0f} us / eventwire {wired.p99:.0f} us"
    )


def run_codec(loops: int, run: Run) -> None:
    progress(f"codec micro-benchmark: {loops:,} loops, best of {codec.REPEAT}")
    run.codec = [dataclasses.asdict(t) for t in codec.measure(loops=loops)]


# -- main --------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, help=f"events per case and round ({FULL_EVENTS:,})")
    parser.add_argument("--rounds", type=int, help=f"measured rounds ({FULL_ROUNDS})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_EVENTS:,} events, {QUICK_ROUNDS} rounds, fewer latency samples",
    )
    parser.add_argument("--output", type=Path, help="the report (default: see brokers.py)")
    parser.add_argument(
        "--json", type=Path, help="machine-readable results (default: results.json next to it)"
    )
    parser.add_argument(
        "--cases",
        help=f"comma-separated subset of throughput cases ({CEILING} is always run)",
    )
    brokers.add_argument(parser)
    args = parser.parse_args(argv)
    args.output = args.output or brokers.default_output(args.broker, HERE)
    if brokers.is_kafka(args.broker):
        java_producer.register()
    args.events = args.events or (QUICK_EVENTS if args.quick else FULL_EVENTS)
    args.rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    if args.events < 1 or args.rounds < 1:
        parser.error("--events and --rounds must be at least 1")
    args.json = args.json or args.output.parent / "results.json"
    chosen = list(CASES) if not args.cases else [c.strip() for c in args.cases.split(",")]
    unknown = sorted(set(chosen) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; cases are {', '.join(CASES)}")
    args.cases = [c for c in CASES if (c in chosen or c == CEILING) and _installed(c)]
    return args


def _installed(case: str) -> bool:
    """False, with a note, for a peer whose package is not installed (the `bench` extra)."""
    module = REQUIRES.get(case)
    if module is None or importlib.util.find_spec(module) is not None:
        return True
    progress(f"skipped {case}: {module} is not installed (pip install 'eventwire[bench]')")
    return False


def _stop_broker(broker: Broker) -> None:
    pid = broker.pid
    broker.stop()
    if pid is None:
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        progress(f"broker pid {pid} stopped")
    else:  # stop() waits and kills; this only guards against a surprise
        progress(f"broker pid {pid} still alive after stop(); sending SIGKILL")
        os.kill(pid, signal.SIGKILL)


def _logs_on_stderr() -> None:
    # The benchmark is an application: it configures logging. eventwire's warnings and errors
    # show on stderr; its info lines (publisher started/closed) stay out of the report.
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _latency_stats(
    latency: dict[str, Any],
) -> tuple[tuple[report.LatencyStats, report.LatencyStats] | None, report.LatencyStats | None]:
    """(raw, eventwire) and the design minimum, as ``report.acceptance`` takes them."""
    if "raw" not in latency:
        return None, None
    stats = {name: report.LatencyStats(**values) for name, values in latency.items()}
    return (stats["raw"], stats["eventwire"]), stats.get("design")


#: The plots in the report, as ``images/benchmarks/NAME.png`` next to it: under
#: ``benchmarks/`` for a reader of the file, under ``docs/`` for the site page that includes it.
_PLOTS_SECTION = """## Plots

![Throughput of each case as a ratio to raw confluent-kafka in the same round](\
images/benchmarks/throughput.png)

![CPU time per event of each case](images/benchmarks/cpu.png)

![Lone-publish latency, p50 and p99](images/benchmarks/latency.png)
"""


def _draw_plots(result: dict[str, Any], output: Path) -> None:
    """The plots, in ``images/benchmarks/`` next to the report; for the committed one
    (``benchmarks/RESULTS.md``) also next to the docs, whose pages show them."""
    import plots

    if result["parameters"]["broker"] != "tansu":  # the Performance page's plots are Tansu's
        return
    if importlib.util.find_spec("matplotlib") is None:  # the `bench` extra
        progress("no plots: matplotlib is not installed (pip install 'eventwire[bench]')")
        return
    targets = [output.parent / "images" / "benchmarks"]
    if output.resolve() == HERE / "RESULTS.md":
        targets.append(plots.DEFAULT_OUTPUT)
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        for path in plots.write_plots(result, target):
            progress(f"wrote {path}")


def _report_text(
    result: dict[str, Any], summaries: Sequence[report.CaseSummary], run: Run, broker: str
) -> str:
    """The Markdown report: the figures, the Kafka tiers beside a Tansu run, and the
    hand-written sections that travel with it."""
    text = report.markdown(result, summaries)
    if run.interrupted:
        text = text.replace(
            "# eventwire benchmark results",
            f"# eventwire benchmark results (INCOMPLETE: {run.interrupted})",
            1,
        )
    if not brokers.is_kafka(broker):
        text = text.rstrip("\n") + "\n\n" + _PLOTS_SECTION
    text = text.rstrip("\n") + "\n\n" + tiers.section(result, HERE)
    # The per-microsecond analysis is written by hand (benchmarks/PROFILE.md) and travels with
    # every Tansu report, so a reader of the figures also reads where the time goes (it is
    # about the Tansu runs: a Kafka tier's report goes without it).
    profile = Path(__file__).with_name("PROFILE.md")
    if profile.exists() and not brokers.is_kafka(broker):
        text = text.rstrip("\n") + "\n\n" + profile.read_text(encoding="utf-8")
    # The benchmarks that run apart travel with every report too: transactions (on Apache
    # Kafka, benchmarks/transactions.py) and the outbox relay (benchmarks/outbox.py).
    for name in ("TRANSACTIONS.md", "OUTBOX.md"):
        appended = Path(__file__).with_name(name)
        if appended.exists():
            text = text.rstrip("\n") + "\n\n" + appended.read_text(encoding="utf-8")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    # A shell starts background jobs with SIGINT ignored; the watchdog and Ctrl-C need it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _logs_on_stderr()
    quick = args.quick
    latency_samples, latency_warmup = (500, 100) if quick else (2_000, 200)
    codec_loops = 10_000 if quick else codec.LOOPS

    progress(f"building {args.events:,} events")
    events = orders(args.events)
    warm_events = [order(args.events + i) for i in range(WARMUP_EVENTS)]
    payloads = pairs(events)
    payload_bytes = statistics.fmean(len(value) for value, _ in payloads)

    env = brokers.environment(args.broker)
    run = Run()
    watchdog = Watchdog()
    broker = brokers.create(args.broker, PARTITIONS)
    try:
        broker.start()
        progress(f"broker {env['broker_label']} pid {broker.pid} on {broker.bootstrap_servers}")
        base = Workload(
            bootstrap_servers=broker.bootstrap_servers,
            topic="",
            events=events,
            payloads=payloads,
            warmup_events=warm_events,
            warmup_payloads=pairs(warm_events),
        )
        run_throughput(
            broker, base, cases=args.cases, rounds=args.rounds, run=run, watchdog=watchdog
        )
        run_latency(broker, latency_samples, latency_warmup, run, watchdog)
    except KeyboardInterrupt as exc:
        run.interrupted = watchdog.fired or f"interrupted ({str(exc) or 'Ctrl-C'})"
        progress(f"stopping: {run.interrupted}")
    finally:
        _stop_broker(broker)
    if run.interrupted is None:
        run_codec(codec_loops, run)

    env["loadavg_end"] = os.getloadavg()
    summaries = report.summarize(run.samples)
    verdicts = report.acceptance(summaries, run.samples, *_latency_stats(run.latency))
    result: dict[str, Any] = {
        "environment": env,
        "parameters": {
            "events": args.events,
            "rounds": args.rounds,
            "quick": quick,
            "seed": SEED,
            "chunk": CHUNK,
            "warmup_events": WARMUP_EVENTS,
            "concurrent_workers": CONCURRENT_WORKERS,
            "partitions": PARTITIONS,
            "broker": args.broker,
            "payload_bytes": round(payload_bytes),
            "cases": args.cases,
            "latency_samples": latency_samples,
            "latency_warmup": latency_warmup,
            "codec_loops": codec_loops,
        },
        "interrupted": run.interrupted,
        "samples": [s.as_json() for s in run.samples],
        "summary": [dataclasses.asdict(s) for s in summaries],
        "latency": run.latency,
        "codec": run.codec,
        "acceptance": [dataclasses.asdict(v) for v in verdicts],
    }
    text = _report_text(result, summaries, run, args.broker)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(text)
    progress(f"wrote {args.output} and {args.json}")
    _draw_plots(result, args.output)
    if run.interrupted:
        return 130
    return 1 if any(s.errors for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
