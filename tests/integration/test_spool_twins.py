"""The sync twin of ``accept`` on the real broker, and the age of replayed events counted from
their acceptance in an earlier run (``accepted_at`` in the row; version 1 files upgraded)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import msgspec
import pytest

import eventwire
import eventwire.codec
from eventwire._durable.sqlite import APPLICATION_ID, SCHEMA_VERSION, SqliteStore
from eventwire._durable.store import StoredEvent
from eventwire.testing import ProxiedBroker
from tests.events import order
from tests.integration.conftest import Topics

pytestmark = pytest.mark.timeout(90)


def test_sync_accept_and_accept_many(topics: Topics, tmp_path: Path) -> None:
    with eventwire.Publisher(topics.config()) as plain, pytest.raises(eventwire.ConfigError):
        plain.accept(order(0))
    path = tmp_path / "s.db"
    with eventwire.Publisher(topics.config(spool_path=path)) as publisher:
        accepted = publisher.accept(order(1))
        assert isinstance(accepted, eventwire.SyncAccepted)
        receipt = accepted.wait_delivered(30)
        assert receipt.event_id == accepted.event_id
        assert accepted.done()
        events = [order(n, key=f"k{n % 3}") for n in range(2, 202)]
        events[50] = order(52, currency="euro")
        many = publisher.accept_many(events)
        assert isinstance(many[50], eventwire.EventValidationError)
        handles = [h for h in many if isinstance(h, eventwire.SyncAccepted)]
        assert len(handles) == 199
        receipts = [h.wait_delivered(30) for h in handles]
        report = publisher.close()
    assert (report.delivered, report.failed, report.spooled) == (200, 0, 0)
    records = topics.broker.consume(topics.name("orders"), count=200)
    ids = sorted((r.header("ce_id") or b"").decode() for r in records)
    assert ids == sorted([receipt.event_id] + [r.event_id for r in receipts])


def test_wait_delivered_times_out_then_delivers(proxied: ProxiedBroker, tmp_path: Path) -> None:
    topic = proxied.unique_topic()
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        topic_map={"orders": topic},
        spool_path=tmp_path / "s.db",
    )
    with eventwire.Publisher(config) as publisher:
        publisher.publish(order(0))
        proxied.proxy.cut()
        accepted = publisher.accept(order(1))  # durable while the broker is away
        with pytest.raises(TimeoutError):
            accepted.wait_delivered(0.3)
        assert not accepted.done()
        proxied.proxy.restore()
        receipt = accepted.wait_delivered(30)
    assert receipt.topic == topic
    ids = [r.header("ce_id") for r in proxied.consume(topic, timeout=20)]
    assert accepted.event_id.encode() in ids


def _unreachable(path: Path) -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(bootstrap_servers="127.0.0.1:9", spool_path=path, breaker=None)


def test_oldest_age_of_replayed_events_counts_from_their_acceptance(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    codec = eventwire.codec.EventCodec()
    store = SqliteStore(path)
    store.commit(
        [
            StoredEvent(seq, accepted_at, codec.encode(order(seq)))
            for seq, accepted_at in ((1, time.time() - 300), (2, time.time() - 200))
        ],
        [],
    )
    store.close()
    for _ in range(2):  # the age survives a run that leaves the rows again
        publisher = eventwire.Publisher(_unreachable(path))
        health = publisher.health()
        assert health.spool_backlog == 2
        assert health.spool_oldest_age is not None
        assert 300 <= health.spool_oldest_age < 400
        report = publisher.close(timeout=0.2)
        assert report.spooled == 2


def test_version_1_spool_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    codec = eventwire.codec.EventCodec()
    events = [codec.encode(order(n)) for n in range(3)]
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, "
            "record BLOB NOT NULL) STRICT"
        )
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("PRAGMA user_version=1")
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?)",
            [(n + 1, e.event_id, msgspec.msgpack.encode(e)) for n, e in enumerate(events)],
        )
    publisher = eventwire.Publisher(_unreachable(path))
    health = publisher.health()
    assert health.spool_backlog == 3
    assert health.spool_oldest_age is not None
    assert health.spool_oldest_age < 60  # unknown acceptance time: counted from this start
    publisher.close(timeout=0.2)
    store = SqliteStore(path)
    loaded = store.load()
    store.close()
    assert [(seq, enc.event_id) for seq, _, enc in loaded] == [
        (n + 1, e.event_id) for n, e in enumerate(events)
    ]
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
