"""The relay's lease: one relay of a group publishes; another takes over once it lapses.

One row per group in ``eventwire_outbox_lease``: the holder, an epoch raised by every
takeover, and the expiry in *database* time, so relays on hosts whose clocks differ agree.

* A relay takes the lease when there is no row, when the row has expired, or when the row is
  its own. A takeover raises the epoch.
* The holder renews every ``ttl / 3``. It counts the lease as held until ``ttl - margin``
  after it *sent* the renewal (its own monotonic clock), which is never later than the expiry
  the database recorded: when another relay may take over, the old holder has already
  stopped fetching rows.
* Fencing: every delete of published rows runs in a transaction that first reads the lease
  row, locked (PostgreSQL ``FOR SHARE``; SQLite's write lock), and deletes only if the epoch
  is still the holder's. A stale holder learns it lost the lease and deletes nothing.
"""

from __future__ import annotations

import threading
import time
from typing import Final

from sqlalchemy import ColumnElement, Float, func, insert, literal_column, select, update
from sqlalchemy.engine import Connection

from eventwire._logs import log as _log
from eventwire.outbox._table import lease_table

#: Seconds before the database's expiry at which the holder stops counting on its lease.
MARGIN_SHARE: Final = 0.2


class LeaseLostError(Exception):
    """The lease row no longer carries this relay's epoch: another relay took over."""


def db_now(dialect: str) -> ColumnElement[float]:
    """The database's clock, in epoch seconds."""
    if dialect == "postgresql":
        return func.extract("epoch", func.clock_timestamp()).cast(Float)
    return literal_column("((julianday('now') - 2440587.5) * 86400.0)", Float)


class Lease:
    """This relay's view of its group's lease row."""

    def __init__(self, name: str, holder: str, ttl: float) -> None:
        self.name = name
        self.holder = holder
        self.ttl = ttl
        #: The epoch held, or ``None``.
        self.epoch: int | None = None
        #: The holder found by the last ``acquire`` that did not get the lease.
        self.other: str | None = None
        self._valid_until = 0.0  # monotonic
        self._lock = threading.Lock()

    def held(self) -> bool:
        """Whether this relay may fetch and publish rows now."""
        with self._lock:
            return self.epoch is not None and time.monotonic() < self._valid_until

    def acquire(self, conn: Connection) -> float | None:
        """Take (or renew) the lease in its own transaction.

        Returns:
            ``None`` if held now, else the seconds until the current holder's lease expires.
        """
        sent = time.monotonic()
        now_expr = db_now(conn.dialect.name)
        with conn.begin():
            query = select(
                lease_table.c.holder, lease_table.c.epoch, lease_table.c.expires_at, now_expr
            ).where(lease_table.c.name == self.name)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                now = conn.execute(select(now_expr)).scalar_one()
                epoch = 1
                conn.execute(
                    insert(lease_table).values(
                        name=self.name, holder=self.holder, epoch=epoch, expires_at=now + self.ttl
                    )
                )
            else:
                holder, epoch, expires_at, now = row
                mine = holder == self.holder and epoch == self.epoch
                if not mine and expires_at > now:
                    self.other = str(holder)
                    return float(expires_at - now)
                if not mine:
                    epoch += 1
                conn.execute(
                    update(lease_table)
                    .where(lease_table.c.name == self.name)
                    .values(holder=self.holder, epoch=epoch, expires_at=now + self.ttl)
                )
        with self._lock:
            taken = self.epoch != epoch
            self.epoch = int(epoch)
            self._valid_until = sent + self.ttl * (1 - MARGIN_SHARE)
        if taken:
            _log.info(
                "eventwire.outbox_lease_taken", lease=self.name, holder=self.holder, epoch=epoch
            )
        return None

    def renew(self, conn: Connection) -> bool:
        """Extend the lease; False (and no longer held) if another relay took it over."""
        epoch = self.epoch
        if epoch is None:
            return False
        sent = time.monotonic()
        with conn.begin():
            result = conn.execute(
                update(lease_table)
                .where(
                    lease_table.c.name == self.name,
                    lease_table.c.holder == self.holder,
                    lease_table.c.epoch == epoch,
                )
                .values(expires_at=db_now(conn.dialect.name) + self.ttl)
            )
        with self._lock:
            if result.rowcount != 1:
                self.epoch = None
                _log.warning("eventwire.outbox_lease_lost", lease=self.name, holder=self.holder)
                return False
            self._valid_until = sent + self.ttl * (1 - MARGIN_SHARE)
        return True

    def fence(self, conn: Connection) -> None:
        """Inside the caller's transaction: lock the lease row against a takeover until the
        transaction ends, and check it still carries this relay's epoch.

        Raises:
            LeaseLostError: another relay took over (the caller rolls back).
        """
        query = select(lease_table.c.holder, lease_table.c.epoch).where(
            lease_table.c.name == self.name
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(read=True)
        row = conn.execute(query).first()
        if row is None or row.holder != self.holder or row.epoch != self.epoch:
            with self._lock:
                self.epoch = None
            raise LeaseLostError(self.name)

    def release(self, conn: Connection) -> None:
        """Give the lease up (expire it now) so that a standby takes over at once."""
        epoch = self.epoch
        with self._lock:
            self.epoch = None
        if epoch is None:
            return
        with conn.begin():
            conn.execute(
                update(lease_table)
                .where(
                    lease_table.c.name == self.name,
                    lease_table.c.holder == self.holder,
                    lease_table.c.epoch == epoch,
                )
                .values(expires_at=db_now(conn.dialect.name) - 1.0)
            )

    def drop(self) -> None:
        """Stop counting on the lease (the keeper could not renew it in time)."""
        with self._lock:
            self.epoch = None
