"""examples/monitored_publisher.py: orders delivered (consumed back), /healthz ready, metrics
recorded by value."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

import msgspec

from eventwire.testing import LocalBroker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monitored_publisher.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("monitored_publisher", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


async def test_monitored_publisher_delivers_and_reports(eventwire_broker: LocalBroker) -> None:
    prefix = f"ex{uuid.uuid4().hex[:8]}."
    topic = eventwire_broker.create_topic(prefix + "orders", 3)
    example = _load()
    result = await example.publish_monitored(
        eventwire_broker.bootstrap_servers, 40, topic_prefix=prefix
    )
    assert len(result.receipts) == 40
    assert result.ready_status == 200
    assert result.health["ready"] is True
    assert result.health["broker_reachable"] is True
    assert result.metrics[f"messaging.client.sent.messages [{topic}]"] == 40
    # One duration point per publish_many call and topic (docs/observability.md, Metrics).
    assert result.metrics[f"messaging.client.operation.duration [{topic}]"] == 1
    assert result.metrics["eventwire.publisher.outstanding"] == 0

    records = eventwire_broker.consume(topic, count=40)
    assert len(records) == 40
    ids = {record.header("ce_id") for record in records}
    assert ids == {receipt.event_id.encode() for receipt in result.receipts}
    orders = sorted(msgspec.json.decode(r.value or b"")["order_id"] for r in records)
    assert orders == [f"ord-{n:05d}" for n in range(40)]
