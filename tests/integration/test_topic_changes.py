"""Topics that change under a running publisher: deleted, re-created, given partitions."""

from __future__ import annotations

import asyncio
from collections import Counter

from confluent_kafka.admin import AdminClient

import eventwire
from eventwire.testing import capture_logs
from eventwire.testing._noida import NoidaBroker
from tests.brokers import ON_KAFKA_AND_TANSU
from tests.events import order
from tests.integration.conftest import StatefulBroker, Topics


def _delete_topic(bootstrap_servers: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    for future in admin.delete_topics([topic]).values():
        future.result()


def _partition_count(bootstrap_servers: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)


async def test_a_deleted_and_recreated_topic_does_not_open_the_breaker_for_other_topics(
    stateful_broker: StatefulBroker,
) -> None:
    # Kafka (and noida-db) answer a produce to a deleted topic with UNKNOWN_TOPIC_OR_PART and
    # auto-create it: the idempotent producer's sequence for the partition is then out of sync
    # (fatal OUT_OF_ORDER_SEQUENCE_NUMBER on noida-db), eventwire recreates the producer and
    # re-sends. The cluster answered all along: one fatal report per message of the batch (5
    # here) opened the breaker, and every event for a healthy topic failed with
    # CircuitOpenError for a cool-down. Tansu acknowledges writes to a deleted topic instead.
    broker = stateful_broker.broker
    doomed, healthy = broker.create_topics(
        [stateful_broker.name("doomed"), stateful_broker.name("healthy")], 1
    )
    config = eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers, delivery_timeout=15.0
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        before = await publisher.publish_many([order(n) for n in range(5)], topic=doomed)
        _delete_topic(broker.bootstrap_servers, doomed)
        after = await publisher.publish_many([order(n) for n in range(5, 10)], topic=doomed)
        others = await publisher.publish_many([order(n) for n in range(10, 15)], topic=healthy)
        state = publisher.health().breaker_state
    recreated = broker.consume(doomed, count=5)
    delivered = broker.consume(healthy, count=5)
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in before + after)
    assert [type(o).__name__ for o in others] == ["DeliveryReceipt"] * 5
    assert state == "closed"
    receipts = {(o.partition, o.offset) for o in others if isinstance(o, eventwire.DeliveryReceipt)}
    assert receipts == {(r.partition, r.offset) for r in delivered}
    # the re-created topic holds the events sent after the deletion, each once
    assert Counter(r.header("ce_id") for r in recreated) == Counter(
        o.event_id.encode() for o in after if isinstance(o, eventwire.DeliveryReceipt)
    )


@ON_KAFKA_AND_TANSU
async def test_a_missing_topic_fails_without_hiding_the_good_events(topics: Topics) -> None:
    # Auto-creation off (the client does not ask for it; Tansu and noida-db honour that): the
    # events for the missing topic time out without a partition. Its dead-letter topic is
    # missing too: that write was retried twice more, a delivery_timeout each, and reported
    # as ambiguous (may have been written) although it never had a partition.
    config = topics.config(
        delivery_timeout=2.0,
        librdkafka_overrides={"allow.auto.create.topics": False},
        retry=eventwire.RetryPolicy(attempts=1),
        dead_letter=eventwire.DeadLetterPolicy(),
    )
    missing = "missing" + topics.prefix.strip(".")
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            outcomes = await publisher.publish_many([order(1), order(2, key="k"), order(3)])
            lost = await publisher.publish_many([order(4), order(5)], topic=missing)
            state = publisher.health().breaker_state
    delivered = topics.broker.consume(topics.name("orders"), count=3)
    assert {
        (o.partition, o.offset) for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)
    } == {(r.partition, r.offset) for r in delivered}
    assert state == "closed"
    for error in lost:
        assert isinstance(error, eventwire.RetriablePublishError)
        assert f"topic {topics.prefix + missing!r} has no known partition" in str(error)
    failed = [entry for entry in logs if entry["event"] == "eventwire.dead_letter_failed"]
    assert len(failed) == 2
    for entry in failed:
        assert entry["dead_letter_code"] == "_MSG_TIMED_OUT"
        assert "has no known partition" in entry["dead_letter_error"]
        assert "(retriable, _MSG_TIMED_OUT)" in entry["dead_letter_error"]
        assert "after 1 attempt" in entry["dead_letter_error"]


async def _shrink_under_load(*, concurrent: bool) -> None:
    # noida-db re-creates a deleted topic on the next produce, with one partition: the
    # idempotent producer's sequence is out of sync (fatal), it is replaced, and what it held
    # comes back purged, to be re-sent. Those purges (and timeouts of events the partitioner
    # had put on the vanished partitions 1 and 2) opened the breaker for every topic, although
    # the cluster answered all along: the next call failed fast with CircuitOpenError.
    with NoidaBroker(partitions=3) as broker:
        shrunk, healthy = broker.create_topics(["shrunk", "healthy"])
        config = eventwire.PublisherConfig(
            bootstrap_servers=broker.bootstrap_servers, delivery_timeout=5.0
        )
        async with eventwire.AsyncPublisher(config) as publisher:
            before = await publisher.publish_many([order(n) for n in range(30)], topic=shrunk)
            _delete_topic(broker.bootstrap_servers, shrunk)
            after = publisher.publish_many([order(n) for n in range(30, 60)], topic=shrunk)
            if concurrent:  # the healthy topic's writes are handed over after the stalled ones
                after_outcomes, first = await asyncio.gather(
                    after, publisher.publish_many([order(n) for n in range(60, 90)], topic=healthy)
                )
            else:
                after_outcomes = await after
                first = await publisher.publish_many(
                    [order(n) for n in range(60, 90)], topic=healthy
                )
            second = await publisher.publish_many([order(n) for n in range(90, 120)], topic=healthy)
            state = publisher.health().breaker_state
        assert [type(o).__name__ for o in after_outcomes + first + second] == [
            "DeliveryReceipt"
        ] * 90
        assert state == "closed"
        recreated = broker.consume(shrunk, count=30)
        delivered = broker.consume(healthy, count=60)
        partitions = _partition_count(broker.bootstrap_servers, shrunk)
    assert partitions == 1
    assert {o.partition for o in before if isinstance(o, eventwire.DeliveryReceipt)} == {0, 1, 2}
    receipts = {
        (o.partition, o.offset) for o in first + second if isinstance(o, eventwire.DeliveryReceipt)
    }
    assert receipts == {(r.partition, r.offset) for r in delivered}
    assert Counter(r.header("ce_id") for r in recreated) == Counter(
        o.event_id.encode() for o in after_outcomes if isinstance(o, eventwire.DeliveryReceipt)
    )


async def test_a_topic_recreated_with_fewer_partitions_does_not_open_the_breaker() -> None:
    await _shrink_under_load(concurrent=True)


async def test_a_replaced_producers_purges_do_not_open_the_breaker() -> None:
    await _shrink_under_load(concurrent=False)
