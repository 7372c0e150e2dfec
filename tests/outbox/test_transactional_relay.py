"""``OutboxRelay`` with a ``transactional_id``: each fetched batch in one Kafka transaction, on
Apache Kafka (Tansu shows aborted records to read_committed consumers)."""

from __future__ import annotations

import uuid

import pytest

import eventwire
from eventwire import outbox
from eventwire.testing import KafkaCluster
from tests.outbox.conftest import Database, OrderPlaced, seqs_by_key


def test_batches_in_kafka_transactions_reach_read_committed_consumers_in_order(
    database: Database, kafka_broker: KafkaCluster
) -> None:
    topic = f"outbox-tx-{uuid.uuid4().hex[:10]}"
    kafka_broker.create_topics([topic], 3)
    writer_config = eventwire.PublisherConfig(
        bootstrap_servers=kafka_broker.bootstrap_servers, topic_map={"orders": topic}
    )
    added: list[str] = []
    for first in range(0, 200, 50):
        with database.engine.begin() as conn:
            events = [OrderPlaced(order_id=f"k{n % 8}", seq=n) for n in range(first, first + 50)]
            added += outbox.add_many(conn, events, config=writer_config)
    with pytest.raises(RuntimeError, match="business transaction fails"):
        database.add_then_fail([OrderPlaced(order_id="k0", seq=999)], writer_config)

    relay_config = eventwire.PublisherConfig(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        transactional_id=f"outbox-relay-{uuid.uuid4().hex[:8]}",
    )
    relay = outbox.OutboxRelay(database.url, relay_config, max_in_flight=60, poll_interval=0.1)
    report = relay.run(once=True)

    assert (report.published, report.deleted, report.left) == (200, 200, 0)
    records = kafka_broker.consume(topic, count=200)
    assert sorted((r.header("ce_id") or b"").decode() for r in records) == sorted(added)
    by_key = seqs_by_key(records)
    assert by_key == {f"k{k}".encode(): list(range(k, 200, 8)) for k in range(8)}
    assert database.rows() == 0
