"""``outbox.add``: the row is the record ``publish()`` sends, written in the caller's
transaction or not at all."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session

import eventwire
from eventwire import outbox
from eventwire.outbox._store import stored_event
from eventwire.outbox._writer import ESCALATE
from eventwire.testing import FakePublisher
from tests.outbox.conftest import Database, OrderPlaced

CONSTANT_HEADERS = ("ce_specversion", "ce_source", "ce_type", "ce_eventversion", "content-type")


def stored(database: Database) -> list[eventwire.codec.EncodedEvent]:
    with database.engine.connect() as conn:
        rows = conn.execute(select(outbox.outbox_table).order_by(outbox.outbox_table.c.id)).all()
    return [stored_event(row).encoded for row in rows]


def test_the_row_is_the_record_publish_sends(database: Database) -> None:
    config = eventwire.PublisherConfig(
        bootstrap_servers="localhost:9092",
        topic_prefix="staging.",
        encoding="msgpack",
        client_id="orders-service",
    )
    event = OrderPlaced(order_id="o-1", seq=7, total=Decimal("12.50"))
    with database.engine.begin() as conn:
        event_id = outbox.add(conn, event, config=config, headers={"tenant": "acme"})
    [row] = stored(database)
    fake = FakePublisher(config)
    fake.publish(event, headers={"tenant": "acme"})
    [published] = fake.published()
    assert row.event_id == event_id
    assert (row.topic, row.key, row.value) == (published.topic, published.key, published.value)
    assert row.topic == "staging.orders"
    headers = dict(row.headers.items() if isinstance(row.headers, dict) else row.headers)
    for name in CONSTANT_HEADERS:
        assert headers[name] == published.header(name), name
    assert headers["tenant"] == b"acme"
    assert headers["ce_id"] == event_id


def test_an_invalid_event_is_refused_at_add_and_nothing_is_written(database: Database) -> None:
    with database.engine.begin() as conn:
        outbox.add(conn, OrderPlaced(order_id="o-1", seq=1))
        with pytest.raises(eventwire.EventValidationError) as caught:
            outbox.add(conn, OrderPlaced(order_id="o-2", seq="two"))  # type: ignore[arg-type]
        outbox.add(conn, OrderPlaced(order_id="o-3", seq=3))
    assert caught.value.path == "$.seq"
    assert [row.key for row in stored(database)] == [b"o-1", b"o-3"]


def test_add_many_validates_every_event_before_writing_any(database: Database) -> None:
    events = [OrderPlaced(order_id="o-1", seq=1), OrderPlaced(order_id="o-2", seq=-0.5)]  # type: ignore[arg-type]
    with database.engine.begin() as conn, pytest.raises(eventwire.EventValidationError):
        outbox.add_many(conn, events)
    assert database.rows() == 0


def test_a_rolled_back_transaction_leaves_no_row(database: Database) -> None:
    with pytest.raises(RuntimeError, match="business transaction fails"):
        database.add_then_fail([OrderPlaced(order_id="o-1", seq=1)])
    assert database.rows() == 0


def test_add_takes_an_orm_session(database: Database) -> None:
    with Session(database.engine) as session, session.begin():
        outbox.add(session, OrderPlaced(order_id="o-1", seq=1))
        ids = outbox.add_many(session, [OrderPlaced(order_id="o-2", seq=2)] * 2)
    assert len(set(ids)) == 2
    assert [row.key for row in stored(database)] == [b"o-1", b"o-2", b"o-2"]


def test_add_refuses_an_autocommit_connection(database: Database) -> None:
    with database.engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(eventwire.ConfigError, match="AUTOCOMMIT"):
            outbox.add(auto, OrderPlaced(order_id="o-1", seq=1))
    assert database.rows() == 0


def test_add_refuses_what_is_not_a_connection() -> None:
    with pytest.raises(TypeError, match="Connection or Session"):
        outbox.add("sqlite:///x.db", OrderPlaced(order_id="o-1", seq=1))  # type: ignore[arg-type]


def test_the_outbox_refuses_other_databases() -> None:
    with pytest.raises(eventwire.ConfigError, match="PostgreSQL and SQLite, not 'mysql'"):
        outbox.schema_ddl("mysql")


def async_url(database: Database) -> str:
    if database.kind == "sqlite":
        return database.url.replace("sqlite://", "sqlite+aiosqlite://")
    return database.url.replace("+psycopg://", "+psycopg_async://")


async def add_then_fail(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await outbox.add_async(conn, OrderPlaced(order_id="o-3", seq=3))
        raise RuntimeError("rolled back")


def test_add_async_takes_an_async_connection_and_session(database: Database) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    async def write() -> None:
        engine = create_async_engine(async_url(database))
        try:
            async with engine.begin() as conn:
                await outbox.add_async(conn, OrderPlaced(order_id="o-1", seq=1))
            async with AsyncSession(engine) as session, session.begin():
                await outbox.add_many_async(session, [OrderPlaced(order_id="o-2", seq=2)])
            with pytest.raises(RuntimeError, match="rolled back"):
                await add_then_fail(engine)
            with pytest.raises(TypeError, match="AsyncConnection or AsyncSession"):
                await outbox.add_async(object(), OrderPlaced(order_id="o-4", seq=4))  # type: ignore[arg-type]
        finally:
            await engine.dispose()

    asyncio.run(write())
    assert [row.key for row in stored(database)] == [b"o-1", b"o-2"]


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # SQLite: one writer
def test_postgresql_writers_of_one_key_wait_for_each_other(database: Database) -> None:
    """The lock that makes id order commit order per key: a second writer of the key waits
    for the first transaction to end; a writer of another key does not."""
    with database.engine.connect() as first:
        first.begin()
        outbox.add(first, OrderPlaced(order_id="k", seq=1))
        with database.engine.connect() as other:
            other.exec_driver_sql("SET lock_timeout = '200ms'")
            other.commit()
            with other.begin():
                outbox.add(other, OrderPlaced(order_id="another-key", seq=1))
            with pytest.raises(OperationalError, match="lock timeout"), other.begin():
                outbox.add(other, OrderPlaced(order_id="k", seq=2))
        first.commit()
    assert database.rows() == 2


def test_the_table_ddl_is_printed_for_both_dialects() -> None:
    postgres = outbox.schema_ddl("postgresql")
    assert "CREATE TABLE eventwire_outbox (" in postgres
    assert "GENERATED BY DEFAULT AS IDENTITY" in postgres
    assert "pg_notify('eventwire_outbox'" in postgres
    sqlite = outbox.schema_ddl("sqlite")
    assert "AUTOINCREMENT" in sqlite
    assert "pg_notify" not in sqlite
    with pytest.raises(eventwire.ConfigError):
        outbox.schema_ddl("oracle")


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_transaction_adding_many_keys_locks_the_whole_outbox_instead(
    database: Database,
) -> None:
    """Beyond ``ESCALATE`` key locks (the server's lock table is finite), one exclusive lock
    on the whole outbox: every other writer waits for that transaction, whatever its key."""
    many = [OrderPlaced(order_id=f"bulk-{n}", seq=n) for n in range(ESCALATE + 500)]
    with database.engine.connect() as bulk:
        bulk.begin()
        outbox.add_many(bulk, many)
        with database.engine.connect() as other:
            other.exec_driver_sql("SET lock_timeout = '200ms'")
            other.commit()
            with pytest.raises(OperationalError, match="lock timeout"), other.begin():
                outbox.add(other, OrderPlaced(order_id="unrelated", seq=1))
            bulk.commit()
            with other.begin():
                outbox.add(other, OrderPlaced(order_id="unrelated", seq=1))
    assert database.rows() == ESCALATE + 501
