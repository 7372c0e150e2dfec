"""The decision and ordering modules need no librdkafka: their tests (``tests/unit/pure``)
pass in a process where ``confluent_kafka`` cannot be imported.

The ``eventwire`` package's ``__init__`` imports the publishers (and so confluent-kafka), so
the child process registers the package without running it, as a namespace over its source
folder, and imports the pure modules from there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import eventwire

PURE_TESTS = Path(__file__).parent / "pure"

_CHILD = """
import sys, types
sys.modules["confluent_kafka"] = None  # any import of it now raises ImportError
package = types.ModuleType("eventwire")
package.__path__ = [{source!r}]
sys.modules["eventwire"] = package
import pytest
sys.exit(pytest.main([
    "-q", "-p", "no:eventwire", "-p", "no:cacheprovider",
    "--noconftest",  # tests/conftest.py brings the broker fixtures, so confluent-kafka
    "-o", "filterwarnings=error",  # the project's list names eventwire's own warning
    "-W", "ignore::pytest.PytestAssertRewriteWarning", {tests!r},
]))
"""


def test_decisions_and_ordering_are_tested_without_confluent_kafka() -> None:
    source = str(Path(eventwire.__file__).parent)
    child = _CHILD.format(source=source, tests=str(PURE_TESTS))
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PURE_TESTS,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout
    assert "confluent" not in done.stdout + done.stderr
