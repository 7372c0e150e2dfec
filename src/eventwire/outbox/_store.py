"""The outbox table as the relay's store: rows fetched in commit order per key, deleted once
Kafka acknowledged them, under the lease's fence.

Why fetching is not ``WHERE id > last``: ids are drawn at insert, not at commit, so a row of
one key may commit after rows of *other* keys with higher ids (its transaction was slower).
Within one key, id order is commit order (see ``_writer``), so the store fetches in id order
but never skips a row: it remembers ``high``, the highest id handed to the relay, and the ids
handed over and not deleted yet (``known``). Each fetch, in one snapshot (REPEATABLE READ on
PostgreSQL), counts the rows with ``id <= high``; more than ``known`` means rows committed late
("late rows"), which are fetched by id; then the next rows above ``high``, in id order. A late
row never has a key whose later row was already handed over: that later row's transaction
started inserting only after the late row's transaction had ended, so the late row was
visible to the fetch that found the later one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec
from sqlalchemy import ARRAY, BigInteger, Row, any_, bindparam, delete, func, select
from sqlalchemy.engine import Engine

from eventwire._codec import EncodedEvent, Headers
from eventwire._durable.store import StoredEvent
from eventwire._logs import log as _log
from eventwire.outbox._lease import Lease, LeaseLostError
from eventwire.outbox._table import outbox_table

_decode_headers: Final = msgspec.msgpack.Decoder().decode
#: Most ids in one ``IN (...)`` list.
_ID_CHUNK: Final = 500
#: Most ids one delete statement names.
_DELETE_CHUNK: Final = 5000
# SQLite: one statement run for many ids (executemany), prepared once.
_DELETE_ONE: Final = delete(outbox_table).where(outbox_table.c.id == bindparam("id"))
# PostgreSQL: one array parameter instead of thousands (each rendered with its cast).
_DELETE_ANY: Final = delete(outbox_table).where(
    outbox_table.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))
)
_COLUMNS: Final = (
    outbox_table.c.id,
    outbox_table.c.topic,
    outbox_table.c.key,
    outbox_table.c.value,
    outbox_table.c.headers,
    outbox_table.c.event_id,
    outbox_table.c.event_type,
    outbox_table.c.created_at,
)


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """A fetched row (columns in ``_COLUMNS`` order) as the relay's stored event."""
    row_id, topic, key, value, stored, event_id, event_type, created_at = row
    raw = _decode_headers(stored)
    headers: Headers = raw if type(raw) is dict else [tuple(pair) for pair in raw]
    return StoredEvent(
        row_id, created_at, EncodedEvent(topic, key, value, headers, event_id, event_type)
    )


