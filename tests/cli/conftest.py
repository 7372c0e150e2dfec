from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def run_cli(
    *args: str, stdin: bytes | None = None, timeout: float = 120.0, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """``python -m eventwire ARGS``, by default from the repository root (``tests.events``
    imports)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("EVENTWIRE_BOOTSTRAP_SERVERS", None)
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "eventwire", *args],
        cwd=cwd,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without asyncio's debug-mode notes about slow callbacks (the suite runs with
    ``PYTHONASYNCIODEBUG=1``, which the child inherits; validating a chunk takes a while)."""
    return [line for line in result.stderr.splitlines() if not line.startswith("Executing <")]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def cli_cwd(monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process runs resolve ``module:Class`` from the repository root, like a user's cwd."""
    monkeypatch.chdir(ROOT)
    return ROOT
