"""docs/operations.md says ``uvloop`` works as the loop: an ``AsyncPublisher`` on a uvloop loop
publishes, settles every outcome and closes, and the records arrive in key order."""

from __future__ import annotations

import pytest

import eventwire
from tests.events import order
from tests.integration.conftest import Topics

uvloop = pytest.importorskip("uvloop")


def test_async_publisher_on_uvloop(topics: Topics) -> None:
    events = [order(n, key=f"k{n % 4}") for n in range(500)]

    async def publish() -> tuple[list[object], eventwire.CloseReport]:
        publisher = eventwire.AsyncPublisher(topics.config())
        async with publisher:
            first = await publisher.publish(order(1000, key="k0"))
            outcomes = [first, *await publisher.publish_many(events)]
        return outcomes, await publisher.aclose()

    outcomes, report = uvloop.run(publish())
    receipts = [o for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]
    assert len(receipts) == 501
    assert (report.delivered, report.failed, report.undelivered) == (501, 0, 0)
    records = topics.broker.consume(topics.name("orders"), count=501)
    keys = ["k0", *(e.order_id for e in events)]
    for key in ("k0", "k1", "k2", "k3"):  # every event once, in publish order per key
        sent = [r.event_id.encode() for k, r in zip(keys, receipts, strict=True) if k == key]
        assert [r.header("ce_id") for r in records if r.key == key.encode()] == sent
