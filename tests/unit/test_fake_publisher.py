"""FakePublisher / AsyncFakePublisher beyond the contract suite: failure injection, delays,
assertion helpers, partition counts and the pytest fixtures."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import threading
import time
import uuid
from typing import Any

import msgspec
import pytest
from confluent_kafka import KafkaException
from hypothesis import given
from hypothesis import strategies as st

import eventwire
from eventwire.testing import AsyncFakePublisher, FakePublisher
from tests.events import BlobStored, OrderPlaced, PaymentCaptured, order, payment
from tests.murmur2 import java_partition
from tests.unit.test_murmur2_reference import JAVA_VECTORS

# Almost every bit of the hash shows in the partition with this many partitions.
MANY = 2**31 - 1


@pytest.mark.parametrize(("key", "signed"), JAVA_VECTORS)
def test_keys_are_placed_by_javas_murmur2(key: bytes, signed: int) -> None:
    fake = FakePublisher(partitions=MANY)
    assert fake.publish(payment(1), key=key).partition == (signed & 0x7FFFFFFF) % MANY


@given(st.binary(min_size=1, max_size=64))
def test_key_placement_matches_the_reference_murmur2(key: bytes) -> None:
    fake = FakePublisher(partitions=MANY)
    assert fake.publish(payment(1), key=key).partition == java_partition(key, MANY)


# -- failure injection -----------------------------------------------------------------------


def test_fail_nth_counts_handed_events_and_builds_the_real_error(
    fake_publisher: FakePublisher,
) -> None:
    fake_publisher.fail_nth(2, eventwire.AmbiguousPublishError)
    fake_publisher.publish(order(1))
    with pytest.raises(eventwire.EventValidationError):  # refused before: does not count
        fake_publisher.publish(order(2, currency="x"))
    with pytest.raises(eventwire.AmbiguousPublishError) as caught:
        fake_publisher.publish(order(3))
    error = caught.value
    assert (error.code, error.attempts, error.topic) == ("_MSG_TIMED_OUT", 5, "orders")
    assert str(error) == (
        f"event {error.event_id} to topic 'orders' failed (ambiguous, _MSG_TIMED_OUT): "
        "Local: Message timed out after 5 attempts"
    )
    assert isinstance(error.__cause__, KafkaException)
    fake_publisher.publish(order(4))
    fake_publisher.assert_published(order(1), order(4))
    report = fake_publisher.close()
    assert (report.delivered, report.failed) == (2, 1)


@pytest.mark.parametrize(
    ("code", "cls", "attempts"),
    [
        ("UNKNOWN_TOPIC_OR_PART", eventwire.RetriablePublishError, 5),
        ("TOPIC_AUTHORIZATION_FAILED", eventwire.AuthorizationError, 1),
        # Fatal: the producer is replaced and the event re-sent, as by the real publisher.
        ("_FATAL", eventwire.FatalPublishError, 5),
        ("PRODUCER_FENCED", eventwire.FatalPublishError, 5),
    ],
)
def test_fail_nth_by_code_takes_the_class_from_the_classification_table(
    code: str, cls: type[eventwire.PublishError], attempts: int
) -> None:
    fake = FakePublisher()
    fake.fail_nth(code=code)
    with pytest.raises(cls) as caught:
        fake.publish(payment(1))
    assert type(caught.value) is cls
    assert (caught.value.code, caught.value.attempts) == (code, attempts)


def test_fail_nth_refuses_what_cannot_happen(fake_publisher: FakePublisher) -> None:
    with pytest.raises(ValueError, match="classified permanent"):
        fake_publisher.fail_nth(1, eventwire.RetriablePublishError, code="MSG_SIZE_TOO_LARGE")
    with pytest.raises(ValueError, match="unknown librdkafka error name 'NOPE'"):
        fake_publisher.fail_nth(code="NOPE")
    with pytest.raises(ValueError, match="n must be >= 1"):
        fake_publisher.fail_nth(0)
    with pytest.raises(ValueError, match="cannot inject DeadLetteredError"):
        fake_publisher.fail_nth(1, eventwire.DeadLetteredError)


async def test_injected_failures_are_outcomes_in_publish_many(
    async_fake_publisher: AsyncFakePublisher,
) -> None:
    async_fake_publisher.fail_nth(2, eventwire.PermanentPublishError)
    async_fake_publisher.fail_nth(3, eventwire.RetriablePublishError)
    async_fake_publisher.fail_nth(5, eventwire.RetriablePublishError, times=1)
    outcomes = await async_fake_publisher.publish_many([order(n) for n in range(5)])
    assert [type(o).__name__ for o in outcomes] == [
        "DeliveryReceipt",
        "PermanentPublishError",
        "RetriablePublishError",
        "DeliveryReceipt",
        "DeliveryReceipt",
    ]
    assert outcomes[2].attempts == 5  # type: ignore[union-attr]  # the retry policy's
    assert async_fake_publisher.events(OrderPlaced) == [order(0), order(3), order(4)]


def _one_slot(timeout: float) -> eventwire.PublisherConfig:
    """A fake whose local queue holds one message: with delayed deliveries it stays full."""
    return eventwire.PublisherConfig(
        bootstrap_servers=eventwire.testing.FAKE_BOOTSTRAP,
        queue_full_timeout=timeout,
        librdkafka_overrides={"queue.buffering.max.messages": 1},
    )


@pytest.mark.parametrize("twin", ["sync", "async"])
async def test_publish_many_fails_later_events_of_a_key_that_found_no_room(twin: str) -> None:
    # As the real publishers: producing them would put them before the refused one.
    # The queue holds one message, delivered after 1 s: the second waits 0.7 s and is
    # refused; the third (another key) then finds room; the fourth would overtake the second.
    events = [order(1), order(1, notes="b"), order(2), order(1, notes="c")]
    config = _one_slot(0.7)
    fake: FakePublisher | AsyncFakePublisher
    if twin == "sync":
        fake = FakePublisher(config)
        fake.delay_deliveries(1.0)
        outcomes = fake.publish_many(events)
    else:
        fake = AsyncFakePublisher(config)
        fake.delay_deliveries(1.0)
        outcomes = await fake.publish_many(events)
    assert [type(o).__name__ for o in outcomes] == [
        "DeliveryReceipt",
        "QueueFullError",
        "DeliveryReceipt",
        "QueueFullError",
    ]
    assert "local producer queue stayed full for 0.7 s" in str(outcomes[1])
    assert outcomes[3].__cause__ is outcomes[1]
    assert "would have overtaken it" in str(outcomes[3])
    assert fake.events(OrderPlaced) == [order(1), order(2)]


async def test_open_breaker_fails_fast_after_validation(
    async_fake_publisher: AsyncFakePublisher,
) -> None:
    async_fake_publisher.open_breaker()
    assert async_fake_publisher.breaker_state == "open"
    with pytest.raises(eventwire.EventValidationError):
        await async_fake_publisher.publish(order(1, currency="x"))
    with pytest.raises(eventwire.CircuitOpenError, match=r"open \(_ALL_BROKERS_DOWN ") as caught:
        await async_fake_publisher.publish(order(1))
    assert caught.value.attempts == 0
    async_fake_publisher.close_breaker()
    assert async_fake_publisher.breaker_state == "closed"
    await async_fake_publisher.publish(order(2))
    async_fake_publisher.assert_published(order(2))


def test_open_breaker_needs_a_breaker() -> None:
    fake = FakePublisher(eventwire.PublisherConfig(bootstrap_servers="x:1", breaker=None))
    assert fake.breaker_state == "disabled"
    with pytest.raises(ValueError, match="no circuit breaker"):
        fake.open_breaker()


# -- delayed deliveries and close --------------------------------------------------------------


async def test_delayed_deliveries_are_outstanding_until_delivered() -> None:
    fake = AsyncFakePublisher()
    fake.delay_deliveries(0.05)
    task = asyncio.create_task(fake.publish_many([order(1), order(2)]))
    await asyncio.sleep(0)  # one loop turn: the task accepts both events and waits
    assert fake.outstanding == 2
    assert fake.published() == []
    report = await fake.aclose(timeout=10.0)
    assert report == eventwire.CloseReport(
        delivered=2, failed=0, undelivered=0, undelivered_event_ids=(), timed_out=False
    )
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in await task)


async def test_close_timeout_fails_delayed_deliveries_as_purged_in_flight() -> None:
    fake = AsyncFakePublisher()
    fake.delay_deliveries(60.0)
    task = asyncio.create_task(fake.publish(order(1)))
    await asyncio.sleep(0)
    report = await fake.aclose(timeout=0.0)
    assert report.timed_out
    assert report.undelivered == 1
    with pytest.raises(eventwire.AmbiguousPublishError, match="_PURGE_INFLIGHT") as caught:
        await task
    assert report.undelivered_event_ids == (caught.value.event_id,)
    assert fake.outstanding == 0
    assert fake.published() == []


def test_sync_close_timeout_fails_a_delayed_publish_in_another_thread() -> None:
    fake = FakePublisher()
    fake.delay_deliveries(5.0)
    outcome: list[object] = []

    def publish() -> None:
        try:
            outcome.append(fake.publish(order(1)))
        except eventwire.PublishError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=publish)
    worker.start()
    deadline = time.monotonic() + 10.0
    while fake.outstanding == 0 and time.monotonic() < deadline:
        time.sleep(0.001)  # the other thread's event is handed to the fake broker
    report = fake.close(timeout=0.0)
    worker.join(10.0)
    assert report.timed_out
    assert report.undelivered == 1
    [error] = outcome
    assert isinstance(error, eventwire.AmbiguousPublishError)
    assert fake.published() == []


class FrozenDatetime(dt.datetime):
    """What freezegun's ``datetime.now()`` returns: a subclass (``FakeDatetime``)."""


