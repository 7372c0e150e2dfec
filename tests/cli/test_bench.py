"""``eventwire bench`` finds the suite, runs it, and prints the ratio table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventwire._cli.bench import SUITE_ENV_VAR, locate_suite
from eventwire._cli.errors import CliError
from tests.cli.conftest import ROOT, run_cli


def test_a_tiny_run_prints_ratios_to_the_raw_ceiling(tmp_path: Path) -> None:
    report = tmp_path / "RESULTS.md"
    result = run_cli(
        "bench", "--quick", "--events", "300", "--rounds", "1",
        "--cases", "async_publish_many", "--output", str(report),
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    raw = next(line for line in lines if "raw_ceiling" in line)
    assert "1.00x" in raw
    case = next(line for line in lines if "async_publish_many" in line)
    assert "x (" in case
    assert any("eventwire" in line and "│" in line for line in lines)  # the latency table
    # the acceptance table: a target whose cases were left out is not measured
    assert any("spool on" in line and "not measured" in line for line in lines)
    assert f"full report: {report}" in result.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["parameters"]["events"] == 300
    assert report.read_text().startswith("# eventwire benchmark results")
    # the Performance page's plots, drawn next to a report that is not the committed one
    assert sorted(p.name for p in (tmp_path / "images" / "benchmarks").glob("*.png")) == [
        "cpu.png",
        "latency.png",
        "throughput.png",
    ]


def test_the_suite_is_found_from_the_environment_or_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(SUITE_ENV_VAR, raising=False)
    assert locate_suite(None) == ROOT / "benchmarks" / "run.py"  # the editable checkout
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "run.py").write_text("")
    monkeypatch.setenv(SUITE_ENV_VAR, str(tmp_path / "mine"))
    assert locate_suite(None) == tmp_path / "mine" / "run.py"
    with pytest.raises(CliError, match="no benchmark suite at"):
        locate_suite(str(tmp_path / "absent"))
