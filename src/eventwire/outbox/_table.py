"""The outbox's tables, defined once with SQLAlchemy Core, and their DDL.

``eventwire_outbox`` holds one row per event not yet acknowledged by Kafka: the Kafka record
itself (topic, key, value bytes, headers) plus its CloudEvents id and type for operators. Rows
are deleted once Kafka acknowledged them. ``eventwire_outbox_lease`` holds one row per relay
group: which relay may publish, under which epoch, until when (database time).

On PostgreSQL a statement trigger on the outbox table sends ``NOTIFY eventwire_outbox`` when
rows are inserted: the relay wakes at the writer's commit instead of at its next poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Double,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from eventwire._errors import ConfigError

#: The outbox table's name.
TABLE_NAME: Final = "eventwire_outbox"
#: The lease table's name.
LEASE_TABLE_NAME: Final = "eventwire_outbox_lease"
#: The channel of the PostgreSQL notification sent when rows are inserted.
CHANNEL: Final = "eventwire_outbox"
#: The dialects the outbox supports (commit order per key is proven for these two).
DIALECTS: Final = ("postgresql", "sqlite")

#: The tables, for migration tools (Alembic's ``target_metadata``) and ``create_all``.
metadata: Final = MetaData()

outbox_table: Final = Table(
    TABLE_NAME,
    metadata,
    # The order rows of one key are published in (see docs/outbox.md, "Commit order per key").
    # SQLite: INTEGER PRIMARY KEY AUTOINCREMENT, so an id is never reused after a delete.
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(always=False),
        primary_key=True,
    ),
    Column("topic", String(249), nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=False),
    # The record's headers, MessagePack-encoded: names in order, str and bytes values kept
    # apart (the CloudEvents headers and the caller's own).
    Column("headers", LargeBinary, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    # When add() ran (epoch seconds, the writer's clock): the age of the backlog and the
    # latency to the acknowledgement are counted from here.
    Column("created_at", Double, nullable=False),
    sqlite_autoincrement=True,
)

lease_table: Final = Table(
    LEASE_TABLE_NAME,
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    # Raised by every takeover: a relay acts (deletes rows) only under the epoch it holds.
    Column("epoch", BigInteger, nullable=False),
    # Database time (epoch seconds): relays on hosts with different clocks agree on it.
    Column("expires_at", Double, nullable=False),
)

_NOTIFY_FUNCTION: Final = DDL(  # type: ignore[no-untyped-call]
    f"CREATE OR REPLACE FUNCTION {TABLE_NAME}_notify() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    f"BEGIN\n  PERFORM pg_notify('{CHANNEL}', '');\n  RETURN NULL;\nEND\n$$"
)
_NOTIFY_TRIGGER: Final = DDL(  # type: ignore[no-untyped-call]
    f"CREATE TRIGGER {TABLE_NAME}_notify AFTER INSERT ON {TABLE_NAME}\n"
    f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE_NAME}_notify()"
)
event.listen(outbox_table, "after_create", _NOTIFY_FUNCTION.execute_if(dialect="postgresql"))
event.listen(outbox_table, "after_create", _NOTIFY_TRIGGER.execute_if(dialect="postgresql"))


def check_dialect(name: str) -> None:
    """Refuse a database the outbox does not support.

    Raises:
        ConfigError: not PostgreSQL or SQLite.
    """
    if name not in DIALECTS:
        raise ConfigError(
            f"the outbox supports PostgreSQL and SQLite, not {name!r}: commit order per key is"
            " designed and tested for those two (see docs/outbox.md)"
        )


def create_tables(bind: Engine | Connection) -> None:
    """Create the outbox and lease tables (and PostgreSQL's notify trigger) if missing; on
    SQLite given an ``Engine``, also turn on WAL mode (the relay reads while writers write).

    Raises:
        ConfigError: the database is neither PostgreSQL nor SQLite.
    """
    check_dialect(bind.dialect.name)
    if isinstance(bind, Engine):
        if bind.dialect.name == "sqlite":
            with bind.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        with bind.begin() as conn:
            metadata.create_all(conn, checkfirst=True)
        return
    metadata.create_all(bind, checkfirst=True)


def schema_ddl(dialect: str = "postgresql") -> str:
    """The DDL that creates the outbox's tables, as SQL statements ending with ``;``.

    Args:
        dialect: ``"postgresql"`` (default) or ``"sqlite"``.

    Raises:
        ConfigError: another dialect.
    """
    check_dialect(dialect)
    return "".join(f"{statement.strip()};\n\n" for statement in _statements(_dialect(dialect)))


def _statements(dialect: Dialect) -> Iterator[str]:
    for table in metadata.sorted_tables:
        yield str(CreateTable(table).compile(dialect=dialect))
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            yield str(CreateIndex(index).compile(dialect=dialect))
    if dialect.name == "postgresql":
        yield _NOTIFY_FUNCTION.statement
        yield _NOTIFY_TRIGGER.statement


def _dialect(name: str) -> Dialect:
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect()  # type: ignore[no-untyped-call]
    from sqlalchemy.dialects import sqlite

    return sqlite.dialect()