def test_a_datetime_subclass_is_refused_by_name(fake_publisher: FakePublisher) -> None:
    # msgspec encodes datetime itself only; docs/testing.md tells users of freezegun why.
    frozen = FrozenDatetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    with pytest.raises(eventwire.EventValidationError) as caught:
        fake_publisher.publish(order(1, created_at=frozen))
    assert str(caught.value) == (
        "invalid order.placed event at $.created_at: Expected `datetime`, got `FrozenDatetime`"
    )
    fake_publisher.publish(order(2))
    fake_publisher.assert_published(order(2))


def test_publishing_after_close_is_refused() -> None:
    with FakePublisher() as fake:
        fake.publish(order(1))
    assert fake.closed
    with pytest.raises(eventwire.PublisherClosedError, match="publisher is closed; create a new"):
        fake.publish(order(2))


async def test_async_context_manager_closes() -> None:
    async with AsyncFakePublisher() as fake:
        await fake.publish(order(1))
    assert fake.closed
    with pytest.raises(eventwire.PublisherClosedError):
        await fake.publish_many([order(2)])


# -- assertion helpers and placement ----------------------------------------------------------


def test_published_filters_and_assert_published(fake_publisher: FakePublisher) -> None:
    fake_publisher.publish_many([order(1), payment(1), order(2, key="k"), payment(2)])
    assert [r.event for r in fake_publisher.published(PaymentCaptured)] == [payment(1), payment(2)]
    assert [r.event for r in fake_publisher.published(key="k")] == [order(2, key="k")]
    assert len(fake_publisher.published(topic="orders")) == 2
    fake_publisher.assert_published(payment(1), payment(2), topic="payments")
    fake_publisher.assert_published(order(1), payment(2), exact=False)
    with pytest.raises(AssertionError, match=r"expected exactly \[\] to be published to 'orders'"):
        fake_publisher.assert_published(topic="orders")
    with pytest.raises(AssertionError, match="in order, among others"):
        fake_publisher.assert_published(payment(2), order(1), exact=False)
    [record] = fake_publisher.published(key="k")
    assert record.header("ce_type") == b"order.placed"
    assert record.header("missing") is None


