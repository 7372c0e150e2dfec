"""The atheris harnesses of ``make fuzz`` still import and run: they reach into the CLI's
private reader, which moved once under them unnoticed (``make fuzz`` failed at import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).parents[2] / "fuzz" / "run.py"


def test_every_harness_runs_a_second_without_a_crash() -> None:
    done = subprocess.run(  # noqa: S603 - our interpreter and script
        [sys.executable, str(RUN), "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "codec_harness.py:" in done.stdout
    assert "line_reader_harness.py:" in done.stdout
    assert done.stdout.rstrip().endswith("0 crashes")
