"""Order extraction with a transactional outbox: each order is stored and its event added in
one database transaction; the relay publishes the events.

The same domain, gateway and message translator as ``examples.order_extraction``; what
changes is the use case's last step. Instead of publishing (a dual write: the order could be
saved and its event lost, or the reverse), ``StoreOrdersUseCase`` saves each order in the
service's own ``orders`` table and adds its ``OrderExtracted`` event to the outbox **in the
same transaction** (``eventwire.outbox.add``): both commit or neither does. An order already
stored is skipped, with its event: running the extraction twice publishes nothing twice.
``OutboxRelay`` then publishes what was committed, in commit order per order id.

Run it: ``python -m examples.order_extraction_outbox --bootstrap-servers HOST:PORT
[--database-url sqlite:///orders.db] [--orders-file ...] [--since ...]`` (stores the orders,
then runs the relay once; in a service the relay runs on its own, ``eventwire relay``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    insert,
    select,
)
from sqlalchemy.engine import Connection

import eventwire
from eventwire import outbox
from examples import _common
from examples.order_extraction import (
    FIXTURE,
    Order,
    OrderGateway,
    OrderMessageTranslator,
    ShopifyOrderGateway,
)

# -- the service's own table -------------------------------------------------------------------

service_tables = MetaData()
orders_table = Table(
    "orders",
    service_tables,
    Column("order_id", String(40), primary_key=True),
    Column("number", String(40), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Numeric(12, 2), nullable=False),
)


class OrderRepository:
    """Orders in the ``orders`` table, written inside the caller's transaction."""

    def exists(self, conn: Connection, order_id: str) -> bool:
        query = select(orders_table.c.order_id).where(orders_table.c.order_id == order_id)
        return conn.execute(query).first() is not None

    def add(self, conn: Connection, order: Order) -> None:
        conn.execute(
            insert(orders_table).values(
                order_id=order.order_id,
                number=order.number,
                placed_at=order.placed_at,
                currency=order.currency,
                total=order.total.amount,
            )
        )


# -- use case ----------------------------------------------------------------------------------


class StoreOrdersUseCase:
    """Store new orders and add their events to the outbox, one transaction per order."""

    def __init__(
        self,
        gateway: OrderGateway,
        engine: Engine,
        config: eventwire.PublisherConfig,
        translator: OrderMessageTranslator | None = None,
    ) -> None:
        self._gateway = gateway
        self._engine = engine
        self._config = config
        self._orders = OrderRepository()
        self._translator = translator or OrderMessageTranslator()

    def execute(self, *, since: dt.datetime | None = None) -> int:
        """Store every order placed since ``since`` that is not stored yet; returns how many
        were stored (each with its event in the outbox).

        Raises:
            eventwire.EventValidationError: an order's message breaks the schema; that
                order's transaction is rolled back (nothing stored, nothing published), the
                orders before it stay stored.
        """
        stored = 0
        for order in self._gateway.fetch_orders(since=since):
            message = self._translator.to_message(order)  # validated by add(), in the txn
            with self._engine.begin() as conn:
                if self._orders.exists(conn, order.order_id):
                    continue
                self._orders.add(conn, order)
                outbox.add(conn, message, config=self._config)
            stored += 1
        return stored


# -- wiring ------------------------------------------------------------------------------------


def prepare(database_url: str) -> Engine:
    """The service's engine, with its own tables and the outbox's created."""
    engine = create_engine(database_url)
    service_tables.create_all(engine)
    outbox.create_tables(engine)
    return engine


def run(
    config: eventwire.PublisherConfig,
    database_url: str,
    *,
    source: Path = FIXTURE,
    since: dt.datetime | None = None,
) -> tuple[int, int]:
    """Store the orders, then publish the outbox once; returns (stored, published)."""
    engine = prepare(database_url)
    try:
        stored = StoreOrdersUseCase(ShopifyOrderGateway(source), engine, config).execute(
            since=since
        )
    finally:
        engine.dispose()
    report = outbox.OutboxRelay(database_url, config).run(once=True)
    print(f"stored {stored} orders; the relay published {report.published} events")
    return stored, report.published


def main(argv: Sequence[str] | None = None) -> None:
    parser = _common.parser(__doc__)
    parser.add_argument(
        "--database-url", default="sqlite:///orders.db", help="SQLAlchemy URL (SQLite file)"
    )
    parser.add_argument("--orders-file", type=Path, default=FIXTURE, help="Shopify orders JSON")
    parser.add_argument(
        "--since", type=dt.datetime.fromisoformat, default=None, help="ISO time with offset"
    )
    args = parser.parse_args(argv)
    run(_common.config(args), args.database_url, source=args.orders_file, since=args.since)


if __name__ == "__main__":
    main()
