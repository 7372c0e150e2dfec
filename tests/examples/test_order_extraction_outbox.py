from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import create_engine, func, select

import eventwire
from eventwire import outbox
from eventwire.testing import LocalPostgres
from examples import order_extraction as direct
from examples import order_extraction_outbox as example
from tests.examples.conftest import ExampleTopics


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'orders.db'}"
    server: LocalPostgres = request.getfixturevalue("eventwire_postgres")
    return server.create_database(f"orders_{tmp_path.name[-8:].replace('-', '_')}")


def count(database_url: str, table: object) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_orders_are_stored_and_their_events_published_through_the_outbox(
    example_topics: ExampleTopics, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main([*example_topics.argv, "--database-url", database_url])
    assert "stored 5 orders; the relay published 5 events" in capsys.readouterr().out
    records = example_topics.consume("orders.extracted", count=5)
    messages = [msgspec.json.decode(r.value or b"", type=direct.OrderExtracted) for r in records]
    assert sorted(m.order_number for m in messages) == ["#1001", "#1002", "#1004", "#1005", "#1006"]
    assert all(r.key == m.order_id.encode() for r, m in zip(records, messages, strict=True))
    assert count(database_url, example.orders_table) == 5
    assert count(database_url, outbox.outbox_table) == 0  # published, then deleted

    # Run again: every order is stored already, so nothing is added and nothing published.
    assert example.run(example_topics.config(), database_url) == (0, 0)


def test_an_order_whose_message_is_invalid_is_neither_stored_nor_published(
    example_topics: ExampleTopics, database_url: str, tmp_path: Path
) -> None:
    payload = json.loads(example.FIXTURE.read_text())
    payload["orders"][1]["line_items"][0]["sku"] = ""  # the message schema wants a SKU
    broken = tmp_path / "orders.json"
    broken.write_text(json.dumps(payload))
    engine = example.prepare(database_url)
    try:
        use_case = example.StoreOrdersUseCase(
            example.ShopifyOrderGateway(broken), engine, example_topics.config()
        )
        with pytest.raises(eventwire.EventValidationError, match=r"line_items\[0\].sku"):
            use_case.execute()
    finally:
        engine.dispose()
    # The order before it committed with its event; the broken one left nothing behind.
    assert count(database_url, example.orders_table) == 1
    assert count(database_url, outbox.outbox_table) == 1
    report = outbox.OutboxRelay(database_url, example_topics.config()).run(once=True)
    assert report.published == 1
