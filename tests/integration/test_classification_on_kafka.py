"""The classification table against Apache Kafka itself: each error code a Kafka 4.4 broker
(with librdkafka) gives in a situation this machine can create is provoked once, and the class
eventwire gives it is checked against what the situation means (not read back from the table).

Most go through an `AsyncPublisher` (the class is the exception's); a few need a client
eventwire does not build (transactional, or librdkafka retries off) and are classified from the
real ``KafkaError`` by the table's own function. ``PROVED_ON_KAFKA`` is what
docs/classification.md marks as proved on Apache Kafka (``tests/unit/test_docs.py``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

import msgspec
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

import eventwire
from eventwire._classify import classify
from eventwire.testing import KafkaCluster
from tests.events import order

#: Every code provoked below, with the situation that gives it.
PROVED_ON_KAFKA: Final = {
    "MSG_SIZE_TOO_LARGE": "a record over its topic's `max.message.bytes`",
    "NOT_ENOUGH_REPLICAS": "fewer in-sync replicas than `min.insync.replicas`",
    "REQUEST_TIMED_OUT": "a follower that does not answer within the request's timeout",
    "INVALID_TIMESTAMP": "a timestamp older than the topic's `message.timestamp.before.max.ms`",
    "INVALID_RECORD": "a record without a key for a compacted topic",
    "TOPIC_EXCEPTION": "a write to an internal topic (`__consumer_offsets`)",
    "UNKNOWN_TOPIC_OR_PART": "a missing topic, auto-creation off, once librdkafka stops waiting",
    "TOPIC_AUTHORIZATION_FAILED": "a topic the ACLs deny writing to",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": (
        "a transactional id the ACLs deny: librdkafka raises it as a fatal error, and the"
        " fatal flag wins over the table"
    ),
    "_MSG_TIMED_OUT": "a broker that does not answer (SIGSTOP) within `delivery_timeout`",
    "_PURGE_INFLIGHT": "a close that gives up on events sent to a broker that does not answer",
    "_FENCED": "a transactional producer fenced by a newer one with its id",
}

#: What each class means for the event, checked against the situation: the exception a
#: publisher raises for it.
EXCEPTION_OF: Final[dict[str, type[eventwire.PublishError]]] = {
    "retriable": eventwire.RetriablePublishError,
    "ambiguous": eventwire.AmbiguousPublishError,
    "permanent": eventwire.PermanentPublishError,
    "fatal": eventwire.FatalPublishError,
}

#: Codes raised as a documented subclass of their class's exception (docs/classification.md).
SUBCLASS_OF: Final[dict[str, type[eventwire.PublishError]]] = {
    "TOPIC_AUTHORIZATION_FAILED": eventwire.AuthorizationError,
}

#: The class each situation calls for: the event was certainly not written and may be sent
#: again (retriable), may have been written (ambiguous), can never be written as it is
#: (permanent), or the producer is unusable (fatal).
EXPECTED: Final = {
    "MSG_SIZE_TOO_LARGE": "permanent",
    "NOT_ENOUGH_REPLICAS": "retriable",
    "REQUEST_TIMED_OUT": "ambiguous",
    "INVALID_TIMESTAMP": "permanent",
    "INVALID_RECORD": "permanent",
    "TOPIC_EXCEPTION": "permanent",
    "UNKNOWN_TOPIC_OR_PART": "retriable",
    "TOPIC_AUTHORIZATION_FAILED": "permanent",
    # Raised by init_transactions() with the fatal flag: the instance is unusable.
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": "fatal",
    "_MSG_TIMED_OUT": "ambiguous",
    "_PURGE_INFLIGHT": "ambiguous",
    "_FENCED": "fatal",
}

#: librdkafka retries these itself until ``delivery_timeout``; with one retry of its own the
#: broker's code reaches eventwire (``retries`` may not be 0 in a publisher).
ONE_RETRY: Final = {"retries": 1}
DENIED_PREFIX: Final = "denied-"

pytestmark = pytest.mark.timeout(180)


@eventwire.event(topic="keyless", key=None, type="classification.keyless", version=1)
class Keyless(msgspec.Struct, frozen=True, kw_only=True):
    n: int


@pytest.fixture(scope="module")
def guarded() -> Iterator[KafkaCluster]:
    """One broker that creates no topic on first use and checks ACLs (anyone may do
    anything on a resource without ACLs; writes to topics and transactional ids named
    ``denied-*`` are denied)."""
    with KafkaCluster(
        brokers=1,
        server_properties={
            "auto.create.topics.enable": False,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": True,
        },
    ) as cluster:
        # Once an ACL matches a resource, what no ACL allows is denied: allow everything on
        # the denied-* names, then deny writing (a DENY wins over an ALLOW).
        acls = [
            AclBinding(
                kind,
                DENIED_PREFIX,
                ResourcePatternType.PREFIXED,
                "User:ANONYMOUS",
                "*",
                operation,
                permission,
            )
            for kind in (ResourceType.TOPIC, ResourceType.TRANSACTIONAL_ID)
            for operation, permission in (
                (AclOperation.ALL, AclPermissionType.ALLOW),
                (AclOperation.WRITE, AclPermissionType.DENY),
            )
        ]
        for future in cluster._admin_client().create_acls(acls, request_timeout=30).values():
            future.result()
        yield cluster


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The session's 3-broker cluster, every broker running and every ISR full afterwards."""
    yield kafka_cluster
    kafka_cluster.restore()


