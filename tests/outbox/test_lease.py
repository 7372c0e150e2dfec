"""The lease: one holder at a time, takeover after expiry or release, and fenced deletes (a
stale holder deletes nothing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, update

from eventwire import outbox
from eventwire.outbox._lease import Lease
from eventwire.outbox._relay import relay_engine
from eventwire.outbox._store import OutboxStore
from eventwire.testing import capture_logs
from tests.outbox.conftest import Database, OrderPlaced


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    """The relay's own kind of engine (SQLite: BEGIN IMMEDIATE)."""
    relay = relay_engine(database.url)
    yield relay
    relay.dispose()


def expire(engine: Engine) -> None:
    """The holder died long ago: its lease is past its expiry."""
    with engine.begin() as conn:
        conn.execute(update(outbox.lease_table).values(expires_at=0.0))


def test_one_holder_at_a_time_and_a_takeover_raises_the_epoch(engine: Engine) -> None:
    first, second = Lease("default", "a", ttl=30), Lease("default", "b", ttl=30)
    with engine.connect() as conn:
        assert first.acquire(conn) is None
        assert first.held()
        wait = second.acquire(conn)
        assert wait is not None
        assert 25 < wait <= 30  # seconds until the holder's lease expires
        assert first.acquire(conn) is None  # the holder renews: same epoch
        assert first.epoch == 1
        expire(engine)
        assert second.acquire(conn) is None
        assert second.epoch == 2
        assert not first.renew(conn)  # the old holder learns it lost the lease
        assert not first.held()
        second.release(conn)
        assert first.acquire(conn) is None  # released: taken at once, not after 30 s
        assert first.epoch == 3


def test_a_stale_holder_deletes_nothing(database: Database, engine: Engine) -> None:
    with database.engine.begin() as conn:
        outbox.add_many(conn, [OrderPlaced(order_id="k", seq=n) for n in range(3)])
    stale = Lease("default", "stale", ttl=30)
    with engine.connect() as conn:
        stale.acquire(conn)
    store = OutboxStore(engine, stale, max_in_flight=100, poll_interval=1.0)
    try:
        rows = store.fetch()
        assert [r.seq for r in rows] == [1, 2, 3]
        expire(engine)
        with engine.connect() as conn:
            assert Lease("default", "new", ttl=30).acquire(conn) is None
        with capture_logs() as logs:
            store.commit([], [(1, 3)])  # acknowledged by Kafka, but the lease moved on
        assert store.lost
        assert database.rows() == 3  # the new holder publishes them again
        assert [e["event"] for e in logs] == ["eventwire.outbox_fenced"]
        assert store.fetch() == []  # and it fetches nothing more
    finally:
        store.close()
    with engine.connect() as conn:
        holder = conn.execute(select(outbox.lease_table.c.holder)).scalar_one()
    assert holder == "new"
