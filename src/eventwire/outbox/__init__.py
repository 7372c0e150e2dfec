"""The transactional outbox: an event is published if and only if the database transaction
that added it commits.

``add`` writes the event (validated and encoded exactly as ``publish`` would) into the
``eventwire_outbox`` table inside the caller's transaction; ``OutboxRelay`` publishes the
committed rows, in commit order per key, and deletes them once Kafka acknowledged them.
PostgreSQL and SQLite; needs the ``outbox`` extra (``pip install 'eventwire[outbox]'``).

Example::

    with engine.begin() as conn:
        conn.execute(insert(orders).values(...))
        eventwire.outbox.add(conn, OrderPlaced(...))
"""

from eventwire.outbox._relay import OutboxRelay, RelayReport
from eventwire.outbox._stats import OutboxStats
from eventwire.outbox._table import (
    CHANNEL,
    LEASE_TABLE_NAME,
    TABLE_NAME,
    create_tables,
    lease_table,
    metadata,
    outbox_table,
    schema_ddl,
)
from eventwire.outbox._writer import add, add_async, add_many, add_many_async

__all__ = [
    "CHANNEL",
    "LEASE_TABLE_NAME",
    "TABLE_NAME",
    "OutboxRelay",
    "OutboxStats",
    "RelayReport",
    "add",
    "add_async",
    "add_many",
    "add_many_async",
    "create_tables",
    "lease_table",
    "metadata",
    "outbox_table",
    "schema_ddl",
]
