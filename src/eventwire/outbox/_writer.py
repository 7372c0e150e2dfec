"""``add``: an event written to the outbox table inside the caller's own transaction.

The row is the Kafka record ``publish()`` would send: the same ``EventCodec`` (validation,
encoding, key, CloudEvents headers) and the same topic resolution (``PublisherConfig``'s prefix
and map) make it, so the relay only copies bytes.

Commit order per key: on PostgreSQL, ``add`` first takes a transaction-scoped advisory lock on
the event's (topic, key), then inserts. Writers of one key therefore insert one transaction
after the other: a row's id is drawn only after every earlier transaction of its key ended,
so within a key, id order is commit order (``docs/outbox.md`` has the argument). SQLite has a
single writer: the whole database is locked from a transaction's first write to its commit,
so id order is commit order for every row.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec
from sqlalchemy import ARRAY, Integer, bindparam, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from eventwire._codec import EncodedEvent, EventCodec, UserHeaders
from eventwire._config import PublisherConfig
from eventwire._errors import ConfigError
from eventwire._events import event_batch
from eventwire.outbox._size import size_limits, too_large
from eventwire.outbox._table import check_dialect, outbox_table

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

#: The first key of the advisory locks ``add`` takes on PostgreSQL ("EWOB"): another use of
#: two-key advisory locks in the same database should pick another.
LOCK_CLASS: Final = 0x45574F42
#: Most key locks one transaction takes; beyond, it locks the whole outbox (see
#: ``_lock_statement``).
ESCALATE: Final = 1000
_LOCKS_INFO: Final = "eventwire.outbox.locks"
# The keys come sorted; unnest yields them in array order, and Append runs its parts in order.
_SHARED_AND_KEYS: Final = text(
    "SELECT count(l) FROM ("
    " SELECT pg_advisory_xact_lock_shared(:lock_class, 0) IS NULL AS l"
    " UNION ALL"
    " SELECT pg_advisory_xact_lock(:lock_class, k) IS NULL"
    " FROM unnest(CAST(:keys AS integer[])) AS k"
    ") AS locks"
).bindparams(bindparam("keys", type_=ARRAY(Integer)))
_EXCLUSIVE: Final = text("SELECT pg_advisory_xact_lock(:lock_class, 0)")

_encode_headers: Final = msgspec.msgpack.Encoder().encode
_DEFAULT_CONFIG: Final = PublisherConfig(bootstrap_servers="localhost:9092")
#: Codecs and size limits by configuration (the configuration is kept, so its id is not
#: reused).
_CODECS: OrderedDict[int, tuple[PublisherConfig, EventCodec, tuple[int, int]]] = OrderedDict()
_CODECS_LOCK: Final = threading.Lock()
_MAX_CODECS: Final = 32


def _forget_codecs() -> None:
    # A codec's event ids are a random prefix and a counter: a forked child keeping its
    # parent's codec would draw the ids its parent draws.
    _CODECS.clear()


os.register_at_fork(after_in_child=_forget_codecs)


def codec_for(config: PublisherConfig | None) -> tuple[EventCodec, tuple[int, int]]:
    """The codec ``publish()`` of a publisher built with ``config`` encodes with, and its
    producer's size limits (``size_limits``)."""
    config = _DEFAULT_CONFIG if config is None else config
    if not isinstance(config, PublisherConfig):
        raise ConfigError(f"config must be a PublisherConfig or None, not {type(config).__name__}")
    with _CODECS_LOCK:
        found = _CODECS.get(id(config))
        if found is not None and found[0] is config:
            _CODECS.move_to_end(id(config))
            return found[1], found[2]
        codec = EventCodec(
            encoding=config.encoding,
            validate=config.validate,
            source=config.ce_source,
            resolve_topic=config._resolve_topic,
        )
        limits = size_limits(config)
        _CODECS[id(config)] = (config, codec, limits)
        while len(_CODECS) > _MAX_CODECS:
            _CODECS.popitem(last=False)
        return codec, limits


def lock_id(topic: str, key: bytes) -> int:
    """The second key of the advisory lock of (``topic``, ``key``): a signed 32-bit hash,
    never 0 (the whole outbox's lock). Two keys sharing a hash only wait for each other;
    order stays right."""
    digest = hashlib.blake2b(topic.encode() + b"\0" + key, digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True) or 1


