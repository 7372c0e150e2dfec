"""``eventwire outbox init|schema`` and ``eventwire relay``: the transactional outbox's tables
and its relay, from the command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType, ModuleType
from typing import TYPE_CHECKING

from eventwire._cli.errors import INTERRUPTED, OK, CliError

if TYPE_CHECKING:
    from eventwire.outbox import OutboxStats


def _outbox() -> ModuleType:
    try:
        import sqlalchemy  # noqa: F401 - the extra's presence, checked with a clear message

        import eventwire.outbox
    except ModuleNotFoundError as exc:
        raise CliError(
            f"the outbox needs SQLAlchemy ({exc.name} is missing): pip install 'eventwire[outbox]'"
        ) from None
    return eventwire.outbox


def _database_error(url: str, exc: Exception) -> CliError:
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as the parser saw nothing
        shown = "(unparsable URL)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CliError(f"database {shown}: {first}")


def run_outbox(action: str, args: argparse.Namespace) -> int:
    """``outbox init`` creates the tables; ``outbox schema`` prints their DDL."""
    outbox = _outbox()
    if action == "schema":
        sys.stdout.write(outbox.schema_ddl(args.dialect))
        return OK
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from eventwire.outbox._table import check_dialect

    try:
        check_dialect(make_url(args.database_url).get_backend_name())
        engine = create_engine(args.database_url)
        try:
            outbox.create_tables(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, ArgumentError) as exc:
        raise _database_error(args.database_url, exc) from None
    sys.stderr.write(f"outbox tables ready: {outbox.TABLE_NAME}, {outbox.LEASE_TABLE_NAME}\n")
    return OK


def run_relay(
    *,
    database_url: str,
    bootstrap_servers: str | None,
    once: bool,
    name: str,
    poll_interval: float,
    lease_ttl: float,
    max_in_flight: int,
    preset: str,
    show_progress: bool,
    transactional_id: str | None = None,
    config_file: str | None = None,
    connect_timeout: float = 10.0,
) -> int:
    """Run the relay until SIGINT/SIGTERM (or, with ``once``, until the table is empty).

    The cluster and its security come as for ``produce``: ``bootstrap_servers``, else
    ``$EVENTWIRE_BOOTSTRAP_SERVERS``, else the ``bootstrap.servers`` of ``config_file``
    (``_cli.connection``).

    With ``once`` it fails in one line when no broker answers within ``connect_timeout`` (or
    the cluster refuses this client); serving, it waits for the cluster as a publisher does.

    A first signal stops it cleanly (rows in flight are waited for, the lease released); a
    second one exits at once with 130.
    """
    outbox = _outbox()
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from eventwire import ConfigError, PublisherConfig
    from eventwire._cli.connection import check_connection, connection_kwargs

    connection = connection_kwargs(config_file, bootstrap_servers, os.environ)
    connection.setdefault("client_id", "eventwire-relay")
    connection["preset"] = preset  # the command's flag says it
    if transactional_id is not None:
        connection["transactional_id"] = transactional_id
    try:
        config = PublisherConfig(**connection)
    except ConfigError as exc:
        raise CliError(f"invalid configuration: {exc}") from None
    try:
        relay = outbox.OutboxRelay(
            database_url,
            config,
            name=name,
            poll_interval=poll_interval,
            lease_ttl=lease_ttl,
            max_in_flight=max_in_flight,
        )
    except (SQLAlchemyError, ArgumentError) as exc:
        raise _database_error(database_url, exc) from None
    if once:
        _check_database(database_url)  # first: what the relay reads
        check_connection(config, timeout=connect_timeout)
    signals = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signals.is_set():
            raise KeyboardInterrupt  # the second signal: no clean stop
        signals.set()
        relay.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = relay.run(once=once, progress=_show_progress if once and show_progress else None)
    except KeyboardInterrupt:
        return INTERRUPTED
    except SQLAlchemyError as exc:
        raise _database_error(database_url, exc) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if report.held_by is not None:
        sys.stderr.write(
            f"relay not started: another relay ({report.held_by}) holds the lease and publishes"
            " the rows\n"
        )
        return OK
    left = "" if report.left is None else f", {report.left} left in the table"
    sys.stderr.write(f"relay stopped: {report.published} published{left}\n")
    return OK


def _show_progress(stats: OutboxStats) -> None:
    backlog = "?" if stats.backlog is None else str(stats.backlog)
    state = "publishing" if stats.lease_held else "waiting for the lease"
    sys.stderr.write(f"relay {state}: {stats.published} published, {backlog} left\n")
    sys.stderr.flush()


def _check_database(database_url: str) -> None:
    """Fail in one line when the database cannot be reached."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(database_url)
    try:
        engine.connect().close()
    except SQLAlchemyError as exc:
        raise _database_error(database_url, exc) from None
    finally:
        engine.dispose()
