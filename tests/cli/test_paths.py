"""No command writes over what it reads: an output path naming an input (also through a link
or another spelling) is a usage error (exit 2) before anything is opened for writing.

Every input here is a copy in ``tmp_path``: before the fix these commands erased them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from eventwire._cli import USAGE
from eventwire.testing import LocalBroker
from tests.cli.conftest import assert_one_line_error, run_cli
from tests.events import order

#: An event module of the test's own, so that nothing of the repository is at stake.
MODULE = """
import msgspec
import eventwire

@eventwire.event(topic="orders", key="order_id", type="test.paths.order", version=1)
class Order(msgspec.Struct, frozen=True):
    order_id: str
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "paths_events.py").write_text(MODULE)
    lines = [msgspec.json.encode(order(n)) for n in range(12)]
    (tmp_path / "o3.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return tmp_path


def _produce(broker: LocalBroker, workdir: Path, *args: str) -> None:
    """Run produce against a live broker (so that nothing but the check stops it)."""
    before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    result = run_cli(
        "produce", "--event", "paths_events:Order", "--topic", broker.unique_topic("paths"),
        "--bootstrap-servers", broker.bootstrap_servers, *args, cwd=workdir,
    )  # fmt: skip
    assert result.returncode == USAGE, result.stdout + result.stderr
    assert_one_line_error(result, "writing it would erase it")
    after = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    assert after == before  # nothing erased, nothing created


@pytest.mark.parametrize(
    "rejects",
    ["o3.jsonl", "./o3.jsonl", "{tmp}/o3.jsonl", "sub/../o3.jsonl", "symlink", "hardlink"],
)
def test_produce_refuses_rejects_that_are_the_input(
    eventwire_broker: LocalBroker, workdir: Path, rejects: str
) -> None:
    (workdir / "sub").mkdir()
    if rejects == "symlink":
        (workdir / "link.jsonl").symlink_to(workdir / "o3.jsonl")
        rejects = "link.jsonl"
    elif rejects == "hardlink":
        os.link(workdir / "o3.jsonl", workdir / "hard.jsonl")
        rejects = "hard.jsonl"
    _produce(
        eventwire_broker, workdir, "--file", "o3.jsonl", "--rejects", rejects.format(tmp=workdir)
    )


def test_produce_refuses_rejects_that_are_stdin(
    eventwire_broker: LocalBroker, workdir: Path
) -> None:
    # `< o3.jsonl`: the input is stdin, and it is the same file.
    before = (workdir / "o3.jsonl").read_bytes()
    with (workdir / "o3.jsonl").open("rb") as stdin:
        result = subprocess.run(  # noqa: S603 - our interpreter, our arguments
            [sys.executable, "-m", "eventwire", "produce", "--event", "paths_events:Order",
             "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--file", "-",
             "--rejects", "o3.jsonl"],
            stdin=stdin, capture_output=True, text=True, cwd=workdir, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == USAGE, result.stderr
    assert "is the input (--file) (standard input)" in result.stderr
    assert (workdir / "o3.jsonl").read_bytes() == before


def test_produce_refuses_rejects_that_are_the_event_module(
    eventwire_broker: LocalBroker, workdir: Path
) -> None:
    _produce(eventwire_broker, workdir, "--file", "o3.jsonl", "--rejects", "paths_events.py")


def test_schema_export_refuses_to_write_over_the_event_module(workdir: Path) -> None:
    source = (workdir / "paths_events.py").read_bytes()
    result = run_cli(
        "schema", "export", "paths_events:Order", "--output", "paths_events.py", cwd=workdir
    )
    assert result.returncode == USAGE
    assert_one_line_error(result, "--output paths_events.py is the source of paths_events")
    assert (workdir / "paths_events.py").read_bytes() == source


def test_schema_asyncapi_refuses_to_write_over_a_module_it_reads(workdir: Path) -> None:
    source = (workdir / "paths_events.py").read_bytes()
    for reference in ("paths_events", "paths_events:Order"):
        result = run_cli(
            "schema", "asyncapi", reference, "--output", "paths_events.py", cwd=workdir
        )
        assert result.returncode == USAGE, result.stderr
        assert_one_line_error(result, "--output paths_events.py is the source of paths_events")
        assert (workdir / "paths_events.py").read_bytes() == source
    result = run_cli("schema", "asyncapi", "paths_events", "--output", "api.json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert '"asyncapi": "3.0.0"' in (workdir / "api.json").read_text()


def test_bench_refuses_outputs_that_are_each_other_or_the_suite(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    run = suite / "run.py"
    run.write_text("raise SystemExit(0)\n")
    for args, fragment in [
        (["--output", str(tmp_path / "r.md"), "--json", str(tmp_path / "r.md")], "--json"),
        (["--output", str(run)], "part of the benchmark suite (run.py)"),
        (["--json", str(run)], "part of the benchmark suite (run.py)"),
    ]:
        (tmp_path / "r.md").write_text("kept")
        result = run_cli("bench", "--suite", str(suite), *args)
        assert result.returncode == USAGE, result.stderr
        assert_one_line_error(result, fragment, "writing it would erase it")
        assert run.read_text() == "raise SystemExit(0)\n"
        assert (tmp_path / "r.md").read_text() == "kept"
