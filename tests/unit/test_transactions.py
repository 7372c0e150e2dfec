"""Kafka transactions without a broker: the configuration's rules, the fakes (the real
publishers over ``MemoryBroker``, whose transport is transactional like librdkafka's), and
the end of a transaction when librdkafka's calls fail (through the ``transport=`` seam).

On Apache Kafka: ``tests/integration/test_transactions.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

import eventwire
from eventwire import ConfigError, PublisherConfig, RetryPolicy
from eventwire.codec import EventCodec
from eventwire.testing import AsyncFakePublisher, FakePublisher, MemoryBroker, capture_logs
from eventwire.transactions import (
    AmbiguousTransactionError,
    FatalTransactionError,
    ProducerFencedError,
    TransactionAbortedError,
    TransactionStateError,
)
from eventwire.transport import Transport
from tests.events import order, payment

SERVERS = "fake.invalid:9092"


def make(**changes: Any) -> PublisherConfig:
    settings: dict[str, Any] = {"bootstrap_servers": SERVERS, "transactional_id": "orders-1"}
    settings.update(changes)
    return PublisherConfig(**settings)


def refused(message: str, **changes: Any) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        make(**changes)


# -- the configuration --------------------------------------------------------------------------


def test_a_transactional_config_renders_the_id_and_the_timeout_and_librdkafka_accepts_it() -> None:
    config = make(transaction_timeout=30.0)
    settings = config._to_librdkafka()
    assert settings["transactional.id"] == "orders-1"
    assert settings["transaction.timeout.ms"] == 30_000
    assert settings["message.timeout.ms"] == 30_000  # the preset's 120 s, lowered to it
    assert settings["linger.ms"] == 0  # the caller waits for its events: no lingering
    assert make(linger_ms=20)._to_librdkafka()["linger.ms"] == 20
    assert (settings["enable.idempotence"], settings["acks"]) == (True, "all")
    Producer(settings).flush(0)
    assert "transactional.id" not in make(transactional_id=None)._to_librdkafka()


@pytest.mark.parametrize(
    ("preset", "delivery"), [("durable", 60.0), ("throughput", 60.0), ("low_latency", 5.0)]
)
def test_the_preset_bounds_follow_the_transaction(preset: str, delivery: float) -> None:
    config = make(preset=preset)
    assert config.retry == RetryPolicy.never()  # the transaction is what is run again
    assert config.delivery_timeout == delivery  # at most transaction_timeout (60 s)
    plain = config.with_overrides(transactional_id=None)
    assert plain.retry == PublisherConfig(bootstrap_servers=SERVERS, preset=preset).retry
    assert (
        plain.delivery_timeout
        == PublisherConfig(bootstrap_servers=SERVERS, preset=preset).delivery_timeout
    )


def test_explicit_bounds_within_the_transaction_are_kept() -> None:
    config = make(delivery_timeout=20.0, retry=RetryPolicy.never(), transaction_timeout=40.0)
    assert (config.delivery_timeout, config.retry.attempts) == (20.0, 1)


@pytest.mark.parametrize(
    ("delivery", "transaction", "message_timeout_ms"),
    [(20.0, 40.0, 22_000), (39.5, 40.0, 40_000), (40.0, 40.0, 40_000), (5.0, 5.5, 5_500)],
)
def test_the_librdkafka_backstop_stays_within_the_transaction_timeout(
    delivery: float, transaction: float, message_timeout_ms: int
) -> None:
    # librdkafka refuses a transactional producer whose message.timeout.ms exceeds
    # transaction.timeout.ms; the backstop after the core's deadline is capped at it.
    settings = make(delivery_timeout=delivery, transaction_timeout=transaction)._to_librdkafka()
    assert settings["message.timeout.ms"] == message_timeout_ms
    assert settings["transaction.timeout.ms"] == int(transaction * 1000)
    Producer(settings).flush(0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"spool_path": "spool.db"},
            "spool_path is refused with a transactional_id: the spool re-sends its events on "
            "the next start, outside the transaction they belonged to; for events that must "
            "survive the process, write them with the database transaction (transactional "
            "outbox)",
        ),
        (
            {"dead_letter": eventwire.DeadLetterPolicy(topic="dlq")},
            "dead_letter is refused with a transactional_id: an event that fails makes its "
            "transaction abort, and a dead-letter record written in that transaction would be "
            "aborted with it; catch TransactionAbortedError and run the transaction again",
        ),
        (
            {"retry": RetryPolicy(attempts=3)},
            "retry=RetryPolicy(attempts=3, deadline=60.0, base=0.2, cap=10.0, jitter=0.5, "
            "retry_ambiguous=True) is refused with a transactional_id: an event that fails in "
            "a transaction cannot be re-sent into it (librdkafka requires an abort); give "
            "RetryPolicy.never() or leave retry unset, and run the whole transaction again on "
            "TransactionAbortedError",
        ),
        (
            {"delivery_timeout": 120.0},
            "delivery_timeout (120 s) must not exceed transaction_timeout (60 s) with a "
            "transactional_id: an event not acknowledged before its transaction times out "
            "cannot commit with it (lower delivery_timeout or raise transaction_timeout)",
        ),
        ({"transactional_id": ""}, "transactional_id must be a non-empty str or None, got ''"),
        ({"transactional_id": 7}, "transactional_id must be a non-empty str or None, got 7"),
        (
            {"transaction_timeout": 0.5},
            "transaction_timeout must be from 1 to 2.14748e+06 seconds (librdkafka "
            "transaction.timeout.ms), got 0.5",
        ),
        (
            {"transaction_timeout": float("inf")},
            "transaction_timeout must be a finite number of seconds greater than 0, got inf",
        ),
        (
            {"transaction_timeout": 1.0, "linger_ms": 2000},
            "transaction_timeout (1 s) bounds delivery_timeout, which must be greater than the "
            "linger time (2000 ms)",
        ),
        (
            {"librdkafka_overrides": {"transaction.timeout.ms": 1000}},
            "librdkafka_overrides['transaction.timeout.ms'] is refused: eventwire sets it; use "
            "the transaction_timeout field (seconds)",
        ),
    ],
)
def test_refusals(changes: dict[str, Any], message: str) -> None:
    refused(message, **changes)


def test_transaction_needs_a_transactional_id() -> None:
    publisher = FakePublisher()
    with pytest.raises(ConfigError, match=r"^transaction\(\) needs a transactional publisher"):
        publisher.transaction()


# -- the fakes ------------------------------------------------------------------------------------


def fake(broker: MemoryBroker | None = None, **changes: Any) -> FakePublisher:
    return FakePublisher(make(**changes), broker=broker)


def async_fake(broker: MemoryBroker | None = None, **changes: Any) -> AsyncFakePublisher:
    return AsyncFakePublisher(make(**changes), broker=broker)


def test_a_committed_transaction_is_published_whole_and_an_aborted_one_not_at_all() -> None:
    publisher = fake()
    with publisher.transaction() as tx:
        first = tx.publish(order(1))
        rest = tx.publish_many([order(2), payment(3)])
        assert publisher.published() == []  # written, not committed
    assert tx.committed
    assert tx.receipts == (first, *rest)
    publisher.assert_published(order(1), order(2), payment(3))

    aborted = publisher.transaction()
    with pytest.raises(RuntimeError, match="the block failed"), aborted:
        _publish_then_fail(aborted)
    assert not aborted.committed
    assert len(aborted.receipts) == 1
    publisher.assert_published(order(1), order(2), payment(3))  # nothing of it
    with publisher.transaction() as later:
        receipt = later.publish(order(5))
    assert receipt.offset > aborted.receipts[0].offset  # offsets go on, as on a broker
    publisher.assert_published(order(1), order(2), payment(3), order(5))


def test_published_shows_the_events_given_in_a_transaction_as_given() -> None:
    @eventwire.event(topic="orders", key="order_id", type="tx.placed", version=1)
    class Placed(msgspec.Struct, frozen=True, kw_only=True):
        order_id: str

    # Another class with the same type and version (another module of the process): the
    # fake shows what the transaction published, not a decode by the other class.
    with pytest.warns(eventwire.EventDefinitionWarning):

        @eventwire.event(topic="orders", key="order_id", type="tx.placed", version=1)
        class Other(msgspec.Struct, frozen=True, kw_only=True):
            order_id: int

    publisher = fake()
    with publisher.transaction() as tx:
        tx.publish(Placed(order_id="a"))
        tx.publish_many([Placed(order_id="b")])
    publisher.assert_published(Placed(order_id="a"), Placed(order_id="b"))


def test_an_encoded_event_is_published_as_it_is() -> None:
    publisher = fake(topic_prefix="staging.")
    codec = EventCodec(
        encoding="json", validate=True, source="/outbox", resolve_topic=lambda t: "stored." + t
    )
    stored = codec.encode(order(1), key="k-1", headers={"tenant": "acme"})
    with publisher.transaction() as tx:
        first = tx.publish(stored)
        [second] = tx.publish_many([codec.encode(order(2))])
    assert (first.topic, first.event_id) == ("stored.orders", stored.event_id)  # not remapped
    assert second.topic == "stored.orders"
    [record, _] = publisher.published()
    assert (record.key, record.value, record.header("tenant")) == (b"k-1", stored.value, b"acme")
    assert record.event_type == "order.placed"
    refused = publisher.transaction()
    with pytest.raises(TransactionAbortedError), refused:
        _publish_with_a_key(refused, stored)
    assert len(publisher.published()) == 2


def _publish_with_a_key(tx: eventwire.transactions.Transaction, stored: Any) -> None:
    with pytest.raises(ValueError, match="as it was encoded: give no topic, key or headers"):
        tx.publish(stored, key="other")


def _publish_then_fail(tx: eventwire.transactions.Transaction) -> None:
    tx.publish(order(4))
    raise RuntimeError("the block failed")


async def test_the_async_twin_commits_and_aborts_the_same() -> None:
    publisher = async_fake()
    async with publisher.transaction() as tx:
        receipts = await asyncio.gather(tx.publish(order(1)), tx.publish(order(2)))
        more = await tx.publish_many([payment(3)])
    assert tx.committed
    assert sorted(tx.receipts, key=repr) == sorted([*receipts, *more], key=repr)

    async def fail() -> None:
        async with publisher.transaction() as aborted:
            await aborted.publish(order(4))
            raise RuntimeError("the block failed")

    with pytest.raises(RuntimeError, match="the block failed"):
        await fail()
    published = sorted(repr(r.event) for r in publisher.published())
    assert published == sorted(repr(e) for e in (order(1), order(2), payment(3)))
    await publisher.aclose()


def test_a_failed_event_dooms_the_transaction_even_when_the_block_caught_it() -> None:
    publisher = fake()
    publisher.fail_nth(2, eventwire.PermanentPublishError)
    caught: list[eventwire.PublishError] = []

    def publish_three(tx: eventwire.transactions.Transaction) -> None:
        tx.publish(order(1))
        try:
            tx.publish(order(2))
        except eventwire.PermanentPublishError as exc:
            caught.append(exc)
        with pytest.raises(TransactionAbortedError, match="cannot commit: a call in it failed"):
            tx.publish(order(3))  # nothing more goes into a transaction that must abort

    tx = publisher.transaction()
    with pytest.raises(TransactionAbortedError) as aborted, tx:
        publish_three(tx)
    [failure] = caught
    assert aborted.value.__cause__ is failure
    assert aborted.value.code == "INVALID_RECORD"  # the fakes' PermanentPublishError
    assert aborted.value.transactional_id == "orders-1"
    assert str(aborted.value) == (
        "transaction of 'orders-1' aborted: a call in it failed (PermanentPublishError: "
        f"{failure}); nothing of it is visible: run it again"
    )
    assert publisher.published() == []
    assert failure.attempts == 1  # never retried inside a transaction


def test_an_invalid_event_in_a_batch_sends_nothing_and_dooms_the_transaction() -> None:
    publisher = fake()
    tx = publisher.transaction()

    def publish_a_bad_batch() -> None:
        with pytest.raises(eventwire.EventValidationError):
            tx.publish_many([order(1), order(2, currency="euro")])
        assert tx.receipts == ()  # validated first: nothing was produced

    with pytest.raises(TransactionAbortedError, match="EventValidationError"), tx:
        publish_a_bad_batch()
    assert publisher.published() == []


async def test_hostile_call_arguments_in_a_transaction_are_that_events_validation_error() -> None:
    # The codec is the one boundary for hostile input (a header name with a lone surrogate
    # crashed confluent-kafka in produce()): inside a transaction too, it is that event's
    # EventValidationError, nothing is produced, and the transaction aborts.
    publisher = async_fake()
    tx = publisher.transaction()

    async def publish_hostile() -> None:
        await tx.publish(order(1))
        with pytest.raises(eventwire.EventValidationError) as caught:
            await tx.publish(order(2), headers={"h\udc80": b"v"})
        assert caught.value.path == "headers"
        with pytest.raises(eventwire.EventValidationError) as caught:
            await tx.publish(order(3), key="k\ud800")
        assert caught.value.path == "key"

    with pytest.raises(TransactionAbortedError, match="EventValidationError"):
        async with tx:
            await publish_hostile()
    assert len(tx.receipts) == 1
    assert publisher.published() == []


def test_outside_a_transaction_a_transactional_publisher_refuses_events() -> None:
    publisher = fake()
    message = (
        "publisher is transactional (transactional_id='orders-1'): publish inside `with "
        "publisher.transaction() as tx:` with tx.publish()/tx.publish_many(); librdkafka puts "
        "every record of a transactional producer in the open transaction, so an event "
        "published beside one would commit or abort with it (nothing was sent)"
    )
    with pytest.raises(TransactionStateError, match=f"^{re.escape(message)}$"):
        publisher.publish(order(1))
    with publisher.transaction() as tx:
        tx.publish(order(2))
        with pytest.raises(TransactionStateError, match=re.escape(message)):
            publisher.publish_many([order(3)])  # not beside an open one either
    publisher.assert_published(order(2))
    assert isinstance(TransactionStateError("x"), RuntimeError)


def test_one_transaction_at_a_time_and_each_is_used_once() -> None:
    publisher = fake()
    with publisher.transaction() as tx:
        with pytest.raises(TransactionStateError, match="one transaction at a time"):
            publisher.transaction().__enter__()
        tx.publish(order(1))
    with pytest.raises(TransactionStateError, match=r"^this transaction has ended \(committed\)"):
        tx.publish(order(2))
    with pytest.raises(TransactionStateError, match="entered once"):
        tx.__enter__()
    with pytest.raises(TransactionStateError, match="has not begun"):
        publisher.transaction().publish(order(3))
    publisher.assert_published(order(1))


def test_a_second_instance_fences_the_first() -> None:
    broker = MemoryBroker()
    old, new = fake(broker), fake(broker)
    zombie = old.transaction()

    def taken_over() -> None:
        zombie.publish(order(1))
        with new.transaction() as successor:
            successor.publish(order(2))

    with pytest.raises(ProducerFencedError) as caught, zombie:
        taken_over()
    assert caught.value.code == "_FENCED"
    assert str(caught.value).startswith(
        "transactional producer 'orders-1' was fenced while committing: a newer producer with "
        "the same transactional_id took over (_FENCED: "
    )
    assert isinstance(caught.value, FatalTransactionError)
    with pytest.raises(ProducerFencedError) as again:
        old.transaction().__enter__()
    assert again.value.__cause__ is caught.value
    assert "transactional producer failed (_FENCED)" in old.health().reasons
    assert [r.event for r in new.published()] == [order(2)]
    old.close()


def test_offsets_sent_in_a_transaction_are_kept_only_when_it_commits() -> None:
    publisher = fake()
    broker = publisher._broker

    class Consumer:
        def consumer_group_metadata(self) -> str:
            return "group-a"

    with publisher.transaction() as tx:
        tx.publish(order(1))
        tx.send_offsets(Consumer(), [TopicPartition("in", 0, 5)])
    aborted = publisher.transaction()
    with pytest.raises(RuntimeError), aborted:
        _send_offsets_then_fail(aborted, Consumer())
    [(group, [offset])] = broker.transaction_offsets
    assert (group, offset.topic, offset.offset) == ("group-a", "in", 5)


def _send_offsets_then_fail(tx: eventwire.transactions.Transaction, consumer: Any) -> None:
    tx.send_offsets(consumer, [TopicPartition("in", 0, 9)])
    raise RuntimeError("transform failed")


async def test_a_close_aborts_the_open_transaction() -> None:
    publisher = async_fake()
    opened = asyncio.Event()
    release = asyncio.Event()

    async def long_transaction() -> None:
        async with publisher.transaction() as tx:
            await tx.publish(order(1))
            opened.set()
            await release.wait()

    task = asyncio.ensure_future(long_transaction())
    await opened.wait()
    report = await publisher.aclose(timeout=2.0)
    assert report.delivered == 1
    release.set()
    with pytest.raises(TransactionAbortedError, match="the publisher was closed while it was open"):
        await task
    assert publisher.published() == []


# -- the end, when librdkafka's calls fail --------------------------------------------------------


class Scripted:
    """A transport factory over a ``MemoryBroker`` whose transaction calls first raise the
    given errors, in order, per call name (or, given a function of the call's arguments,
    the error it returns, if any); every call is recorded."""

    def __init__(self, **errors: list[KafkaError] | Callable[..., KafkaError | None]) -> None:
        self.broker = MemoryBroker()
        self.errors = errors
        self.calls: list[str] = []

    def __call__(self, settings: Mapping[str, object]) -> Transport:
        inner = self.broker.transport(settings)
        script = self

        class ScriptedTransport:
            def __getattr__(self, name: str) -> Any:
                attribute = getattr(inner, name)
                if not name.endswith("_transaction") and name != "init_transactions":
                    return attribute

                def call(*args: Any) -> Any:
                    script.calls.append(name)
                    pending = script.errors.get(name)
                    error = (
                        pending(*args) if callable(pending) else pending.pop(0) if pending else None
                    )
                    if error is not None:
                        raise KafkaException(error)
                    return attribute(*args)

                return call

            def __len__(self) -> int:
                return len(inner)

        transport: Any = ScriptedTransport()
        return transport  # type: ignore[no-any-return]


def _published_in(
    publisher: eventwire.Publisher, *events: Any
) -> eventwire.transactions.Transaction:
    with publisher.transaction() as tx:
        tx.publish_many(list(events))
    return tx


def test_a_commit_that_requires_an_abort_is_aborted_then_raised() -> None:
    needs_abort = KafkaError(KafkaError.INVALID_RECORD, "bad", txn_requires_abort=True)
    script = Scripted(commit_transaction=[needs_abort])
    publisher = eventwire.Publisher(make(), transport=script)
    with pytest.raises(TransactionAbortedError) as caught:
        _published_in(publisher, order(1))
    assert caught.value.code == "INVALID_RECORD"
    assert isinstance(caught.value.__cause__, KafkaException)
    assert script.calls == [
        "init_transactions",
        "begin_transaction",
        "commit_transaction",
        "abort_transaction",
    ]
    assert script.broker.records == []
    tx = _published_in(publisher, order(2))  # the publisher goes on
    assert tx.committed
    publisher.close()


def test_a_commit_that_timed_out_is_resumed() -> None:
    timed_out = KafkaError(KafkaError._TIMED_OUT, "retry call to resume", retriable=True)
    script = Scripted(commit_transaction=[timed_out, timed_out])
    publisher = eventwire.Publisher(make(), transport=script)
    assert _published_in(publisher, order(1)).committed
    assert script.calls.count("commit_transaction") == 3
    assert len(script.broker.records) == 1
    publisher.close()


def test_a_commit_never_confirmed_is_ambiguous_and_final() -> None:
    timed_out = KafkaError(KafkaError._TIMED_OUT, "retry call to resume", retriable=True)

    def never_confirmed(timeout: float) -> KafkaError:
        time.sleep(timeout)  # as librdkafka: the call waits its timeout out
        return timed_out

    script = Scripted(commit_transaction=never_confirmed)
    publisher = eventwire.Publisher(make(transaction_timeout=1.0), transport=script)
    with pytest.raises(AmbiguousTransactionError) as caught:
        _published_in(publisher, order(1))
    assert isinstance(caught.value, FatalTransactionError)
    assert str(caught.value).startswith(
        "the commit of a transaction of 'orders-1' was not confirmed within "
        "transaction_timeout (1 s) (_TIMED_OUT: retry call to resume): the transaction "
        "coordinator committed or aborted it, and this producer cannot tell which."
    )
    assert script.calls.count("commit_transaction") >= 4  # called in slices of 0.25 s
    with pytest.raises(AmbiguousTransactionError):
        _published_in(publisher, order(2))
    publisher.close()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (KafkaError(KafkaError._FENCED, fatal=True), ProducerFencedError),
        (KafkaError(KafkaError.PRODUCER_FENCED, fatal=True), ProducerFencedError),
        (
            KafkaError(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, fatal=True),
            FatalTransactionError,
        ),
        (KafkaError(KafkaError.INVALID_TRANSACTION_TIMEOUT), TransactionAbortedError),
    ],
)
def test_init_errors_are_typed(error: KafkaError, expected: type[Exception]) -> None:
    script = Scripted(init_transactions=[error])
    publisher = eventwire.Publisher(make(), transport=script)
    with pytest.raises(expected) as caught:
        _published_in(publisher, order(1))
    assert type(caught.value) is expected
    if expected is TransactionAbortedError:  # not fatal: the next transaction tries again
        assert _published_in(publisher, order(2)).committed
    publisher.close()


def test_an_unreachable_cluster_at_init_is_retried_within_the_timeout() -> None:
    timed_out = KafkaError(KafkaError._TIMED_OUT, "coordinator unavailable", retriable=True)
    script = Scripted(init_transactions=[timed_out, timed_out])
    publisher = eventwire.Publisher(make(), transport=script)
    assert _published_in(publisher, order(1)).committed
    assert script.calls[:4] == ["init_transactions"] * 3 + ["begin_transaction"]
    publisher.close()


# -- the core's delivery deadline inside a transaction ------------------------------------------


async def test_an_event_past_its_deadline_aborts_the_transaction_and_keeps_the_producer() -> None:
    # The core times attempts out at delivery_timeout and, for an event still in flight,
    # replaces the producer (_core.deadlines). A transactional producer is never swapped
    # mid-transaction (a new one would need init_transactions, fencing nothing but itself, and
    # the open transaction would be neither committed nor aborted): the event fails when
    # librdkafka's backstop (capped at transaction.timeout.ms) reports it, the transaction is
    # aborted, and the same producer runs the next one.
    broker = MemoryBroker(partitions=1)
    config = make(delivery_timeout=0.5, transaction_timeout=1.0)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config, transport=broker.transport) as publisher:
            broker.set_delay(60.0)  # the broker holds the record: in flight, never answered
            tx = publisher.transaction()
            with pytest.raises(eventwire.PublishError, match="timed out") as failed:
                async with tx:
                    await tx.publish(order(1))
            assert not tx.committed
            assert failed.value.attempts == 1
            broker.set_delay(0.0)
            async with publisher.transaction() as later:
                await later.publish(order(2))
            assert later.committed
    assert [msgspec.json.decode(r.value)["order_id"] for r in broker.records] == [order(2).order_id]
    events = [log["event"] for log in logs]
    assert "eventwire.producer_recreated" not in events
    assert events.count("eventwire.transaction_aborted") == 1