def _config(cluster: KafkaCluster, **settings: object) -> eventwire.PublisherConfig:
    """A publisher that tells the caller at once: no retry after librdkafka gave up."""
    defaults: dict[str, object] = {
        "retry": eventwire.RetryPolicy.never(),
        "delivery_timeout": 20.0,
    }
    return eventwire.PublisherConfig(
        bootstrap_servers=cluster.bootstrap_servers,
        **{**defaults, **settings},  # type: ignore[arg-type]
    )


async def _failure(
    config: eventwire.PublisherConfig, event: object, topic: str
) -> eventwire.PublishError:
    """Publish ``event`` to ``topic`` and return the error it failed with."""
    async with eventwire.AsyncPublisher(config) as publisher:
        with pytest.raises(eventwire.PublishError) as caught:
            await publisher.publish(event, topic=topic)
    return caught.value


def _replicas(cluster: KafkaCluster, topic: str) -> list[int]:
    """The replicas of partition 0 (waiting until the broker asked knows the new topic)."""
    deadline = time.monotonic() + 30
    while (found := cluster.metadata().topics.get(topic)) is None:
        assert time.monotonic() < deadline, f"{topic} not listed within 30 s"
        time.sleep(0.05)
    return list(found.partitions[0].replicas)


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# -- the situations --------------------------------------------------------------------------


async def _too_large(cluster: KafkaCluster, guarded: KafkaCluster) -> eventwire.PublishError:
    topic = cluster.unique_topic("sized", config={"max.message.bytes": "2000"})
    return await _failure(_config(cluster), order(1, notes="x" * 5_000), topic)


async def _not_enough_replicas(
    cluster: KafkaCluster, guarded: KafkaCluster
) -> eventwire.PublishError:
    topic = cluster.unique_topic("isr", partitions=1, config={"min.insync.replicas": "3"})
    follower = next(b for b in cluster.broker_ids if b != cluster.leader(topic, 0))
    await asyncio.to_thread(cluster.stop_broker, follower)  # 2 in sync of 3
    return await _failure(_config(cluster, librdkafka_overrides=ONE_RETRY), order(1), topic)


async def _request_timed_out(
    cluster: KafkaCluster, guarded: KafkaCluster
) -> eventwire.PublishError:
    # acks=all waits for the paused follower; the broker gives up after request.timeout.ms
    # (1 s here), long before the controller fences the follower (6 s).
    topic = cluster.unique_topic("acks", partitions=1, replication_factor=2)
    leader = cluster.leader(topic, 0)
    [follower] = [b for b in _replicas(cluster, topic) if b != leader]
    config = _config(cluster, librdkafka_overrides={**ONE_RETRY, "request.timeout.ms": 1000})
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(0), topic=topic)  # connected, producer id acquired
        cluster.pause_broker(follower)
        try:
            with pytest.raises(eventwire.PublishError) as caught:
                await publisher.publish(order(1), topic=topic)
        finally:
            cluster.resume_broker(follower)
    return caught.value


async def _invalid_timestamp(
    cluster: KafkaCluster, guarded: KafkaCluster
) -> eventwire.PublishError:
    # The record's timestamp is taken at produce(); the broker appends it at least the linger
    # (5 ms) later, over the topic's 1 ms.
    topic = cluster.unique_topic("stamped", config={"message.timestamp.before.max.ms": "1"})
    return await _failure(_config(cluster), order(1), topic)


async def _invalid_record(cluster: KafkaCluster, guarded: KafkaCluster) -> eventwire.PublishError:
    topic = cluster.unique_topic("compacted", config={"cleanup.policy": "compact"})
    return await _failure(_config(cluster), Keyless(n=1), topic)


