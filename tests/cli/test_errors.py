"""Every failure is one clear line on stderr, never a traceback, with a non-zero exit code."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from eventwire._cli import FAILURE, USAGE, main
from tests.cli.conftest import assert_one_line_error, run_cli

EVENT = "tests.events:OrderPlaced"


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["produce", "--event", "nope_pkg.events:X", "--file", "x"], FAILURE,
         ["cannot import module 'nope_pkg.events'"]),
        (["produce", "--event", "tests.events:LineItem", "--file", "x"], FAILURE,
         ["not an event class", "@eventwire.event"]),
        (["produce", "--event", "tests.events", "--file", "x"], FAILURE, ["module:Class"]),
        (["produce", "--event", "tests.events:Nope", "--file", "x"], FAILURE,
         ["has no attribute 'Nope'"]),
        (["produce", "--event", EVENT, "--file", "/nonexistent/e.jsonl"], FAILURE,
         ["cannot read /nonexistent/e.jsonl"]),
        (["produce", "--event", EVENT, "--file", "x", "--bootstrap-servers", "no port"],
         FAILURE, ["invalid configuration"]),
        (["produce", "--event", EVENT, "--file", "x", "--chunk-size", "0"], USAGE,
         ["--chunk-size", "at least 1"]),
        (["produce", "--file", "x"], USAGE, ["--event"]),
        (["frobnicate"], USAGE, ["invalid choice"]),
        (["broker", "--port", "70000"], USAGE, ["not a TCP port"]),
        (["demo", "--partitions", "0"], USAGE, ["--partitions", "at least 1"]),
        (["demo", "--orders", "-5"], USAGE, ["--orders", "at least 0"]),
        (["demo", "--payments", "many"], USAGE, ["--payments", "'many' is not an integer"]),
        (["schema", "export", EVENT, "--indent", "-3"], USAGE, ["--indent", "at least 0"]),
        (["schema", "export", "nope_pkg:X"], FAILURE, ["cannot import module 'nope_pkg'"]),
        (["schema", "export", EVENT, "--output", "/nonexistent/dir/s.json"], FAILURE,
         ["cannot write /nonexistent/dir/s.json"]),
        (["bench", "--suite", "/nonexistent/benchmarks"], FAILURE,
         ["no benchmark suite at /nonexistent/benchmarks"]),
    ],
)  # fmt: skip
def test_one_line_errors_in_process(
    args: list[str],
    code: int,
    fragments: list[str],
    cli_cwd: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        returned = main(args)
    except SystemExit as exited:  # argparse's usage errors
        returned = int(exited.code or 0)
    assert returned == code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_module_failing_at_import_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken_events.py").write_text("raise RuntimeError('boom at import')\n")
    result = run_cli("schema", "export", "broken_events:OrderPlaced", cwd=tmp_path)
    assert result.returncode == FAILURE
    assert_one_line_error(result, "cannot import module 'broken_events'", "RuntimeError: boom")


def test_no_broker_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    events = tmp_path / "e.jsonl"
    events.write_text("{}\n")
    result = run_cli(
        "produce", "--event", EVENT, "--file", str(events), "--bootstrap-servers",
        f"127.0.0.1:{port}", "--connect-timeout", "1.5",
    )  # fmt: skip
    assert result.returncode == FAILURE
    assert_one_line_error(result, f"cannot reach Kafka at 127.0.0.1:{port} within 1.5 s")
    assert result.stdout == ""


def test_broker_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("broker", "--port", str(port), timeout=60)
    assert result.returncode == FAILURE
    assert_one_line_error(result, f"{port} is in use")
    assert result.stdout == ""


def test_usage_error_in_a_subprocess_is_one_line() -> None:
    result = run_cli("produce", "--event", EVENT)
    assert result.returncode == USAGE
    assert_one_line_error(result, "--file", "--help")


def test_without_the_cli_extra_the_error_says_what_to_install(
    cli_cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")] + ["rich"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if `rich` were not installed
    assert main(["produce", "--event", EVENT, "--file", "x"]) == FAILURE
    [line] = capsys.readouterr().err.splitlines()
    assert "pip install 'eventwire[cli]'" in line