def _row(encoded: EncodedEvent, now: float) -> dict[str, Any]:
    return {
        "topic": encoded.topic,
        "key": encoded.key,
        "value": encoded.value,
        "headers": _encode_headers(encoded.headers),
        "event_id": encoded.event_id,
        "event_type": encoded.event_type,
        "created_at": now,
    }


def _encode_all(
    events: Iterable[Any],
    topic: str | None,
    key: str | bytes | None,
    headers: UserHeaders | None,
    config: PublisherConfig | None,
) -> list[EncodedEvent]:
    """Every event checked and encoded as ``publish`` would, before anything is written.

    Raises what ``publish`` raises for that event (``EventValidationError``...), and the
    ``PermanentPublishError`` librdkafka gives a record larger than ``message.max.bytes``:
    the relay could never produce that row.
    """
    batch = event_batch(events, "outbox.add_many")
    codec, limits = codec_for(config)
    encoded = [codec.encode(event, topic, key, headers) for event in batch]
    for record in encoded:
        error = too_large(record, limits)
        if error is not None:
            raise error
    return encoded


class _Locks:
    """How many key locks the current transaction of a connection holds, and whether it
    holds the whole outbox's lock (kept in the connection's ``info``)."""

    __slots__ = ("escalated", "keys", "transaction")

    def __init__(self, transaction: object) -> None:
        self.transaction = weakref.ref(transaction)
        self.keys = 0
        self.escalated = False


def _locks_of(conn: Connection) -> _Locks:
    transaction = conn.get_transaction()
    locks: _Locks | None = conn.info.get(_LOCKS_INFO)
    if transaction is None or locks is None or locks.transaction() is not transaction:
        locks = _Locks(transaction if transaction is not None else conn)
        conn.info[_LOCKS_INFO] = locks
    return locks


def _lock_statement(conn: Connection, encoded: Sequence[EncodedEvent]) -> Any:
    """The statement that takes the locks ``encoded`` needs (``None`` if none is needed).

    PostgreSQL: each key's exclusive lock plus the whole outbox's lock *shared*, in one
    statement, keys in a fixed order (two ``add_many`` calls over the same keys cannot
    deadlock). A transaction that would hold more than ``ESCALATE`` key locks takes the
    whole outbox's lock *exclusively* instead (the server's lock table is finite): it then
    waits for every other writer to end, and they wait for it. Either way, a row's id is drawn
    only after every earlier transaction of its key ended.
    """
    check_dialect(conn.dialect.name)
    if conn.dialect.name != "postgresql":
        return None
    ids = sorted({lock_id(e.topic, e.key) for e in encoded if e.key is not None})
    if not ids:
        return None
    locks = _locks_of(conn)
    if locks.escalated:
        return None
    if locks.keys + len(ids) > ESCALATE:
        locks.escalated = True
        return _EXCLUSIVE.bindparams(lock_class=LOCK_CLASS)
    locks.keys += len(ids)
    return _SHARED_AND_KEYS.bindparams(lock_class=LOCK_CLASS, keys=ids)


def _refuse_autocommit(conn: Connection) -> None:
    # Read without a round trip: get_isolation_level() would query the server at each add.
    option = conn.get_execution_options().get("isolation_level")
    driver = conn.connection.driver_connection
    if option == "AUTOCOMMIT" or getattr(driver, "autocommit", False) is True:
        raise ConfigError(
            "outbox.add needs a transaction: this connection is in AUTOCOMMIT mode, so the"
            " event would be committed alone, whatever happens to the caller's transaction"
        )