async def _topic_exception(cluster: KafkaCluster, guarded: KafkaCluster) -> eventwire.PublishError:
    # The offsets topic exists once a group's coordinator was looked up (auto-creation off
    # does not stop that one).
    consumer = Consumer({"bootstrap.servers": guarded.bootstrap_servers, "group.id": "classify"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                await asyncio.to_thread(consumer.committed, [TopicPartition("any", 0)], 10)
                break
            except KafkaException:  # the coordinator is loading the new topic
                assert time.monotonic() < deadline, "no group coordinator within 30 s"
    finally:
        consumer.close()
    return await _failure(_config(guarded), order(1), "__consumer_offsets")


async def _unknown_topic(cluster: KafkaCluster, guarded: KafkaCluster) -> eventwire.PublishError:
    # librdkafka waits topic.metadata.propagation.max.ms (30 s by default) for a topic the
    # cluster says does not exist, then fails its messages with the broker's code.
    config = _config(guarded, librdkafka_overrides={"topic.metadata.propagation.max.ms": 500})
    return await _failure(config, order(1), _unique("missing-"))


async def _topic_denied(cluster: KafkaCluster, guarded: KafkaCluster) -> eventwire.PublishError:
    topic = guarded.create_topic(_unique(DENIED_PREFIX))
    return await _failure(_config(guarded), order(1), topic)


async def _msg_timed_out(cluster: KafkaCluster, guarded: KafkaCluster) -> eventwire.PublishError:
    topic = guarded.unique_topic("hung")
    config = _config(guarded, delivery_timeout=5.0, breaker=None)
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(0), topic=topic)  # sent, so it has a partition
        guarded.pause_broker(1)
        try:
            with pytest.raises(eventwire.PublishError) as caught:
                await publisher.publish(order(1), topic=topic)
        finally:
            guarded.resume_broker(1)
    return caught.value


async def _purged_in_flight(cluster: KafkaCluster, guarded: KafkaCluster) -> eventwire.PublishError:
    topic = guarded.unique_topic("closing")
    publisher = eventwire.AsyncPublisher(_config(guarded))
    async with publisher:
        await publisher.publish(order(0), topic=topic)
        guarded.pause_broker(1)
        try:
            waiting = asyncio.ensure_future(publisher.publish(order(1), topic=topic))
            await asyncio.sleep(0.5)  # sent (linger 5 ms) and waiting for its answer
            await publisher.aclose(timeout=0.5)
            with pytest.raises(eventwire.PublishError) as caught:
                await waiting
        finally:
            guarded.resume_broker(1)
    return caught.value


def _transactional(cluster: KafkaCluster, transactional_id: str) -> Producer:
    return Producer(
        {"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": transactional_id}
    )


def _refusal(call: Callable[[float], object]) -> KafkaError:
    """The error ``call(30)`` raises (caught without keeping its traceback, which would keep
    the producer, and its connections, alive after the test)."""
    try:
        call(30)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        return error
    pytest.fail("no error raised")


async def _transactional_id_denied(cluster: KafkaCluster, guarded: KafkaCluster) -> KafkaError:
    producer = _transactional(guarded, _unique(DENIED_PREFIX))
    return await asyncio.to_thread(_refusal, producer.init_transactions)


async def _fenced(cluster: KafkaCluster, guarded: KafkaCluster) -> KafkaError:
    topic = guarded.unique_topic("transactions")
    transactional_id = _unique("tx-")
    older = _transactional(guarded, transactional_id)
    await asyncio.to_thread(older.init_transactions, 30)
    older.begin_transaction()
    older.produce(topic, b"first")
    assert await asyncio.to_thread(older.flush, 30) == 0
    newer = _transactional(guarded, transactional_id)
    await asyncio.to_thread(newer.init_transactions, 30)  # fences the older one
    older.produce(topic, b"second")
    return await asyncio.to_thread(_refusal, older.flush)


Situation = Callable[[KafkaCluster, KafkaCluster], Awaitable[eventwire.PublishError | KafkaError]]

SITUATIONS: Final[dict[str, Situation]] = {
    "MSG_SIZE_TOO_LARGE": _too_large,
    "NOT_ENOUGH_REPLICAS": _not_enough_replicas,
    "REQUEST_TIMED_OUT": _request_timed_out,
    "INVALID_TIMESTAMP": _invalid_timestamp,
    "INVALID_RECORD": _invalid_record,
    "TOPIC_EXCEPTION": _topic_exception,
    "UNKNOWN_TOPIC_OR_PART": _unknown_topic,
    "TOPIC_AUTHORIZATION_FAILED": _topic_denied,
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": _transactional_id_denied,
    "_MSG_TIMED_OUT": _msg_timed_out,
    "_PURGE_INFLIGHT": _purged_in_flight,
    "_FENCED": _fenced,
}


def test_every_proved_code_has_a_situation_and_an_expected_class() -> None:
    assert set(SITUATIONS) == set(PROVED_ON_KAFKA) == set(EXPECTED)


@pytest.mark.parametrize("code", sorted(PROVED_ON_KAFKA))
async def test_the_code_kafka_gives_is_classified_as_its_situation_means(
    code: str, cluster: KafkaCluster, guarded: KafkaCluster
) -> None:
    outcome = await SITUATIONS[code](cluster, guarded)
    expected = EXPECTED[code]
    if isinstance(outcome, KafkaError):  # a client eventwire does not build
        assert outcome.name() == code, outcome
        assert classify(outcome) == expected
        if not outcome.fatal():  # the fatal flag wins over the table
            assert eventwire.inspect.CLASSIFICATION[code] == expected
        return
    assert eventwire.inspect.CLASSIFICATION[code] == expected
    assert outcome.code == code, outcome
    assert isinstance(outcome, EXCEPTION_OF[expected]), outcome
    assert type(outcome) is SUBCLASS_OF.get(code, EXCEPTION_OF[expected]), outcome
    assert f"({expected}, {code})" in str(outcome)
