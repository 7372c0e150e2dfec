"""The section of ``RESULTS.md`` that sets the Tansu figures beside the Apache Kafka runs
(``benchmarks/kafka-1/results.json``, ``benchmarks/kafka-3/results.json``; see `brokers`).

A Tansu run writes it; after a Kafka tier's run, ``python benchmarks/tiers.py`` puts it into
the committed ``RESULTS.md`` from the Tansu run's ``results.json``, without measuring again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The Kafka tiers, in report order: folder and heading.
TIERS = (("kafka-1", "Kafka, 1 broker"), ("kafka-3", "Kafka, 3 brokers (RF 3)"))
_HEADING = "## On Apache Kafka"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result


def _by_case(result: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {} if result is None else {s["case"]: s for s in result.get("summary", [])}


def _cell(summary: dict[str, Any] | None) -> str:
    if summary is None or summary["throughput"] is None:
        return "-"
    rate = summary["throughput"]["median"]
    ratio = summary["ratio"]["median"] if summary.get("ratio") else None
    cpu = summary["cpu_us"]["median"]
    shown = f"{rate:,.0f} ({ratio:.2f}x)" if ratio is not None else f"{rate:,.0f}"
    return f"{shown}, {cpu:.1f} us"


def _latency(result: dict[str, Any] | None, who: str) -> str:
    stats = (result or {}).get("latency", {}).get(who)
    return "-" if not stats else f"{stats['p50']:,.0f} / {stats['p99']:,.0f}"


def _when(result: dict[str, Any]) -> str:
    env, params = result["environment"], result["parameters"]
    start = " ".join(f"{x:.2f}" for x in env.get("loadavg_start", [])[:1])
    end = " ".join(f"{x:.2f}" for x in (env.get("loadavg_end") or [])[:1])
    return (
        f"{env['date_utc']}, N = {params['events']:,}, {params['rounds']} rounds, "
        f"load average {start} at the start, {end} at the end"
    )


def section(result: dict[str, Any], here: Path) -> str:
    """Markdown comparing a Tansu run's ``result`` with the Kafka tiers' last runs; empty for
    a Kafka run, or if no Kafka tier was measured."""
    if result["parameters"].get("broker", "tansu") != "tansu":
        return ""
    tansu: dict[str, Any] | None = result
    runs = [(heading, _load(here / folder / "results.json")) for folder, heading in TIERS]
    measured = [(heading, result) for heading, result in runs if result is not None]
    if not measured:
        return ""
    columns = [("Tansu", tansu), *measured]
    # Tansu's cases in its order, then those only a Kafka tier runs (the Java producer).
    cases = list(dict.fromkeys([case for _, result in columns for case in _by_case(result)]))
    lines = [
        _HEADING,
        "",
        "The same cases and references on Apache Kafka, one broker and three (RF 3,",
        "`min.insync.replicas=2`: each `acks=all` write waits for two followers), each tier a",
        "run of its own (`python benchmarks/run.py --broker kafka-1|kafka-3`, full reports in",
        "`benchmarks/kafka-1/RESULTS.md` and `benchmarks/kafka-3/RESULTS.md`).",
        "`java_producer_perf` is Kafka's own Java producer (`kafka-producer-perf-test`, C2 JVM)",
        "with the same record size, one key per record, acks=all, idempotence and linger 5 ms:",
        "what a Java or Spring team gets here. **The brokers share the machine's 2 cores with the",
        "client**, and with other work (the load averages below): compare ratios within a",
        "column (each to the same round's `raw_ceiling`), not absolute rates across runs.",
        "",
        "Runs: " + "; ".join(f"{h}: {_when(r)}" for h, r in columns if r is not None) + ".",
        "",
        "Each cell: events/s, median over rounds (ratio to the same round's `raw_ceiling`), "
        "CPU us per event.",
        "",
        "| case | " + " | ".join(h for h, _ in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]
    by_column = [_by_case(result) for _, result in columns]
    for case in cases:
        cells = [_cell(column.get(case)) for column in by_column]
        lines.append(f"| `{case}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Lone-publish latency, p50 / p99 in microseconds (one message in flight, `low_latency`):",
        "",
        "| client | " + " | ".join(h for h, _ in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]
    for who, name in (
        ("raw", "raw librdkafka"),
        ("design", "design minimum"),
        ("eventwire", "eventwire AsyncPublisher"),
    ):
        lines.append(f"| {name} | " + " | ".join(_latency(r, who) for _, r in columns) + " |")
    return "\n".join(lines) + "\n"


def update(results_md: Path, here: Path) -> bool:
    """Put the section, from the committed Tansu ``results.json`` and the tiers' last runs,
    into ``results_md`` without measuring Tansu again: it replaces the section there, or goes
    before the hand-written analysis (``PROFILE.md``) or at the end. False if there is none."""
    tansu = _load(here / "results.json")
    text = section(tansu, here) if tansu is not None else ""
    if not text:
        return False
    report = results_md.read_text(encoding="utf-8")
    start = report.find(_HEADING)
    if start >= 0:
        end = report.find("\n## ", start + len(_HEADING))
        report = report[:start] + text + ("" if end < 0 else report[end:])
    else:
        profile = here / "PROFILE.md"
        first = profile.read_text(encoding="utf-8").split("\n", 1)[0] if profile.exists() else ""
        at = report.find(first) if first else -1
        cut = at if at >= 0 else len(report)
        report = report[:cut].rstrip("\n") + "\n\n" + text + "\n" + report[cut:]
    results_md.write_text(report, encoding="utf-8")
    return True


if __name__ == "__main__":
    HERE = Path(__file__).resolve().parent
    if not update(HERE / "RESULTS.md", HERE):
        raise SystemExit("no Kafka tier measured yet: python benchmarks/run.py --broker kafka-1")
    print(f"updated {HERE / 'RESULTS.md'}")
