"""The relay with a ``transactional_id``: each fetched batch of rows in one Kafka transaction.

The rows go through the public transaction API (``publisher.transaction()``,
``tx.publish_many``) as the records ``add`` encoded (``EncodedEvent``: the same bytes and
``ce_id``), and are deleted, fenced by the lease, once the transaction committed. A batch is
all or nothing for ``read_committed`` consumers; a transaction that fails leaves its rows in
the table, and the next term of the lease publishes them again. Replicas share the
``transactional_id``: a new holder's producer fences the old one in Kafka too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

from eventwire._config import PublisherConfig
from eventwire._logs import log as _log
from eventwire._sync_publisher import Publisher
from eventwire.outbox._stats import Latencies
from eventwire.outbox._store import OutboxStore
from eventwire.transactions import TransactionError

_TICK: Final = 0.05


class BatchRelay:
    """Publishes the rows ``store`` fetches, one transaction per fetch, while the lease
    is held."""

    def __init__(
        self,
        config: PublisherConfig,
        store: OutboxStore,
        latencies: Latencies,
        stop: threading.Event,
    ) -> None:
        self._store = store
        self._latencies = latencies
        self._stop = stop
        self._publisher = Publisher(config)

    def serve(self, *, once: bool, renew: Callable[[], bool]) -> bool:
        """Publish batches until stopped (True), done with ``once`` (True), or the lease or
        a transaction was lost (False: stand by, then start a new term).

        Raises:
            TransactionError: with ``once``, a transaction failed (its rows stay).
        """
        store = self._store
        while not self._stop.is_set():
            if store.lost or not store.lease.held() or not renew():
                return False
            rows = store.fetch()
            if not rows:
                if once and store.idle:
                    return True
                self._stop.wait(_TICK)
                continue
            try:
                with self._publisher.transaction() as tx:
                    tx.publish_many([row.encoded for row in rows])
            except TransactionError as exc:
                if once:
                    raise
                _log.warning(
                    "eventwire.outbox_transaction_failed",
                    rows=len(rows),
                    error_class=type(exc).__name__,
                    error=str(exc),
                )
                return False  # the rows stay; a new term fetches them again
            for row in rows:
                self._latencies.delivered(row.accepted_at or 0.0)
            store.commit((), [(row.seq, row.seq) for row in rows])
        return True

    def close(self, timeout: float) -> None:
        """Close the producer (an open transaction is aborted)."""
        self._publisher.close(timeout)
