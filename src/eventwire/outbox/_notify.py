"""PostgreSQL ``LISTEN``: wakes the relay when a writer commits rows (the table's trigger
sends ``NOTIFY eventwire_outbox``), so it need not poll often.

A thread of its own, on a connection of its own (a listening connection must not sit inside
a transaction). Polling stays on as the safety net: a notification lost while the listener
reconnects only delays rows until the next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy.engine import Engine

from eventwire._logs import log as _log
from eventwire.outbox._table import CHANNEL

#: Seconds between checks of the stop flag while no notification comes.
_WAIT: Final = 0.5
#: Seconds before reconnecting after the listening connection failed.
_RECONNECT: Final = 1.0


class Listener:
    """Calls ``on_notify`` for each notification on the outbox channel, until ``stop``."""

    def __init__(self, engine: Engine, on_notify: Callable[[], object]) -> None:
        self._engine = engine
        self._on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="eventwire-outbox-listen", daemon=True
        )

    @staticmethod
    def supported(engine: Engine) -> bool:
        """Whether the engine's driver can listen here (psycopg 3)."""
        return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # noqa: BLE001 - polling covers the gap; reconnect
                _log.warning("eventwire.outbox_listen_failed", error=str(exc))
                self._stop.wait(_RECONNECT)

    def _listen(self) -> None:
        raw = self._engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
            # A commit may have happened while we were not listening yet.
            self._on_notify()
            while not self._stop.is_set():
                # Each call is cheap (a flag and a wake-up): no batching delay before it.
                for _ in conn.notifies(timeout=_WAIT):
                    self._on_notify()
                    if self._stop.is_set():
                        break
        finally:
            # Never back to the pool: it listens.
            try:
                raw.driver_connection.close()  # type: ignore[union-attr]
            finally:
                raw.invalidate()
