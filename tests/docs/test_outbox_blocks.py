"""The runners of docs/outbox.md's blocks (``<!-- run: outbox-... -->``): the service's
``orders`` table and event class given, the database and the broker filled in."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

import eventwire
from eventwire.testing import LocalBroker
from tests.docs.test_code_blocks import expected_output, private_topic, run_code, the_block


@eventwire.event(topic="docs.outbox", key="order_id", type="docs.order.stored", version=1)
class StoredOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    total: Decimal


def outbox_namespace(broker: LocalBroker, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """What the outbox blocks take as given: the service's ``orders`` table (created in the
    database the block opens) and its event class."""
    from sqlalchemy import Column, MetaData, Numeric, String, Table, create_engine

    tables = MetaData()
    orders = Table(
        "orders",
        tables,
        Column("order_id", String(40), primary_key=True),
        Column("total", Numeric(12, 2)),
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    tables.create_all(engine)
    engine.dispose()
    topic = private_topic(broker)
    return {"orders": orders, "OrderPlaced": StoredOrder}, topic


def outbox_replacements(broker: LocalBroker, topic: str, tmp_path: Path) -> dict[str, str]:
    return {
        '"sqlite:///app.db"': repr(f"sqlite:///{tmp_path / 'app.db'}"),
    }


def run_outbox_add(broker: LocalBroker, tmp_path: Path) -> tuple[dict[str, Any], str]:
    namespace, topic = outbox_namespace(broker, tmp_path)
    replace = outbox_replacements(broker, topic, tmp_path)
    replace['bootstrap_servers="localhost:9092"'] = (
        f"bootstrap_servers={broker.bootstrap_servers!r}, topic_map={{'docs.outbox': {topic!r}}}"
    )
    run_code(the_block("outbox-add").text, namespace, replace=replace)
    return namespace, topic


def test_outbox_add(eventwire_broker: LocalBroker, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, select

    from eventwire import outbox

    namespace, _ = run_outbox_add(eventwire_broker, tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with engine.connect() as conn:
            [row] = conn.execute(select(outbox.outbox_table)).all()
            [order] = conn.execute(select(namespace["orders"])).all()
    finally:
        engine.dispose()
    assert row.key == b"ord-1"
    assert row.event_type == "docs.order.stored"
    assert order.order_id == "ord-1"  # both in the one transaction


def test_outbox_relay(eventwire_broker: LocalBroker, tmp_path: Path) -> None:
    namespace, topic = run_outbox_add(eventwire_broker, tmp_path)
    block = the_block("outbox-relay")
    printed = run_code(
        block.text, namespace, replace=outbox_replacements(eventwire_broker, topic, tmp_path)
    )
    assert printed == expected_output(block)
    [record] = eventwire_broker.consume(topic, count=1)
    assert record.key == b"ord-1"
    assert msgspec.json.decode(record.value or b"") == {"order_id": "ord-1", "total": "38.80"}


OUTBOX_RUNNERS: dict[str, Callable[..., None]] = {
    "outbox-add": test_outbox_add,
    "outbox-relay": test_outbox_relay,
}
