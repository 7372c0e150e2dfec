"""Plots of a benchmark run for the documentation's Performance page.

Usage:
    python benchmarks/plots.py [results.json] [--output docs/images/benchmarks]

Reads the ``results.json`` that ``benchmarks/run.py`` writes and draws, as PNG files:

* ``throughput.png``: each case's throughput as a ratio to raw ``confluent_kafka`` in the same
  round (median, with the range over the measured rounds);
* ``cpu.png``: CPU time per event of each case (median and range);
* ``latency.png``: lone-publish latency, p50 and p99, of raw librdkafka, the design minimum
  and eventwire.

``run.py`` calls ``write_plots`` after each run when matplotlib is installed (the ``bench``
extra); the committed plots come from the committed ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results.json"
DEFAULT_OUTPUT = HERE.parent / "docs" / "images" / "benchmarks"

# Bar colours by what a case is: the raw client, hand-written references, a peer, eventwire.
_COLOURS = {"raw": "#9e9e9e", "reference": "#cfcfcf", "peer": "#f0a04b", "eventwire": "#3f51b5"}


def _group(case: str) -> str:
    if case.startswith("raw_"):
        return "raw"
    if case.startswith("handwritten_"):
        return "reference"
    if case == "aioproducer":
        return "peer"
    return "eventwire"


def _ranged_bars(
    summaries: Sequence[dict[str, Any]], field: str, title: str, xlabel: str, path: Path
) -> None:
    import matplotlib.pyplot as plt

    rows = [s for s in summaries if s.get(field)]
    names = [s["case"] for s in rows]
    medians = [s[field]["median"] for s in rows]
    low = [m - s[field]["low"] for m, s in zip(medians, rows, strict=True)]
    high = [s[field]["high"] - m for m, s in zip(medians, rows, strict=True)]
    figure, axes = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.4), dpi=100)
    positions = list(range(len(rows)))[::-1]
    axes.barh(
        positions,
        medians,
        xerr=[low, high],
        color=[_COLOURS[_group(n)] for n in names],
        ecolor="#424242",
        capsize=3,
    )
    axes.set_yticks(positions, names, fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_title(title, fontsize=10)
    axes.grid(axis="x", alpha=0.3)
    for position, value, top in zip(positions, medians, high, strict=True):
        axes.annotate(
            f"{value:.2f}",
            (value + top, position),
            xytext=(4, -3),
            textcoords="offset points",
            fontsize=7,
        )
    legend = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _COLOURS.values()]
    axes.legend(legend, list(_COLOURS), fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def _latency(latency: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    paths = [name for name in ("raw", "design", "eventwire") if name in latency]
    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=100)
    width = 0.38
    for offset, percentile in ((-width / 2, "p50"), (width / 2, "p99")):
        values = [latency[name][percentile] for name in paths]
        bars = axes.bar(
            [i + offset for i in range(len(paths))],
            values,
            width,
            label=percentile,
            color="#3f51b5" if percentile == "p50" else "#9fa8da",
        )
        axes.bar_label(bars, fmt="%.0f", fontsize=8)
    labels = {
        "raw": "raw librdkafka",
        "design": "design minimum",
        "eventwire": "eventwire",
    }
    axes.set_xticks(range(len(paths)), [labels[name] for name in paths])
    axes.set_ylabel("microseconds")
    axes.set_title("Lone-publish latency, one event in flight (low_latency preset)", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def write_plots(result: dict[str, Any], output: Path) -> list[Path]:
    """Draw the plots of one run (``results.json`` content) into ``output``; returns the
    files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    output.mkdir(parents=True, exist_ok=True)
    summaries = result.get("summary") or []
    date = result.get("environment", {}).get("date_utc", "")
    events = result.get("parameters", {}).get("events", 0)
    written = []
    if summaries:
        target = output / "throughput.png"
        _ranged_bars(
            summaries,
            "ratio",
            f"Throughput: ratio to raw confluent-kafka in the same round\n({events:,} events"
            f" per case and round, {date})",
            "ratio to raw_ceiling (median, range over rounds); higher is faster",
            target,
        )
        written.append(target)
        target = output / "cpu.png"
        _ranged_bars(
            summaries,
            "cpu_us",
            f"CPU time per event\n({events:,} events per case and round, {date})",
            "CPU microseconds per event, whole process (median, range); lower is cheaper",
            target,
        )
        written.append(target)
    if result.get("latency"):
        target = output / "latency.png"
        _latency(result["latency"], target)
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    try:
        result = json.loads(args.results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"plots: cannot read {args.results}: {exc}", file=sys.stderr)
        return 1
    for path in write_plots(result, args.output):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
