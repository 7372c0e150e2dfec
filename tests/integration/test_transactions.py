"""Kafka transactions on Apache Kafka (one broker runs them): what read_committed consumers see.

* a committed transaction is seen whole, an aborted one not at all (both twins; an exception
  in the block, and a failed event the block caught);
* a producer SIGKILLed mid-transaction leaves nothing visible: aborted at once by the next
  instance with its ``transactional_id``, or by the coordinator once its timeout passed;
* a second instance fences the first: ``ProducerFencedError``, nothing of its transaction;
* consume-transform-produce: the consumer's offsets commit (or abort) with the transaction.

Kafka only: Tansu shows aborted records to read_committed consumers (docs/testing.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import eventwire
from eventwire.testing import KafkaCluster, capture_logs
from eventwire.transactions import (
    FatalTransactionError,
    ProducerFencedError,
    Transaction,
    TransactionAbortedError,
    TransactionError,
)
from tests.events import order, payment

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix(kafka_broker: KafkaCluster) -> str:
    """Fresh ``orders`` and ``payments`` topics (3 partitions) under a prefix of their own."""
    name = f"tx{uuid.uuid4().hex[:10]}."
    kafka_broker.create_topics([name + "orders", name + "payments"], 3)
    return name


def _config(
    cluster: KafkaCluster, prefix: str, transactional_id: str, **changes: object
) -> eventwire.PublisherConfig:
    settings: dict[str, object] = {
        "bootstrap_servers": cluster.bootstrap_servers,
        "topic_prefix": prefix,
        "transactional_id": transactional_id,
    }
    settings.update(changes)
    return eventwire.PublisherConfig(**settings)  # type: ignore[arg-type]


def _ids(cluster: KafkaCluster, topic: str) -> list[str]:
    """The ``ce_id`` of every record a read_committed consumer reads, in (partition, offset)
    order."""
    return [_ce_id(r.headers) for r in cluster.consume(topic)]


def _ce_id(headers: object) -> str:
    for name, value in headers:  # type: ignore[attr-defined]
        if name == "ce_id":
            return bytes(value).decode()
    raise AssertionError("no ce_id header")


def _uncommitted_count(cluster: KafkaCluster, topic: str) -> int:
    """Records a read_uncommitted consumer reads (aborted and open ones included)."""
    partitions = sorted(cluster.metadata().topics[topic].partitions)
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"uncommitted-{uuid.uuid4().hex}",
            "isolation.level": "read_uncommitted",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    count, at_end = 0, set[int]()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        deadline = time.monotonic() + 30
        while at_end != set(partitions):
            assert time.monotonic() < deadline, "no end of every partition within 30 s"
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is None:
                count += 1
            elif error.code() == KafkaError._PARTITION_EOF:
                partition = message.partition()
                assert partition is not None  # an end-of-partition event names it
                at_end.add(partition)
    finally:
        consumer.close()
    return count


def _stable_offsets(cluster: KafkaCluster, topic: str) -> tuple[list[int], list[int]]:
    """Per partition: the last stable offset (what a read_committed consumer may read up to)
    and the high watermark."""
    partitions = sorted(cluster.metadata().topics[topic].partitions)
    ends: dict[str, list[int]] = {}
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = Consumer(
            {
                "bootstrap.servers": cluster.bootstrap_servers,
                "group.id": f"lso-{uuid.uuid4().hex}",
                "isolation.level": isolation,
            }
        )
        try:
            ends[isolation] = [
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[
                    1
                ]
                for p in partitions
            ]
        finally:
            consumer.close()
    return ends["read_committed"], ends["read_uncommitted"]


# -- commit and abort --------------------------------------------------------------------------


async def test_a_committed_transaction_is_seen_whole_and_an_aborted_one_not_at_all(
    kafka_broker: KafkaCluster, prefix: str
) -> None:
    config = _config(kafka_broker, prefix, f"{prefix}writer")
    async with eventwire.AsyncPublisher(config) as publisher:
        async with publisher.transaction() as tx:
            first = await tx.publish(order(1))
            batch = await tx.publish_many([order(n) for n in range(2, 101)] + [payment(1)])
        assert tx.committed
        assert tx.receipts == (first, *batch)
        assert [r.offset >= 0 for r in tx.receipts] == [True] * 101

        aborted = publisher.transaction()

        async def fail_midway() -> None:
            async with aborted:
                await aborted.publish_many([order(n) for n in range(1000, 1050)])
                await aborted.publish(payment(2))
                raise RuntimeError("the body failed")

        with pytest.raises(RuntimeError, match="the body failed"):
            await fail_midway()
        assert not aborted.committed
        assert len(aborted.receipts) == 51  # written to the log, then aborted

        async with publisher.transaction() as last:
            await last.publish(order(2000))

    committed = {r.event_id for r in (*tx.receipts, *last.receipts)}
    seen = _ids(kafka_broker, prefix + "orders") + _ids(kafka_broker, prefix + "payments")
    assert sorted(seen) == sorted(committed)
    assert len(seen) == 102
    # The aborted events are in the log: read_uncommitted reads them, read_committed does not.
    assert _uncommitted_count(kafka_broker, prefix + "orders") == 101 + 50


def test_a_failed_event_aborts_the_transaction_even_when_the_block_caught_it(
    kafka_broker: KafkaCluster, prefix: str
) -> None:
    kafka_broker.create_topic(prefix + "small", 1, config={"max.message.bytes": "2000"})
    config = _config(kafka_broker, prefix, f"{prefix}sync")
    refused: list[eventwire.PublishError] = []

    def publish_one_too_large(tx: Transaction) -> None:
        tx.publish(order(1))
        try:
            tx.publish(order(2, notes="x" * 3000), topic="small")  # the broker refuses it
        except eventwire.PermanentPublishError as exc:
            refused.append(exc)
        with pytest.raises(TransactionAbortedError, match="cannot commit"):
            tx.publish(order(3))  # librdkafka takes nothing more in it

    with eventwire.Publisher(config) as publisher:
        tx = publisher.transaction()
        with pytest.raises(TransactionAbortedError) as caught, tx:
            publish_one_too_large(tx)
        [too_large] = refused
        assert too_large.code == "MSG_SIZE_TOO_LARGE"
        assert caught.value.__cause__ is too_large
        assert caught.value.code == "MSG_SIZE_TOO_LARGE"
        assert str(caught.value).startswith(
            f"transaction of '{prefix}sync' aborted: a call in it failed (PermanentPublishError:"
        )
        assert not tx.committed

        with publisher.transaction() as again:  # the publisher goes on
            again.publish(order(1))
            again.publish(order(3))
        assert again.committed

    assert sorted(_ids(kafka_broker, prefix + "orders")) == sorted(
        r.event_id for r in again.receipts
    )
    assert _uncommitted_count(kafka_broker, prefix + "orders") == 3


# -- fencing -------------------------------------------------------------------------------------


async def test_a_second_instance_fences_the_first(kafka_broker: KafkaCluster, prefix: str) -> None:
    transactional_id = f"{prefix}fenced"
    config = _config(kafka_broker, prefix, transactional_id)
    old = eventwire.AsyncPublisher(config)
    new = eventwire.AsyncPublisher(config)
    zombie = old.transaction()
    successor = new.transaction()

    async def taken_over() -> None:
        async with zombie:
            await zombie.publish_many([order(n) for n in range(10)])  # written, open
            async with successor:  # its init fences the old producer, aborts its transaction
                await successor.publish(order(100))

    try:
        with pytest.raises(ProducerFencedError) as caught:
            await taken_over()
        assert successor.committed
        error = caught.value
        assert error.transactional_id == transactional_id
        assert error.code == "_FENCED"
        assert str(error).startswith(
            f"transactional producer {transactional_id!r} was fenced while committing: a newer"
            " producer with the same transactional_id took over (_FENCED: "
        )
        assert str(error).endswith(
            "This publisher publishes nothing more and nothing of its open transaction "
            "becomes visible; close it. Run one live publisher per transactional_id"
        )
        assert len(zombie.receipts) == 10
        assert not zombie.committed
        # The old instance stays stopped; its health says why.

        async def begin_again() -> None:
            async with old.transaction():
                pass

        with pytest.raises(ProducerFencedError):
            await begin_again()
        assert "transactional producer failed (_FENCED)" in old.health().reasons
    finally:
        await old.aclose()
        await new.aclose()
    assert _ids(kafka_broker, prefix + "orders") == [successor.receipts[0].event_id]
    assert _uncommitted_count(kafka_broker, prefix + "orders") == 11


def test_a_fenced_instance_publishing_again_gets_the_fencing_error(
    kafka_broker: KafkaCluster, prefix: str
) -> None:
    config = _config(kafka_broker, prefix, f"{prefix}zombie")
    with (
        capture_logs() as logs,
        eventwire.Publisher(config) as old,
        eventwire.Publisher(config) as new,
    ):
        zombie, successor = old.transaction(), new.transaction()

        def publish_after_the_takeover() -> None:
            zombie.publish(order(1))
            with successor:
                successor.publish(order(2))
            zombie.publish(order(3))  # the broker refuses the old epoch

        with pytest.raises(ProducerFencedError) as caught, zombie:
            publish_after_the_takeover()
        assert caught.value.code == "_FENCED"
        # The event the broker refused failed first; the abort was fenced.
        assert isinstance(caught.value.__context__, eventwire.FatalPublishError)
        assert caught.value.__context__.code == "INVALID_PRODUCER_EPOCH"
    # One line says it; closing the fenced producer logs nothing more (confluent-kafka's close
    # tries to abort, fails and warns: not the application's business).
    events = [entry["event"] for entry in logs]
    assert events.count("eventwire.producer_fenced") == 1
    assert "eventwire.poll_loop_error" not in events
    assert _ids(kafka_broker, prefix + "orders") == [successor.receipts[0].event_id]


# -- the core's delivery deadline inside a transaction -----------------------------------------


def test_an_event_past_its_delivery_deadline_aborts_the_transaction_not_the_producer(
    kafka_broker: KafkaCluster, prefix: str
) -> None:
    # The core replaces a producer holding an expired event in flight (_core.deadlines); a
    # transactional one is never replaced mid-transaction: the event fails, the transaction
    # is aborted, and nothing of it becomes visible.
    transactional_id = f"{prefix}deadline"
    config = _config(
        kafka_broker, prefix, transactional_id, delivery_timeout=2.0, transaction_timeout=5.0
    )
    [broker] = kafka_broker.broker_ids
    timed_out: list[eventwire.PublishError] = []
    with capture_logs() as logs, eventwire.Publisher(config) as publisher:
        with publisher.transaction() as first:  # transactions initialised, coordinator known
            first.publish(order(1))
        tx = publisher.transaction()

        def publish_to_a_hung_broker() -> None:
            # The partition joins the transaction first (AddPartitionsToTxn): the next event
            # of its key is then sent at once, and held in flight by the hung broker.
            tx.publish(order(2, key="k"))
            kafka_broker.pause_broker(broker)
            try:
                tx.publish(order(4, key="k"))
            except eventwire.PublishError as exc:
                timed_out.append(exc)
            finally:
                kafka_broker.resume_broker(broker)

        with pytest.raises(TransactionError) as ended, tx:
            publish_to_a_hung_broker()
        [failure] = timed_out
        assert failure.code == "_MSG_TIMED_OUT"
        assert not tx.committed
        error = ended.value
        if isinstance(error, FatalTransactionError):
            # librdkafka 2.16 on Kafka 4.4: an abort that reaches the broker just after it
            # answers again, with the timed-out request still in it, fails INVALID_TXN_STATE
            # (fatal); raw confluent-kafka does the same. Aborted later, it succeeds.
            assert error.code == "INVALID_TXN_STATE", error
        else:
            assert isinstance(error, TransactionAbortedError), error
            assert error.__cause__ is failure
            same_producer = _run_again_until_committed(publisher)  # the producer goes on
    if isinstance(error, FatalTransactionError):
        with eventwire.Publisher(config) as successor, successor.transaction() as last:
            last.publish(order(3))
    else:
        last = same_producer
    assert last.committed
    events = [entry["event"] for entry in logs]
    assert "eventwire.producer_recreated" not in events
    expected = [first.receipts[0].event_id, last.receipts[0].event_id]
    assert sorted(_ids(kafka_broker, prefix + "orders")) == sorted(expected)


def _run_again_until_committed(publisher: eventwire.Publisher) -> Transaction:
    """One event in a transaction, run again on an abort, as an application does: after a
    request that timed out in flight, the broker may still take it once it answers again,
    and librdkafka then aborts the next transaction too ("skipped sequence numbers, requires
    epoch bump") before it bumps the producer's epoch."""
    for _ in range(3):
        tx = publisher.transaction()
        try:
            with tx:
                tx.publish(order(3))
        except (TransactionAbortedError, eventwire.PublishError):
            continue
        return tx
    raise AssertionError("no transaction committed in 3 attempts")


# -- a producer killed mid-transaction ---------------------------------------------------------


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _start_child(
    children: list[subprocess.Popen[str]],
    cluster: KafkaCluster,
    topic: str,
    transactional_id: str,
    *extra: str,
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "tests.integration.transaction_child",
            "--bootstrap",
            cluster.bootstrap_servers,
            "--topic",
            topic,
            "--transactional-id",
            transactional_id,
            "--count",
            "20",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    children.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "written 20\n", f"child said {line!r} (rc {proc.poll()})"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert proc.stdout is not None
    proc.stdout.close()


def test_a_killed_producers_transaction_is_aborted_by_its_next_instance(
    kafka_broker: KafkaCluster, prefix: str, children: list[subprocess.Popen[str]]
) -> None:
    topic = prefix + "orders"
    transactional_id = f"{prefix}killed"
    proc = _start_child(children, kafka_broker, topic, transactional_id)
    stable, high = _stable_offsets(kafka_broker, topic)
    assert sum(high) == 20  # written, and held back from read_committed consumers:
    assert stable == [0, 0, 0]
    _kill(proc)
    assert _ids(kafka_broker, topic) == []

    # The next instance's first transaction aborts what the killed one left open, at once
    # (its transaction_timeout is 60 s).
    started = time.monotonic()
    config = _config(kafka_broker, prefix, transactional_id)
    with eventwire.Publisher(config) as successor, successor.transaction() as tx:
        tx.publish(order(99))
    took = time.monotonic() - started
    assert took < 20, f"the next instance took {took:.1f} s"  # its timeout is 60 s
    assert _ids(kafka_broker, topic) == [tx.receipts[0].event_id]
    stable, high = _stable_offsets(kafka_broker, topic)
    assert stable == high  # nothing held back any more: the open transaction was aborted
    assert _uncommitted_count(kafka_broker, topic) == 21


def test_a_killed_producers_transaction_is_aborted_when_it_times_out(
    kafka_broker: KafkaCluster, prefix: str, children: list[subprocess.Popen[str]]
) -> None:
    topic = prefix + "orders"
    timeout = 3.0
    proc = _start_child(
        children,
        kafka_broker,
        topic,
        f"{prefix}timed-out",
        "--transaction-timeout",
        str(timeout),
    )
    _kill(proc)
    killed = time.monotonic()
    # No instance takes over: the coordinator aborts it once its timeout passed (checked
    # every second on the test kit's brokers), and read_committed consumers move past it.
    while True:
        stable, high = _stable_offsets(kafka_broker, topic)
        if stable == high:
            break
        assert time.monotonic() - killed < timeout + 20, f"still held back: {stable} < {high}"
        time.sleep(0.2)
    waited = time.monotonic() - killed
    assert sum(high) == 20 + sum(1 for p in high if p)  # the records and an abort marker each
    assert _ids(kafka_broker, topic) == []
    assert _uncommitted_count(kafka_broker, topic) == 20
    # Aborted by its timeout, not earlier (it was open when killed, after the writes).
    assert waited > timeout - 1.5, f"resolved after {waited:.1f} s"


# -- consume-transform-produce -----------------------------------------------------------------


def test_consumer_offsets_commit_with_the_transaction_or_not_at_all(
    kafka_broker: KafkaCluster, prefix: str
) -> None:
    source = kafka_broker.unique_topic("input", 1)
    plain = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for n in range(10):
        plain.produce(source, value=str(n).encode())
    assert plain.flush(30) == 0
    group = f"{prefix}group"
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    config = _config(kafka_broker, prefix, f"{prefix}transform")
    try:
        consumer.assign([TopicPartition(source, 0, 0)])

        def read(count: int) -> list[int]:
            values: list[int] = []
            deadline = time.monotonic() + 30
            while len(values) < count:
                assert time.monotonic() < deadline
                for message in consumer.consume(count - len(values), timeout=1.0):
                    assert message.error() is None
                    values.append(int(message.value() or b""))
            return values

        with eventwire.Publisher(config) as publisher:
            with publisher.transaction() as tx:
                tx.publish_many([order(n) for n in read(4)])
                tx.send_offsets(consumer, consumer.position(consumer.assignment()))
            assert _committed(consumer, source) == 4

            failed = publisher.transaction()

            def transform_and_fail() -> None:
                failed.publish_many([order(n) for n in read(3)])
                failed.send_offsets(consumer, consumer.position(consumer.assignment()))
                raise RuntimeError("transform failed")

            with pytest.raises(RuntimeError, match="transform failed"), failed:
                transform_and_fail()
            assert _committed(consumer, source) == 4  # the offsets aborted with it
    finally:
        consumer.close()
    assert len(_ids(kafka_broker, prefix + "orders")) == 4


def _committed(consumer: Consumer, topic: str) -> int:
    [partition] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    return int(partition.offset)
