"""The graceful-shutdown example as a real process: SIGTERM mid-stream, exit within the
deadline + 1 s, and every event it accepted is consumed back (delivered, or delivered by the
next start from the spool)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

import eventwire
from eventwire.testing import LocalBroker
from examples import graceful_shutdown as example
from tests.examples.conftest import ExampleTopics

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 3.0


def _ce_ids(broker: LocalBroker, topic: str) -> list[str]:
    return [(r.header("ce_id") or b"").decode() for r in broker.consume(topic, timeout=30)]


def test_sigterm_stops_the_service_within_its_deadline(
    example_topics: ExampleTopics, tmp_path: Path
) -> None:
    eventwire_broker = example_topics.broker
    topic = eventwire_broker.create_topic(example_topics.prefix + "stock", 3)
    spool = tmp_path / "spool.db"
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "examples.graceful_shutdown",
            *example_topics.argv,
            "--spool",
            str(spool),
            "--deadline",
            str(DEADLINE),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            if line.startswith("publishing"):
                break
        # Let it publish a while: its own pace is about 10k events/s.
        consumed_before = len(eventwire_broker.consume(topic, count=2_000, timeout=30))
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        report = next(
            json.loads(line.removeprefix("report "))
            for line in proc.stdout
            if line.startswith("report ")
        )
    assert proc.wait() == 0
    assert time.monotonic() - signalled < DEADLINE + 1.0
    assert consumed_before >= 2_000
    delivered = _ce_ids(eventwire_broker, topic)
    assert len(delivered) == len(set(delivered)) == report["delivered"]
    assert report["failed"] == 0
    if report["spooled"]:  # the next start delivers what the deadline left in the spool
        assert _deliver_rest(example_topics.config(spool_path=spool)).spooled == 0
        assert len(_ce_ids(eventwire_broker, topic)) == report["delivered"] + report["spooled"]


def _deliver_rest(config: eventwire.PublisherConfig) -> eventwire.CloseReport:
    with eventwire.Publisher(config) as publisher:
        pass
    return publisher.close()


async def test_run_service_in_process_delivers_every_event(
    example_topics: ExampleTopics, tmp_path: Path
) -> None:
    config = example_topics.config(spool_path=tmp_path / "spool.db")
    report = await example.run_service(config, deadline=5.0, limit=500)
    assert (report.delivered, report.spooled, report.failed) == (500, 0, 0)
    records = example_topics.consume("stock", count=500, timeout=30)
    decode = msgspec.json.Decoder(example.StockReserved).decode
    assert {decode(r.value or b"").order_id for r in records} == {f"ord-{n}" for n in range(500)}