def test_clear_forgets_records_but_offsets_keep_counting(fake_publisher: FakePublisher) -> None:
    first = fake_publisher.publish(order(1))
    fake_publisher.clear()
    fake_publisher.assert_published()
    second = fake_publisher.publish(order(1))
    assert (first.partition, second.offset) == (second.partition, first.offset + 1)


def test_partition_counts_per_topic_and_round_robin_without_key() -> None:
    fake = FakePublisher(partitions={"orders": 1, "blobs": 2})
    assert {fake.publish(order(n)).partition for n in range(20)} == {0}
    blobs = [fake.publish(BlobStored(name="b", data=str(n))).partition for n in range(4)]
    assert blobs == [0, 1, 0, 1]
    assert {fake.publish(payment(n)).partition for n in range(50)} == {0, 1, 2}
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        FakePublisher(partitions=0)


def test_fixtures_are_fresh_fakes(
    fake_publisher: FakePublisher, async_fake_publisher: AsyncFakePublisher
) -> None:
    assert isinstance(fake_publisher, eventwire.PublisherProtocol)
    assert isinstance(async_fake_publisher, eventwire.AsyncPublisherProtocol)
    assert fake_publisher.published() == async_fake_publisher.published() == []


# -- accept (the spool's API) ----------------------------------------------------------------


def _spooled(tmp_path: Any) -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(
        bootstrap_servers=eventwire.testing.FAKE_BOOTSTRAP,
        spool_path=tmp_path / "spool.db",
        retry=eventwire.RetryPolicy(attempts=2, base=0.001, cap=0.01),
        breaker=eventwire.BreakerPolicy(cooldown=0.1, probe_timeout=0.1),
    )


