from __future__ import annotations

import msgspec
import pytest

from examples import multi_topic_publisher as example
from tests.examples.conftest import ExampleTopics


def test_each_type_arrives_on_its_own_topic(
    example_topics: ExampleTopics, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main(example_topics.argv)
    out = capsys.readouterr().out
    prefix = example_topics.prefix
    assert f"{prefix}logistics.shipments: 4 events" in out

    flow = example.order_flow()
    expected = {
        "orders": (example.OrderPlaced, b"shop.order.placed"),
        "payments": (example.PaymentCaptured, b"shop.payment.captured"),
        "logistics.shipments": (example.OrderShipped, b"shop.order.shipped"),
    }
    for topic, (cls, ce_type) in expected.items():
        records = example_topics.consume(topic, count=4)
        assert {r.header("ce_type") for r in records} == {ce_type}
        got = sorted(
            (msgspec.json.decode(r.value or b"", type=cls) for r in records),
            key=lambda e: e.order_id,
        )
        assert got == [e for e in flow if type(e) is cls]
    audit = example_topics.consume("audit", count=1)
    assert len(audit) == 1
    assert msgspec.json.decode(audit[0].value or b"", type=example.OrderPlaced) == flow[0]
    # Nothing went to the declared (unmapped) shipments topic.
    with pytest.raises(ValueError, match="does not exist"):
        example_topics.consume("shipments", timeout=2)
