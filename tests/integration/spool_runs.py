"""Publishing child processes for the crash tests (``spool_child``), and the checks of what
they accepted against what a broker holds: shared by ``test_spool_crash`` (Tansu) and the
3-broker Kafka fault tests."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import eventwire
from eventwire.testing import ConsumedRecord

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Child:
    proc: subprocess.Popen[str]
    side_file: Path

    @property
    def stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def read_until(self, predicate: str, at_least: int = 0) -> str:
        """Block on the child's output until a line starts with ``predicate`` (and, for
        ``accepted N`` lines, N >= at_least)."""
        for line in self.stdout:
            if line.startswith(predicate):
                if not at_least or int(line.split()[1]) >= at_least:
                    return line
            elif predicate in line:
                return line
        raise AssertionError(f"child exited (rc {self.proc.wait()}) before {predicate!r}")

    def report(self) -> dict[str, object]:
        line = self.read_until("report ")
        return dict(json.loads(line.removeprefix("report ")))

    def terminate_within(self, seconds: float) -> dict[str, object]:
        """SIGTERM; the child must report and exit cleanly within ``seconds``."""
        signalled = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        report = self.report()
        assert self.proc.wait() == 0
        assert time.monotonic() - signalled < seconds
        return report

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stdout.close()


class Children:
    """Starts ``spool_child`` processes that append what they accept to one side file, and
    kills those still running at ``kill_all``."""

    def __init__(self, side_file: Path) -> None:
        self.side_file = side_file
        self._started: list[Child] = []

    def start(self, bootstrap: str, topic: str, spool: Path, *extra: str) -> Child:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "tests.integration.spool_child",
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--spool",
                str(spool),
                "--side-file",
                str(self.side_file),
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        child = Child(proc, self.side_file)
        self._started.append(child)
        return child

    def kill_all(self) -> None:
        for child in self._started:
            child.kill()


def record_ids(records: list[ConsumedRecord]) -> list[str]:
    """The ``ce_id`` of each record."""
    return [(r.header("ce_id") or b"").decode() for r in records]


def accepted_ids(side_file: Path) -> list[str]:
    """The ``ce_id``s the children accepted (durable in the spool), in order."""
    return side_file.read_text(encoding="ascii").split() if side_file.exists() else []


def spooled_ids(path: Path) -> set[str]:
    """The ``ce_id``s in the spool file: accepted and not acknowledged."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT event_id FROM events")}


async def replay(bootstrap: str, topic: str, spool: Path) -> eventwire.CloseReport:
    """The next start: a publisher on the same spool delivers what is left, then closes."""
    config = eventwire.PublisherConfig(
        bootstrap_servers=bootstrap, topic_map={"orders": topic}, spool_path=spool
    )
    publisher = eventwire.AsyncPublisher(config)
    async with publisher:
        pass
    report = await publisher.aclose()
    assert report.spooled == 0
    assert not spooled_ids(spool)
    return report


def assert_none_lost(records: list[ConsumedRecord], accepted: list[str]) -> int:
    """Every accepted id arrived; duplicates have identical bytes. Returns the duplicates."""
    seen: dict[str, bytes | None] = {}
    duplicates = 0
    for record, event_id in zip(records, record_ids(records), strict=True):
        if event_id in seen:
            duplicates += 1
            assert seen[event_id] == record.value
        else:
            seen[event_id] = record.value
    lost = [event_id for event_id in accepted if event_id not in seen]
    assert lost == [], f"{len(lost)} accepted events lost, e.g. {lost[:3]}"
    return duplicates


def per_key_first_seen_in_order(records: list[ConsumedRecord]) -> None:
    """Per key, the order numbers of first deliveries never go back (a replayed event comes
    before new ones; a re-published number may repeat)."""
    last: dict[bytes | None, int] = {}
    seen: set[str] = set()
    for record, event_id in zip(records, record_ids(records), strict=True):
        if event_id in seen:
            continue
        seen.add(event_id)
        number = int(json.loads(record.value or b"{}")["notes"].split()[-1])
        assert number >= last.get(record.key, -1), record.key
        last[record.key] = number
