"""``eventwire bench``: runs the benchmark suite (``benchmarks/run.py`` of a source checkout)
and prints the table of ratios to the raw ``confluent_kafka`` ceiling.

The suite is not part of the installed package (it needs the repository's ``benchmarks/``
folder), so it is located, run in a child process with this interpreter, and its
``results.json`` is read back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import eventwire
from eventwire._cli.errors import FAILURE, INTERRUPTED, CliError
from eventwire._cli.output import report_console
from eventwire._cli.paths import refuse_overwriting, suite_files

SUITE_ENV_VAR = "EVENTWIRE_BENCHMARKS"


def locate_suite(explicit: str | None) -> Path:
    """``run.py`` of the suite: ``--suite``, else ``$EVENTWIRE_BENCHMARKS``, else
    ``./benchmarks``, else the checkout eventwire is installed from (editable install).

    Raises:
        CliError: none of them holds ``run.py``.
    """
    given = explicit or os.environ.get(SUITE_ENV_VAR)
    if given:
        path = Path(given)
        run = path / "run.py" if path.is_dir() else path
        if not run.is_file():
            raise CliError(f"no benchmark suite at {given} (expected benchmarks/run.py)")
        return run
    source_checkout = Path(eventwire.__file__).resolve().parents[2] / "benchmarks"
    for folder in (Path.cwd() / "benchmarks", source_checkout):
        if (folder / "run.py").is_file():
            return folder / "run.py"
    raise CliError(
        "the benchmark suite (benchmarks/run.py) was not found: run this from an eventwire"
        f" source checkout, pass --suite PATH or set ${SUITE_ENV_VAR}"
    )


def run_bench(
    *,
    suite: str | None,
    events: int | None,
    rounds: int | None,
    quick: bool,
    output: str | None,
    json_path: str | None,
    cases: str | None,
) -> int:
    """Run the suite; its progress goes to stderr, then the ratio table is printed.

    Returns:
        ``OK`` when every case ran; ``FAILURE`` when a case failed; ``INTERRUPTED``.

    Raises:
        CliError: the suite is missing, or ended without writing results.
    """
    run = locate_suite(suite)
    report = Path(output) if output else run.parent / "RESULTS.md"
    results = Path(json_path) if json_path else report.parent / "results.json"
    refuse_overwriting("--output", report, suite_files(run))
    refuse_overwriting("--json", results, [("the report (--output)", report), *suite_files(run)])
    argv = [sys.executable, str(run), "--output", str(report), "--json", str(results)]
    if events is not None:
        argv += ["--events", str(events)]
    if rounds is not None:
        argv += ["--rounds", str(rounds)]
    if quick:
        argv.append("--quick")
    if cases:
        argv += ["--cases", cases]
    before = results.stat().st_mtime_ns if results.exists() else None
    # The suite prints its whole Markdown report on stdout; the table below replaces it.
    try:
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, check=False)  # noqa: S603
    except KeyboardInterrupt:
        return INTERRUPTED
    if done.returncode == INTERRUPTED:
        return INTERRUPTED
    if not results.exists() or results.stat().st_mtime_ns == before:
        raise CliError(f"the benchmark suite exited with {done.returncode} without results")
    print_ratios(json.loads(results.read_text(encoding="utf-8")))
    sys.stdout.write(f"full report: {report}\n")
    return FAILURE if done.returncode else 0


def print_ratios(result: dict[str, Any]) -> None:
    """The ratio of every case to the raw ceiling (throughput and CPU per event), the
    lone-publish latency and the acceptance targets, as rich tables on stdout."""
    from rich.table import Table

    params = result.get("parameters", {})
    table = Table(
        title=(
            f"eventwire vs raw confluent_kafka: {params.get('events', '?'):,} events,"
            f" {params.get('rounds', '?')} rounds (median, low-high)"
        )
    )
    table.add_column("case")
    table.add_column("events/s", justify="right")
    table.add_column("ratio to raw", justify="right")
    table.add_column("CPU µs/event", justify="right")
    table.add_column("CPU ratio (raw ÷ case)", justify="right")
    for row in result.get("summary", []):
        if not row.get("rounds_ok") or row.get("ratio") is None:
            if row.get("errors"):  # cases left out with --cases are not listed
                table.add_row(row["case"], "failed", str(row["errors"][0])[:60], "", "")
            continue
        ratio = row["ratio"]
        table.add_row(
            row["case"],
            f"{row['throughput']['median']:,.0f}",
            f"{ratio['median']:.2f}x ({ratio['low']:.2f}-{ratio['high']:.2f})",
            f"{row['cpu_us']['median']:.2f}",
            f"{row['cpu_ratio']['median']:.2f}x",
        )
    console = report_console()
    console.print(table)
    latency = result.get("latency") or {}
    if "raw" in latency and "eventwire" in latency:
        lat = Table(title="lone publish latency (µs)")
        lat.add_column("")
        for stat in ("p50", "p99"):
            lat.add_column(stat, justify="right")
        for name in ("raw", "eventwire"):
            lat.add_row(name, *(_micros(latency[name].get(stat)) for stat in ("p50", "p99")))
        console.print(lat)
    print_acceptance(result, console)
    if result.get("interrupted"):
        console.print(f"[bold red]incomplete:[/] {result['interrupted']}")


def print_acceptance(result: dict[str, Any], console: Any) -> None:
    """The acceptance targets, each against its same-run reference, with PASS/FAIL."""
    verdicts = result.get("acceptance") or []
    if not verdicts:
        return
    from rich.table import Table

    table = Table(title="acceptance targets (against the same-run reference)")
    for column in ("target", "threshold", "measured", "reference", ""):
        table.add_column(column)
    for v in verdicts:
        passed = v.get("passed")
        verdict = "n/a" if passed is None else ("PASS" if passed else "FAIL")
        table.add_row(
            str(v.get("target", "")).replace("`", ""),
            str(v.get("threshold", "")).replace("`", ""),
            str(v.get("measured", "")),
            str(v.get("reference", "")).replace("`", ""),
            verdict,
        )
    console.print(table)


def _micros(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else "?"
