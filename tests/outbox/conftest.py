"""The outbox's tests: every test that touches a database runs on SQLite and on PostgreSQL
(the session's `LocalPostgres`, a database of its own per test)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import Engine, create_engine, func, select

import eventwire
from eventwire import outbox
from eventwire.testing import ConsumedRecord, LocalBroker, LocalPostgres

DATABASES = ("sqlite", "postgresql")


@eventwire.event(topic="orders", key="order_id", type="test.outbox.order_placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    seq: int
    total: Decimal = Decimal("9.99")


@dataclass
class Database:
    """One test's database: its URL, an engine for the test's writers, the outbox tables."""

    kind: str
    url: str
    engine: Engine

    def rows(self) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(outbox.outbox_table))
            return int(count.scalar_one())

    def add_then_fail(
        self, events: list[Any], config: eventwire.PublisherConfig | None = None
    ) -> None:
        """A business transaction that adds ``events``, then fails (rolled back)."""
        with self.engine.begin() as conn:
            outbox.add_many(conn, events, config=config)
            raise RuntimeError("the business transaction fails")


def database_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    server: LocalPostgres = request.getfixturevalue("eventwire_postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


def writer_engine(url: str, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 60.0}, pool_size=pool_size)
    return create_engine(url, pool_size=pool_size)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    kind = str(request.param)
    url = database_url(kind, request, tmp_path)
    engine = writer_engine(url)
    outbox.create_tables(engine)
    yield Database(kind, url, engine)
    engine.dispose()


@dataclass
class Kafka:
    """A fresh topic on the session's Tansu, and the relay's config publishing to it."""

    broker: LocalBroker
    topic: str

    def config(self, **settings: object) -> eventwire.PublisherConfig:
        return eventwire.PublisherConfig(
            bootstrap_servers=self.broker.bootstrap_servers,
            topic_map={"orders": self.topic},
            **settings,  # type: ignore[arg-type]
        )


@pytest.fixture
def kafka(eventwire_broker: LocalBroker) -> Kafka:
    topic = eventwire_broker.unique_topic("outbox", partitions=3)
    return Kafka(eventwire_broker, topic)


def seqs_by_key(records: list[ConsumedRecord]) -> dict[bytes | None, list[int]]:
    """Each key's ``seq`` values in the order they arrived."""
    found: dict[bytes | None, list[int]] = defaultdict(list)
    for record in records:
        assert record.value is not None
        found[record.key].append(msgspec.json.decode(record.value)["seq"])
    return dict(found)