def add(
    connection: Connection | Session,
    event: Any,
    *,
    topic: str | None = None,
    key: str | bytes | None = None,
    headers: UserHeaders | None = None,
    config: PublisherConfig | None = None,
) -> str:
    """Write ``event`` to the outbox table in the caller's open transaction.

    The event is validated and encoded as ``publish()`` would (the same bytes, key and
    CloudEvents headers); it reaches Kafka through the relay if and only if the caller's
    transaction commits. Events of one key reach Kafka in the order their transactions
    committed. On PostgreSQL, the transaction holds a lock on each key it added events of
    until it ends: writers of one key wait for each other.

    Args:
        connection: a SQLAlchemy ``Connection`` or ORM ``Session`` (PostgreSQL or SQLite).
        event: an instance of an ``@eventwire.event`` class.
        topic: overrides the declared topic (then remapped by ``config``, as ``publish``).
        key: overrides the key taken from the event's key field.
        headers: extra record headers, as ``publish``.
        config: the configuration of the publisher whose records to write (encoding,
            CloudEvents source, topic prefix and map); ``None``: the defaults.

    Returns:
        The event's id (its ``ce_id`` header).

    Raises:
        EventValidationError: the event does not match its schema or cannot be encoded (a
            hostile value, a ``key``/``headers``/``topic`` of the wrong type): nothing was
            written, as ``publish`` would refuse it.
        EventDefinitionError: not a declared event.
        PermanentPublishError: the record is larger than ``config``'s
            ``message.max.bytes``, as ``publish`` would say (nothing was written).
        ConfigError: ``topic`` is not a legal Kafka topic name; the database is neither
            PostgreSQL nor SQLite, or the connection is in AUTOCOMMIT mode.
        TypeError: ``connection`` is not a ``Connection`` or ``Session``.
    """
    return add_many(connection, [event], topic=topic, key=key, headers=headers, config=config)[0]


def add_many(
    connection: Connection | Session,
    events: Iterable[Any],
    *,
    topic: str | None = None,
    key: str | bytes | None = None,
    headers: UserHeaders | None = None,
    config: PublisherConfig | None = None,
) -> list[str]:
    """Write ``events`` to the outbox table in the caller's open transaction, in order.

    As ``add``, for several events: every event is validated before any row is written, and
    the key locks (PostgreSQL) are taken in one statement, in a fixed order.

    Returns:
        The events' ids, in order.

    Raises:
        TypeError: ``events`` is one event or not an iterable of events (as
            ``publish_many``); the rest as ``add``, for the first event refused.
    """
    conn = connection.connection() if isinstance(connection, Session) else connection
    if not isinstance(conn, Connection):
        raise TypeError(
            f"outbox.add takes a SQLAlchemy Connection or Session, not {type(connection).__name__}"
            " (use add_async for AsyncConnection and AsyncSession)"
        )
    encoded = _encode_all(events, topic, key, headers, config)
    _refuse_autocommit(conn)
    lock = _lock_statement(conn, encoded)
    if not encoded:
        return []
    if lock is not None:
        conn.execute(lock)
    now = time.time()
    conn.execute(insert(outbox_table), [_row(e, now) for e in encoded])
    return [e.event_id for e in encoded]


async def add_async(
    connection: AsyncConnection | AsyncSession,
    event: Any,
    *,
    topic: str | None = None,
    key: str | bytes | None = None,
    headers: UserHeaders | None = None,
    config: PublisherConfig | None = None,
) -> str:
    """``add`` for SQLAlchemy's asyncio ``AsyncConnection`` or ``AsyncSession``.

    Arguments, result and errors are those of ``add``.
    """
    ids = await add_many_async(
        connection, [event], topic=topic, key=key, headers=headers, config=config
    )
    return ids[0]


async def add_many_async(
    connection: AsyncConnection | AsyncSession,
    events: Iterable[Any],
    *,
    topic: str | None = None,
    key: str | bytes | None = None,
    headers: UserHeaders | None = None,
    config: PublisherConfig | None = None,
) -> list[str]:
    """``add_many`` for SQLAlchemy's asyncio ``AsyncConnection`` or ``AsyncSession``."""
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(connection, AsyncSession):
        conn = await connection.connection()
    elif isinstance(connection, AsyncConnection):
        conn = connection
    else:
        raise TypeError(
            "outbox.add_async takes a SQLAlchemy AsyncConnection or AsyncSession, not"
            f" {type(connection).__name__} (use add for Connection and Session)"
        )
    encoded = _encode_all(events, topic, key, headers, config)
    _refuse_autocommit(conn.sync_connection)  # type: ignore[arg-type]
    lock = _lock_statement(conn.sync_connection, encoded)  # type: ignore[arg-type]
    if not encoded:
        return []
    if lock is not None:
        await conn.execute(lock)
    now = time.time()
    await conn.execute(insert(outbox_table), [_row(e, now) for e in encoded])
    return [e.event_id for e in encoded]