async def test_async_fake_accept_as_with_a_spool(tmp_path: Any) -> None:
    with pytest.raises(eventwire.ConfigError, match="needs a durable spool"):
        await AsyncFakePublisher().accept(order(1))
    fake = AsyncFakePublisher(_spooled(tmp_path))
    fake.open_breaker()  # a spool keeps events while the breaker is open
    # Fails 3 attempts: the policy's 2, then once more after the spool parked it.
    fake.fail_nth(2, eventwire.RetriablePublishError, times=3)
    fake.fail_nth(3, eventwire.PermanentPublishError)  # can never be delivered
    accepted = await fake.accept(order(1))
    many = await fake.accept_many([order(2), order(3, currency="euro"), order(4)])
    assert isinstance(many[1], eventwire.EventValidationError)
    handles = [accepted, many[0], many[2]]
    assert all(isinstance(h, eventwire.Accepted) for h in handles)
    first, second, third = (h for h in handles if isinstance(h, eventwire.Accepted))
    assert fake.outstanding == 3  # committed to the spool file, not sent
    assert not first.done()
    await asyncio.to_thread(fake.close_breaker)
    assert (await first.delivered()).event_id == first.event_id
    with pytest.raises(eventwire.PermanentPublishError):
        await third.delivered()
    assert (await second.delivered()).event_id == second.event_id
    assert {r.event_id for r in fake.published()} == {first.event_id, second.event_id}
    assert (tmp_path / "spool.db").exists()
    await fake.aclose()
    with pytest.raises(eventwire.PublisherClosedError):
        await fake.accept_many([order(5)])


def test_sync_fake_accept_as_with_a_spool(tmp_path: Any) -> None:
    with pytest.raises(eventwire.ConfigError, match="needs a durable spool"):
        FakePublisher().accept(order(1))
    fake = FakePublisher(_spooled(tmp_path))
    fake.fail_nth(3, eventwire.PermanentPublishError)
    accepted = fake.accept(order(1), key="k")
    assert accepted.wait_delivered(10).event_id == accepted.event_id
    many = fake.accept_many([order(2, currency="euro"), order(3), order(4)])
    assert [type(h).__name__ for h in many] == [
        "EventValidationError",
        "SyncAccepted",
        "SyncAccepted",
    ]
    delivered, refused = (h for h in many if isinstance(h, eventwire.SyncAccepted))
    assert delivered.wait_delivered().event_id == delivered.event_id
    with pytest.raises(eventwire.PermanentPublishError):
        refused.wait_delivered()
    assert [r.key for r in fake.published()] == [b"k", b"ord-000003"]


async def test_async_fake_refuses_another_event_loop_like_the_real_one() -> None:
    fake = AsyncFakePublisher()
    await fake.publish(order(1))
    errors: list[BaseException] = []

    async def elsewhere() -> None:
        for call in (lambda: fake.publish(order(2)), lambda: fake.publish_many([order(3)])):
            try:
                await call()
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    thread = threading.Thread(target=asyncio.run, args=(elsewhere(),))
    thread.start()
    await asyncio.to_thread(thread.join)
    assert [type(e) for e in errors] == [RuntimeError, RuntimeError]
    assert all("event loop" in str(e) and "nothing was sent" in str(e) for e in errors)
    assert [e.order_id for e in fake.events(OrderPlaced)] == ["ord-000001"]


@eventwire.event(topic="paid", key="invoice", type="test.paid", version=1)
class PaidByNumber(msgspec.Struct, frozen=True):
    invoice: int


@eventwire.event(topic="paid", key="payment_id", type="test.paid.uuid", version=1)
class PaidById(msgspec.Struct, frozen=True):
    payment_id: uuid.UUID


class _Tier(enum.IntEnum):
    GOLD = 3


@eventwire.event(topic="paid", key="tier", type="test.paid.tier", version=1)
class PaidByTier(msgspec.Struct, frozen=True):
    tier: _Tier


def test_published_takes_the_key_fields_own_value() -> None:
    # `published(Paid, key=7)` returned [] silently: the key was compared with the bytes.
    paid_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with FakePublisher() as fake:
        fake.publish_many([PaidByNumber(7), PaidByNumber(8), PaidById(paid_id)])
        fake.publish(PaidByTier(_Tier.GOLD))
        assert [r.event for r in fake.published(PaidByNumber, key=7)] == [PaidByNumber(7)]
        assert [r.event for r in fake.published(key=b"8")] == [PaidByNumber(8)]
        assert [r.event for r in fake.published(key=paid_id)] == [PaidById(paid_id)]
        assert [r.event for r in fake.published(key=_Tier.GOLD)] == [PaidByTier(_Tier.GOLD)]
        assert [r.key for r in fake.published(key=3)] == [b"3"]
        for wrong in (7.0, True, ["7"]):
            with pytest.raises(TypeError, match="a key is a str, int, UUID or bytes"):
                fake.published(key=wrong)  # type: ignore[arg-type]