class OutboxStore:
    """What the spool's relay needs of a store (``Store``), plus ``fetch`` (``Source``).

    Every method runs on the relay's writer thread, on this store's own connections.
    """

    def __init__(
        self,
        engine: Engine,
        lease: Lease,
        *,
        max_in_flight: int,
        poll_interval: float,
        stats_interval: float = 1.0,
    ) -> None:
        self.lease = lease
        self._engine = engine
        self._dialect = engine.dialect.name
        self._read = engine.connect()
        if self._dialect == "postgresql":
            self._read = self._read.execution_options(isolation_level="REPEATABLE READ")
        self._write = engine.connect()
        self._max_in_flight = max_in_flight
        self._poll_interval = poll_interval
        self._stats_interval = stats_interval
        self._known: set[int] = set()
        self._high = 0
        self._next_poll = 0.0
        self._more = True  # rows may be waiting: fetch at once
        self._wanted = threading.Event()
        self._closed = False
        #: Set when the relay stops taking rows (closing); rows handed over still finish.
        self.fetching = True
        #: Set when a delete found the lease taken over: the relay must stop.
        self.lost = False
        #: Rows deleted after their acknowledgement, over this store's life.
        self.deleted = 0
        #: ``(rows in the table, created_at of the oldest)`` as last counted, and when.
        self.backlog: tuple[int, float | None] = (0, None)
        self._counted_at = 0.0
        #: Whether the last fetch found nothing to hand over and nothing was in flight.
        self.idle = False
        self.on_fetch: Callable[[int], None] | None = None

    @property
    def name(self) -> str:
        return f"outbox table {outbox_table.name} ({self._engine.url.render_as_string()})"

    @property
    def in_flight(self) -> int:
        """Rows handed to the relay and not deleted yet."""
        return len(self._known)

    def want(self) -> None:
        """Fetch at the next turn (a notification came): thread-safe."""
        self._wanted.set()

    def load(self) -> list[StoredEvent]:
        """Nothing is replayed: the first fetch finds every committed row."""
        return []

    def fetch(self) -> list[StoredEvent]:
        """The rows to hand to the relay now, in order: late rows, then new ones by id.
        Queries the table only when a fetch is due (woken, polled, or rows were left over)."""
        now = time.monotonic()
        if now - self._counted_at >= self._stats_interval:
            self._count()
        if not self.fetching or self.lost or not self.lease.held():
            return []
        room = self._max_in_flight - len(self._known)
        if room <= 0:
            return []
        if not (self._more or self._wanted.is_set() or now >= self._next_poll):
            return []
        self._wanted.clear()
        self._next_poll = now + self._poll_interval
        rows = self._query(room)
        self._more = len(rows) >= room
        self.idle = not rows and not self._known
        for stored in rows:
            self._known.add(stored.seq)
            self._high = max(self._high, stored.seq)
        if rows and self.on_fetch is not None:
            self.on_fetch(len(rows))
        return rows

    def _query(self, room: int) -> list[StoredEvent]:
        conn = self._read
        table = outbox_table
        with conn.begin():
            late: list[Row[Any]] = []
            high = self._high
            if high:
                below = conn.execute(select(func.count()).where(table.c.id <= high)).scalar_one()
                if below != len(self._known):
                    # Rows committed late, or (fewer) rows deleted by someone else.
                    ids = set(conn.execute(select(table.c.id).where(table.c.id <= high)).scalars())
                    self._known &= ids
                    missing = sorted(ids - self._known)
                    for first in range(0, len(missing), _ID_CHUNK):
                        chunk = missing[first : first + _ID_CHUNK]
                        late.extend(conn.execute(select(*_COLUMNS).where(table.c.id.in_(chunk))))
                    late.sort(key=lambda row: int(row[0]))
            fresh = conn.execute(
                select(*_COLUMNS).where(table.c.id > high).order_by(table.c.id).limit(room)
            ).all()
        if late:
            _log.info("eventwire.outbox_late_rows", rows=len(late), below=high)
        return [stored_event(row) for row in (*late, *fresh)]

    def _count(self) -> None:
        conn = self._read
        with conn.begin():
            count = conn.execute(select(func.count()).select_from(outbox_table)).scalar_one()
            oldest = conn.execute(
                select(outbox_table.c.created_at).order_by(outbox_table.c.id).limit(1)
            ).scalar_one_or_none()
        self.backlog = (int(count), None if oldest is None else float(oldest))
        self._counted_at = time.monotonic()

    def commit(self, added: Sequence[StoredEvent], done: Sequence[tuple[int, int]]) -> None:
        """Delete the ``(first, last)`` id ranges of ``done``, fenced by the lease; nothing
        is ever added through the relay (``added`` is empty)."""
        if not done or self.lost:
            return
        conn = self._write
        # Acks of several partitions interleave, so the ranges are short: one statement per
        # chunk of ids, not one per range (measured: 37 us of CPU per row with ranges).
        ids = [row_id for first, last in done for row_id in range(first, last + 1)]
        try:
            with conn.begin():
                self.lease.fence(conn)
                if self._dialect == "postgresql":
                    for start in range(0, len(ids), _DELETE_CHUNK):
                        conn.execute(_DELETE_ANY, {"ids": ids[start : start + _DELETE_CHUNK]})
                else:
                    conn.execute(_DELETE_ONE, [{"id": row_id} for row_id in ids])
        except LeaseLostError:
            self.lost = True
            _log.warning(
                "eventwire.outbox_fenced",
                lease=self.lease.name,
                holder=self.lease.holder,
                rows=sum(last - first + 1 for first, last in done),
            )
            return
        self._known.difference_update(ids)
        self.deleted += len(ids)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._count()  # the figures a stopped relay reports
        except Exception as exc:  # noqa: BLE001 - a failed database is reported elsewhere
            _log.info("eventwire.outbox_count_failed", error=str(exc))
        for conn in (self._read, self._write):
            try:
                conn.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken connection must not raise
                _log.warning("eventwire.outbox_close_failed", error=str(exc))
