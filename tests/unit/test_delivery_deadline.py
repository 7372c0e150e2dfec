"""An event that times out in the queue is re-sent before any newer event of its key.

librdkafka times messages out one by one: an older message can time out in the queue while a
newer one behind it is still within its time, and is sent as soon as the connection (or the
producer id) comes: the older one's retry then lands after it (seen on Apache Kafka under load,
``tests/integration/test_failures.py``, connection resets and a cut). The in-memory transport
times messages out exactly so; the core's own deadline (``_core.deadlines``) must fail the newer
one too, so that both are re-sent in order.
"""

from __future__ import annotations

import asyncio

import msgspec

import eventwire
from eventwire.testing import FAKE_BOOTSTRAP, MemoryBroker, capture_logs

DELIVERY_TIMEOUT = 0.5
RETRY = eventwire.RetryPolicy(attempts=5, base=0.01, cap=0.05, deadline=30.0)


@eventwire.event(topic="orders", key="order_id", type="test.deadline.order", version=1)
class Order(msgspec.Struct, frozen=True):
    order_id: str
    n: int


def _config(
    retry: eventwire.RetryPolicy = RETRY,
) -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(
        bootstrap_servers=FAKE_BOOTSTRAP,
        delivery_timeout=DELIVERY_TIMEOUT,
        retry=retry,
        breaker=None,
    )


async def test_an_older_event_timed_out_in_the_queue_is_not_overtaken() -> None:
    broker = MemoryBroker(partitions=1)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(_config(), transport=broker.transport) as publisher:
            # The first event waits at the head of the queue far past its deadline (no producer
            # id yet, say); the second, behind it, could go at once.
            broker.set_delay(60.0)
            first = asyncio.create_task(publisher.publish(Order(order_id="k", n=1)))
            await asyncio.sleep(0)  # the task runs until it waits for the report: produced
            assert publisher.health().queue_depth == 1
            broker.set_delay(0.0)
            # The second is half a timeout younger: still within its time when the first
            # times out (the scenario, not a synchronisation).
            await asyncio.sleep(DELIVERY_TIMEOUT / 2)
            second = asyncio.create_task(publisher.publish(Order(order_id="k", n=2)))
            outcomes = await asyncio.gather(first, second)
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes), outcomes
    written = [msgspec.json.decode(r.value)["n"] for r in broker.records]
    assert written == [1, 2]
    retried = [log["event_id"] for log in logs if log["event"] == "eventwire.retry_scheduled"]
    # Both were purged together and re-sent in order: the first after its own timeout, the
    # second (swept behind it) resuming its attempt, which is no retry.
    assert retried == [outcomes[0].event_id]


async def test_an_event_purged_behind_an_expired_one_is_sent_whatever_the_policy() -> None:
    # The purge that keeps the older event ahead is not the newer one's own failure: with a
    # policy that never retries, the older one fails (its own timeout) and the newer one is
    # still delivered, its attempt resumed (no retry, no second attempt).
    config = _config(eventwire.RetryPolicy.never())
    broker = MemoryBroker(partitions=1)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config, transport=broker.transport) as publisher:
            broker.set_delay(60.0)
            first = asyncio.create_task(publisher.publish(Order(order_id="k", n=1)))
            await asyncio.sleep(0)
            broker.set_delay(0.0)
            await asyncio.sleep(DELIVERY_TIMEOUT / 2)
            second = asyncio.create_task(publisher.publish(Order(order_id="k", n=2)))
            timed_out, delivered = await asyncio.gather(first, second, return_exceptions=True)
            # The resumed one headed its key's hold: its delivery releases the key.
            third = await asyncio.wait_for(publisher.publish(Order(order_id="k", n=3)), 5.0)
    assert isinstance(timed_out, eventwire.AmbiguousPublishError), timed_out
    assert timed_out.code == "_MSG_TIMED_OUT"
    assert isinstance(delivered, eventwire.DeliveryReceipt), delivered
    assert isinstance(third, eventwire.DeliveryReceipt), third
    assert [msgspec.json.decode(r.value)["n"] for r in broker.records] == [2, 3]
    retried = [log["event_id"] for log in logs if log["event"] == "eventwire.retry_scheduled"]
    assert retried == []
    resent = [log for log in logs if log["event"] == "eventwire.publish_failed"]
    assert [(log["event_id"], log["attempts"]) for log in resent] == [(timed_out.event_id, 1)]
