"""``OutboxRelay``: publishes committed outbox rows to Kafka while it holds the lease.

The publishing is the durable spool's: a ``Publisher`` whose relay (``_durable.relay``) has
the outbox table as its store. Its writer thread fetches rows (``OutboxStore.fetch``: commit
order per key), produces them through the producer core (retries, parking behind a failed
row of the same key, the circuit breaker, dead-lettering: everything ``publish`` does), and
deletes each row after Kafka acknowledged it. This module adds what a relay of a *shared*
table needs: the lease (one active relay per group, takeover after it lapses), the renewal,
wake-ups on PostgreSQL notifications, ``--once`` runs, and the figures.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import metrics
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from eventwire._config import PublisherConfig
from eventwire._core.transport import TransportFactory
from eventwire._durable.relay import Relay
from eventwire._durable.store import Store
from eventwire._errors import ConfigError
from eventwire._logs import log as _log
from eventwire._sync_publisher import Publisher
from eventwire._telemetry.instrumentation import _metrics_off
from eventwire.outbox._batches import BatchRelay
from eventwire.outbox._lease import Lease
from eventwire.outbox._notify import Listener
from eventwire.outbox._stats import Latencies, OutboxStats, instruments_for
from eventwire.outbox._store import OutboxStore
from eventwire.outbox._table import check_dialect

#: Seconds between checks of the relay's state while it publishes (stop, lease, --once).
_TICK: Final = 0.05
#: Longest wait of a standby relay between two looks at the lease.
_STANDBY_CHECK: Final = 1.0
#: Longest wait before trying the database again after it failed.
_MAX_BACKOFF: Final = 5.0


@dataclass(frozen=True, slots=True)
class RelayReport:
    """What one ``OutboxRelay.run`` did.

    Attributes:
        published: rows Kafka acknowledged.
        deleted: rows deleted after their acknowledgement.
        left: rows in the table when it returned (as last counted; ``None`` if never).
        terms: times it took the lease.
        held_by: with ``once``, the relay that held the lease, when this one returned
            without taking it (that relay publishes the rows); else ``None``.
    """

    published: int
    deleted: int
    left: int | None
    terms: int
    held_by: str | None = None


class _RelayPublisher(Publisher):
    """A ``Publisher`` whose durable store is the outbox table."""

    def __init__(
        self, config: PublisherConfig, store: OutboxStore, transport: TransportFactory | None
    ) -> None:
        self._outbox_store = store
        super().__init__(config, transport=transport)

    def _open_store(self, config: PublisherConfig) -> Store | None:
        return self._outbox_store


def relay_engine(url: str) -> Engine:
    """An engine for the relay's own connections.

    SQLite: WAL mode (readers and the writer do not block each other), a busy timeout,
    ``BEGIN IMMEDIATE`` for transactions that write (a deferred one could fail to upgrade),
    and ``synchronous=NORMAL`` for the relay's own commits.
    """
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite")):
        raise ConfigError("the outbox relay needs a database file, not an in-memory SQLite")
    check_dialect(make_url(url).get_backend_name())  # before create_engine imports a driver
    engine = create_engine(url, pool_size=4, connect_args=_connect_args(url))
    if engine.dialect.name == "sqlite":
        _sqlite_transactions(engine)
    return engine


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 30.0} if url.startswith("sqlite") else {}


def _sqlite_transactions(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # The relay's own commits only delete published rows and move the lease: one lost to
        # a power failure means a row published again (at least once holds), so they need
        # not wait for fsync. The writers' commits keep their own setting.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OutboxRelay:
    """Publishes the outbox table's committed rows to Kafka, in commit order per key.

    Run one or more per table (replicas): they share a lease named ``name``; one publishes,
    the others stand by and take over within ``lease_ttl`` seconds after the holder died (at
    once after it stopped cleanly). A row is deleted after Kafka acknowledged it: a relay
    killed in between publishes it again when it (or another) takes over — at least once,
    duplicates countable by ``ce_id``.

    Example::

        relay = OutboxRelay("postgresql+psycopg://app@db/app", PublisherConfig(...))
        threading.Thread(target=relay.run).start()
        ...
        relay.stop()

    Args:
        database: a SQLAlchemy URL or ``Engine`` (PostgreSQL or SQLite); the relay makes its
            own connections from it.
        config: the publisher configuration (brokers, preset, retry, breaker, dead letter,
            telemetry); ``spool_path`` must be ``None``: the table is the durable store.
            With a ``transactional_id``, each fetched batch (up to ``max_in_flight`` rows)
            is published in one Kafka transaction and deleted after the commit.
        name: the lease's name; relays of one table with the same name are replicas.
        poll_interval: seconds between queries when no notification comes. With PostgreSQL
            and psycopg, ``LISTEN`` wakes the relay at each commit; polling is the safety net.
        max_in_flight: most rows handed to the producer and not yet deleted.
        lease_ttl: seconds a lease lasts unless renewed (renewed every third of it); bounds
            the takeover after a holder dies.
        close_timeout: seconds a stopping relay waits for rows in flight before leaving them
            to the next holder.
        listen: wake on PostgreSQL notifications (psycopg only).
        transport: the publisher's transport factory (tests).

    Raises:
        ConfigError: a spool is configured, a bound is out of range, or the database is
            neither PostgreSQL nor SQLite.
    """

    def __init__(
        self,
        database: str | Engine,
        config: PublisherConfig,
        *,
        name: str = "default",
        poll_interval: float = 1.0,
        max_in_flight: int = 10_000,
        lease_ttl: float = 10.0,
        close_timeout: float = 30.0,
        listen: bool = True,
        transport: TransportFactory | None = None,
    ) -> None:
        if not isinstance(config, PublisherConfig):
            raise ConfigError(f"config must be a PublisherConfig, not {type(config).__name__}")
        if config.spool_path is not None:
            raise ConfigError(
                "the outbox relay publishes from the outbox table: spool_path must be None"
            )
        for label, seconds in (
            ("poll_interval", poll_interval),
            ("lease_ttl", lease_ttl),
            ("close_timeout", close_timeout),
        ):
            if not isinstance(seconds, int | float) or not 0 < seconds < 86_400:
                raise ConfigError(
                    f"{label} must be a number of seconds in (0, 86400), got {seconds!r}"
                )
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be an int >= 1, got {max_in_flight!r}")
        if not name or len(name) > 200:
            raise ConfigError(f"name must have 1 to 200 characters, got {name!r}")
        if isinstance(database, Engine) and database.dialect.name == "sqlite":
            # SQLite needs the relay's own transaction set-up (see relay_engine).
            database = database.url.render_as_string(hide_password=False)
        self._owns_engine = isinstance(database, str)
        self._engine = relay_engine(database) if isinstance(database, str) else database
        check_dialect(self._engine.dialect.name)
        self._config = config
        self._poll_interval = float(poll_interval)
        self._max_in_flight = max_in_flight
        self._close_timeout = float(close_timeout)
        self._listen = listen
        self._transport = transport
        self._lease = Lease(name, _holder_id(), float(lease_ttl))
        self._stop = threading.Event()
        self._store: OutboxStore | None = None
        self._deleted_before = 0
        instruments = _instruments(config)
        self._latencies = Latencies(None if instruments is None else instruments.latency)
        if instruments is not None:
            instruments.live.add(self)

    @property
    def holder(self) -> str:
        """This relay's identity in the lease table (host:pid:random)."""
        return self._lease.holder

    def stop(self) -> None:
        """Ask ``run`` to return: it stops fetching, waits up to ``close_timeout`` for rows
        in flight, deletes the acknowledged ones and gives up the lease. Thread-safe, and
        safe in a signal handler (it only sets a flag)."""
        self._stop.set()

    def stats(self) -> OutboxStats:
        """A snapshot of this relay's figures; cheap, any thread."""
        store = self._store
        backlog: int | None = None
        oldest_age = None
        if store is not None:
            count, oldest = store.backlog
            backlog = count
            oldest_age = None if oldest is None else max(0.0, time.time() - oldest)
        p50, p99 = self._latencies.percentiles()
        return OutboxStats(
            lease=self._lease.name,
            lease_held=self._lease.held(),
            epoch=self._lease.epoch,
            backlog=backlog,
            oldest_age=oldest_age,
            in_flight=0 if store is None else store.in_flight,
            published=self._latencies.published,
            deleted=self._deleted_before + (0 if store is None else store.deleted),
            latency_p50=p50,
            latency_p99=p99,
        )

    def run(
        self,
        *,
        once: bool = False,
        progress: Callable[[OutboxStats], object] | None = None,
        progress_interval: float = 1.0,
    ) -> RelayReport:
        """Publish until ``stop()`` (or, with ``once``, until every committed row is
        published and deleted); blocks the calling thread.

        While another relay holds the lease this one stands by. A database failure is
        logged and retried (with ``once``, raised).

        Args:
            once: return when a fetch finds no new row and none is in flight (rows committed
                meanwhile are published too), or at once if a live relay holds the lease.
            progress: called with a ``stats()`` snapshot every ``progress_interval`` seconds.
            progress_interval: seconds between ``progress`` calls.

        Returns:
            What the run did.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: with ``once``, the database failed.
            SpoolError: with ``once``, the relay's writer failed otherwise.
        """
        terms = 0
        backoff = 0.1
        held_by = None
        conn: Connection | None = None
        next_progress = time.monotonic() + progress_interval
        try:
            while not self._stop.is_set():
                try:
                    if conn is None:
                        conn = self._engine.connect()
                    wait = self._lease.acquire(conn)
                    if wait is None:
                        terms += 1
                        backoff = 0.1
                        if self._serve(
                            conn, once=once, progress=progress, interval=progress_interval
                        ):
                            break
                        continue
                    if once:  # a live relay holds the lease: it publishes the rows
                        held_by = self._lease.other
                        break
                    # A standby looks again within a second: a released lease (a clean stop)
                    # is taken over at once, an expired one within lease_ttl + 1 s.
                    self._stop.wait(min(wait + 0.01, self._lease.ttl / 3, _STANDBY_CHECK))
                except SQLAlchemyError as exc:
                    if once:
                        raise
                    _log.warning("eventwire.outbox_database_failed", error=str(exc).splitlines()[0])
                    if conn is not None:
                        conn.close()
                        conn = None
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                if progress is not None and time.monotonic() >= next_progress:
                    progress(self.stats())
                    next_progress = time.monotonic() + progress_interval
        finally:
            if conn is not None:
                try:
                    self._lease.release(conn)
                except SQLAlchemyError as exc:
                    _log.warning("eventwire.outbox_lease_release_failed", error=str(exc))
                conn.close()
            if self._owns_engine:
                self._engine.dispose()  # no connection outlives run(); a next run reconnects
        stats = self.stats()
        return RelayReport(
            published=stats.published,
            deleted=stats.deleted,
            left=stats.backlog,
            terms=terms,
            held_by=held_by,
        )

    def _serve(
        self,
        conn: Connection,
        *,
        once: bool,
        progress: Callable[[OutboxStats], object] | None,
        interval: float,
    ) -> bool:
        """Publish while the lease is held; True when the run is over (stopped, or done with
        ``once``), False to stand by again."""
        lease = self._lease
        store = OutboxStore(
            self._engine,
            lease,
            max_in_flight=self._max_in_flight,
            poll_interval=min(self._poll_interval, 0.1) if once else self._poll_interval,
        )
        if self._store is not None:
            self._deleted_before += self._store.deleted
        self._store = store
        if self._config.transactional_id is not None:
            return self._serve_batches(conn, store, once=once)
        try:
            publisher = _RelayPublisher(self._config, store, self._transport)
        except BaseException:
            store.close()
            raise
        relay = publisher._relay
        assert relay is not None  # noqa: S101 - the store makes one
        relay.on_delivered = self._latencies.delivered
        listener = None
        if self._listen and not Listener.supported(self._engine):
            if self._engine.dialect.name == "postgresql":
                _log.info(
                    "eventwire.outbox_polling_only",
                    driver=self._engine.dialect.driver,
                    reason="LISTEN needs psycopg 3 (postgresql+psycopg://)",
                )
        elif self._listen:

            def notified() -> None:
                store.want()
                relay.wake()

            listener = Listener(self._engine, notified)
            listener.start()
        try:
            finished = self._hold(
                conn, store, relay, once=once, progress=progress, interval=interval
            )
        finally:
            store.fetching = False
            if listener is not None:
                listener.stop()
            publisher.close(self._close_timeout)
        failure = relay.failure
        if failure is not None:
            if once:
                cause = failure.__cause__  # the writer wraps what failed in a SpoolError
                raise cause if isinstance(cause, SQLAlchemyError) else failure
            _log.warning("eventwire.outbox_relay_restarting", error=str(failure))
        return finished

    def _serve_batches(self, conn: Connection, store: OutboxStore, *, once: bool) -> bool:
        """``_serve`` with a ``transactional_id``: one Kafka transaction per fetched batch."""
        try:
            batches = BatchRelay(self._config, store, self._latencies, self._stop)
        except BaseException:
            store.close()
            raise
        listener = None
        if self._listen and Listener.supported(self._engine):
            listener = Listener(self._engine, store.want)
            listener.start()
        renew_at = time.monotonic() + self._lease.ttl / 3

        def renew() -> bool:
            nonlocal renew_at
            now = time.monotonic()
            if now < renew_at:
                return True
            renew_at = now + self._lease.ttl / 3
            try:
                return self._lease.renew(conn)
            except SQLAlchemyError as exc:  # as _hold: held() bounds what follows
                _log.warning("eventwire.outbox_lease_renew_failed", error=str(exc))
                conn.invalidate()
                return True

        try:
            return batches.serve(once=once, renew=renew)
        finally:
            store.fetching = False
            if listener is not None:
                listener.stop()
            batches.close(self._close_timeout)
            store.close()

    def _hold(
        self,
        conn: Connection,
        store: OutboxStore,
        relay: Relay,
        *,
        once: bool,
        progress: Callable[[OutboxStats], object] | None,
        interval: float,
    ) -> bool:
        """Renew the lease while the writer publishes; True when the run is over."""
        lease = self._lease
        renew_at = time.monotonic() + lease.ttl / 3
        next_progress = time.monotonic() + interval
        while True:
            if self._stop.is_set():
                return True
            if store.lost or relay.failure is not None or not lease.held():
                return False
            if once and store.idle and relay.backlog == 0:
                return True
            now = time.monotonic()
            if now >= renew_at:
                try:
                    if not lease.renew(conn):
                        return False
                except SQLAlchemyError as exc:
                    # Keep publishing while the lease is still ours by our own clock:
                    # lease.held() turns False before another relay may take over.
                    _log.warning("eventwire.outbox_lease_renew_failed", error=str(exc))
                    conn.invalidate()
                renew_at = now + lease.ttl / 3
            if progress is not None and now >= next_progress:
                progress(self.stats())
                next_progress = now + interval
            self._stop.wait(_TICK)


def _instruments(config: PublisherConfig) -> Any:
    options = config.telemetry
    if not options.enabled:
        return None
    provider = options.meter_provider or metrics.get_meter_provider()
    return None if _metrics_off(provider) else instruments_for(provider)
