"""Never lose an accepted event: real child processes (``spool_child``), a real broker.

* SIGKILL at three points of one run, restart, replay: every accepted event arrives, 0 lost;
  duplicates (events in flight at a kill) carry the same ``ce_id`` and bytes, and are counted.
* SIGTERM mid-stream: the child exits within its deadline + 1 s; accepted events are delivered
  or spooled; the next start delivers the rest.
* Killed between the spool commit and ``produce()``: the rows are there, and replayed.
* Shutdown is bounded with the broker down, with the spool full, and on a second signal.

The event count of the SIGKILL run comes from ``EVENTWIRE_FAULT_EVENTS`` (default 20,000 in
CI). The full run documented in docs/testing.md and docs/spool.md:
``EVENTWIRE_FAULT_EVENTS=100000 .venv/bin/pytest -q tests/integration/test_spool_crash.py -s``.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eventwire.testing import ProxiedBroker
from tests.integration.conftest import Topics
from tests.integration.spool_runs import (
    Child,
    Children,
    accepted_ids,
    assert_none_lost,
    per_key_first_seen_in_order,
    record_ids,
    replay,
    spooled_ids,
)

pytestmark = pytest.mark.timeout(240)

FAULT_EVENTS = int(os.environ.get("EVENTWIRE_FAULT_EVENTS", "20000"))
DEADLINE = 3.0


Spawn = Callable[..., Child]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    children = Children(tmp_path / "accepted.txt")
    yield children.start
    children.kill_all()


async def test_sigkill_at_three_points_then_replay_loses_nothing(
    topics: Topics, tmp_path: Path, spawn: Spawn
) -> None:
    start = spawn
    broker = topics.broker
    topic = topics.name("orders")
    spool = tmp_path / "spool.db"
    side_file = tmp_path / "accepted.txt"

    def resume() -> Child:
        """A new child going on where the side file says the last one got to."""
        done = len(accepted_ids(side_file))
        args = ["--start", str(done), "--count", str(FAULT_EVENTS - done)]
        return start(broker.bootstrap_servers, topic, spool, *args)

    kills = []
    in_flight: set[str] = set()  # in the spool at a kill: the only events that may repeat
    for point in (0.25, 0.5, 0.75):
        child = resume()
        done = len(accepted_ids(side_file))
        child.read_until("accepted", at_least=int(FAULT_EVENTS * point) - done)
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()
        left = spooled_ids(spool)
        in_flight |= left
        kills.append((point, len(accepted_ids(side_file)), len(left)))
    last = resume()
    report = last.report()
    assert last.proc.wait() == 0
    assert report["spooled"] == 0
    await replay(broker.bootstrap_servers, topic, spool)
    accepted = accepted_ids(last.side_file)
    assert len(accepted) >= FAULT_EVENTS
    records = broker.consume(topic, timeout=120)
    duplicates = assert_none_lost(records, accepted)
    repeated = {event_id for event_id, n in Counter(record_ids(records)).items() if n > 1}
    assert repeated <= in_flight, f"{len(repeated - in_flight)} duplicates were not in flight"
    per_key_first_seen_in_order(records)
    print(  # the figures the issue asks for, shown with -s
        f"\nSIGKILL run: {FAULT_EVENTS:,} events, kills (point, accepted, spool rows) {kills}; "
        f"accepted {len(accepted):,}, records {len(records):,}, lost 0, "
        f"duplicates {duplicates:,} (same ce_id and bytes)"
    )


async def test_sigterm_mid_stream_exits_within_deadline(
    topics: Topics, tmp_path: Path, spawn: Spawn
) -> None:
    broker = topics.broker
    topic = topics.name("orders")
    spool = tmp_path / "spool.db"
    child: Child = spawn(
        broker.bootstrap_servers, topic, spool, "--count", "1000000", "--deadline", str(DEADLINE)
    )
    child.read_until("accepted", at_least=5_000)
    report = child.terminate_within(DEADLINE + 1.0)
    accepted = accepted_ids(child.side_file)
    records = broker.consume(topic, timeout=60)
    delivered = set(record_ids(records))
    spooled = spooled_ids(spool)
    assert set(accepted) <= delivered | spooled  # accepted = delivered + spooled
    assert report["spooled"] == len(spooled)
    await replay(broker.bootstrap_servers, topic, spool)
    assert_none_lost(broker.consume(topic, timeout=60), accepted)


def test_killed_between_spool_commit_and_produce(
    topics: Topics, tmp_path: Path, spawn: Spawn
) -> None:
    broker = topics.broker
    topic = topics.name("orders")
    spool = tmp_path / "spool.db"
    child: Child = spawn(
        broker.bootstrap_servers,
        topic,
        spool,
        "--count",
        "300",
        "--chunk",
        "300",
        "--crash-after-commit",
    )
    assert child.proc.wait() == 70  # the seam: os._exit right after the first commit
    rows = spooled_ids(spool)
    assert len(rows) == 300  # the whole transaction, not a torn part of it
    assert broker.consume(topic, timeout=10) == []  # nothing was produced
    accepted = set(accepted_ids(child.side_file))
    assert accepted <= rows
    asyncio.run(replay(broker.bootstrap_servers, topic, spool))
    records = broker.consume(topic, count=300, timeout=30)
    assert collections.Counter(record_ids(records)) == dict.fromkeys(rows, 1)  # same ce_ids, once


async def test_sigterm_with_broker_down_is_bounded_and_spools(
    proxied: ProxiedBroker, tmp_path: Path, spawn: Spawn
) -> None:
    topic = proxied.unique_topic()
    spool = tmp_path / "spool.db"
    child: Child = spawn(
        proxied.bootstrap_servers, topic, spool, "--count", "1000000", "--deadline", str(DEADLINE)
    )
    child.read_until("accepted", at_least=2_000)
    proxied.proxy.cut()
    child.read_until("accepted")  # accepting goes on with the broker gone
    report = child.terminate_within(DEADLINE + 1.0)
    accepted = accepted_ids(child.side_file)
    spooled = spooled_ids(spool)
    assert report["spooled"] == len(spooled) > 0
    proxied.proxy.restore()
    await replay(proxied.bootstrap_servers, topic, spool)
    assert_none_lost(proxied.consume(topic, timeout=60), accepted)


async def test_sigterm_with_spool_full_is_bounded(
    proxied: ProxiedBroker, tmp_path: Path, spawn: Spawn
) -> None:
    topic = proxied.unique_topic()
    spool = tmp_path / "spool.db"
    proxied.proxy.cut()  # nothing can be delivered: the spool fills up and accept() waits
    child: Child = spawn(
        proxied.bootstrap_servers,
        topic,
        spool,
        "--count",
        "10000",
        "--chunk",
        "100",
        "--max-events",
        "200",
        "--deadline",
        str(DEADLINE),
    )
    child.read_until("accepted", at_least=200)
    report = child.terminate_within(DEADLINE + 1.0)
    assert report["spooled"] == 200
    assert set(accepted_ids(child.side_file)) == spooled_ids(spool)
    proxied.proxy.restore()
    await replay(proxied.bootstrap_servers, topic, spool)
    assert_none_lost(proxied.consume(topic, timeout=60), accepted_ids(child.side_file))


def test_second_signal_exits_at_once(proxied: ProxiedBroker, tmp_path: Path, spawn: Spawn) -> None:
    topic = proxied.unique_topic()
    spool = tmp_path / "spool.db"
    child: Child = spawn(
        proxied.bootstrap_servers, topic, spool, "--count", "1000000", "--deadline", "60"
    )
    child.read_until("accepted", at_least=1_000)
    proxied.proxy.pause()  # deliveries hang: the flush would take the whole 60 s
    child.proc.send_signal(signal.SIGTERM)
    child.read_until("eventwire.shutdown_requested")
    signalled = time.monotonic()
    child.proc.send_signal(signal.SIGTERM)
    assert child.proc.wait() == 128 + signal.SIGTERM
    assert time.monotonic() - signalled < 1.0
    proxied.proxy.resume()
    accepted = accepted_ids(child.side_file)
    asyncio.run(replay(proxied.bootstrap_servers, topic, spool))  # nothing accepted is lost
    assert_none_lost(proxied.consume(topic, timeout=60), accepted)
