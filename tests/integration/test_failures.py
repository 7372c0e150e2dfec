"""Failure handling against real brokers: dead-letter topic, circuit breaker, retries through
injected faults, and recovery from a fenced producer. Everything is consumed back."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from confluent_kafka import KafkaError, KafkaException

import eventwire
from eventwire.testing import LocalBroker, ProxiedBroker, capture_logs
from eventwire.testing._broker import _free_port
from tests.brokers import ON_KAFKA_AND_TANSU, PROXIED_ON_KAFKA_AND_TANSU, Proxied
from tests.events import OrderPlaced, order
from tests.integration.conftest import PARTITIONS, StatefulBroker, Topics

FAST_RETRY = eventwire.RetryPolicy(attempts=8, deadline=60.0, base=0.05, cap=0.5, jitter=0.5)


def _ordered_by_key(records: list[Any]) -> dict[bytes, list[str]]:
    """Consumed notes per key, first occurrence of each ce_id only."""
    seen: set[bytes] = set()
    by_key: dict[bytes, list[str]] = defaultdict(list)
    for record in records:  # (partition, offset) order: per key, that is log order
        ce_id = record.header("ce_id")
        if ce_id in seen:
            continue
        seen.add(ce_id)
        by_key[record.key].append(msgspec.json.decode(record.value, type=OrderPlaced).notes)
    return dict(by_key)


def _published_by_key(events: list[OrderPlaced]) -> dict[bytes, list[str]]:
    by_key: dict[bytes, list[str]] = defaultdict(list)
    for event in events:
        by_key[event.order_id.encode()].append(event.notes or "")
    return dict(by_key)


#: The log lines that report a failure outcome (connection warnings are not outcomes).
OUTCOME_LINES = frozenset(
    {"eventwire.publish_failed", "eventwire.dead_lettered", "eventwire.dead_letter_failed"}
)


# -- dead-letter topic ---------------------------------------------------------------------


@ON_KAFKA_AND_TANSU
async def test_oversized_event_is_dead_lettered_with_error_headers(topics: Topics) -> None:
    topics.broker.create_topic(topics.name("orders.dlq"), 1)
    config = topics.config(dead_letter=eventwire.DeadLetterPolicy())
    big = order(9, notes="x" * 1_200_000)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            with pytest.raises(eventwire.DeadLetteredError) as caught:
                await publisher.publish(big)
            outcomes = await publisher.publish_many([order(1), big, order(2)])
    error = caught.value
    assert error.code == "MSG_SIZE_TOO_LARGE"
    assert isinstance(error.__cause__, eventwire.PermanentPublishError)
    assert error.dead_letter.topic == topics.name("orders.dlq")
    assert isinstance(outcomes[0], eventwire.DeliveryReceipt)
    assert isinstance(outcomes[1], eventwire.DeadLetteredError)
    assert isinstance(outcomes[2], eventwire.DeliveryReceipt)

    [first, second] = topics.broker.consume(topics.name("orders.dlq"), count=2)
    assert first.offset == error.dead_letter.offset
    assert first.key == b"ord-000009"
    assert first.value in (b"", None)  # too large for any topic: kept out, identified instead
    assert first.header("ce_id") == error.event_id.encode()
    assert first.header("ce_type") == b"order.placed"
    assert first.header("eventwire_error_class") == b"permanent"
    assert first.header("eventwire_error_code") == b"MSG_SIZE_TOO_LARGE"
    assert b"message.max.bytes" in (first.header("eventwire_error_message") or b"")
    assert first.header("eventwire_original_topic") == topics.name("orders").encode()
    assert first.header("eventwire_attempts") is not None
    assert first.header("eventwire_first_failure") is not None
    assert first.header("eventwire_last_failure") is not None
    size = len(msgspec.json.encode(big))
    assert first.header("eventwire_value_size") == str(size).encode()
    assert len(first.header("eventwire_value_sha256") or b"") == 64
    assert second.header("ce_id") != first.header("ce_id")
    # One line per failure outcome: the dead-lettering, not also a publish_failed.
    failure_lines = [log["event"] for log in logs if log["event"] in OUTCOME_LINES]
    assert failure_lines == ["eventwire.dead_lettered", "eventwire.dead_lettered"]
    assert len(topics.broker.consume(topics.name("orders"), count=2)) == 2


async def test_event_the_broker_refuses_as_too_large_is_dead_lettered(
    stateful_broker: StatefulBroker,
) -> None:
    # The broker-side refusal (Tansu has no limit): the produce response says
    # MSG_SIZE_TOO_LARGE. The dead-letter topic has the same limit, so the record keeps the
    # key and headers and identifies the value (size, sha256), as for librdkafka's refusal.
    broker, orders = stateful_broker.broker, stateful_broker.name("orders")
    broker.create_topics([orders, orders + ".dlq"], PARTITIONS)
    config = eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=stateful_broker.prefix,
        librdkafka_overrides={"message.max.bytes": 20_000_000},
        dead_letter=eventwire.DeadLetterPolicy(),
    )
    big = order(9, notes="x" * 3_000_000)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            outcomes = await publisher.publish_many([order(1), big, order(2)])
    [letter] = broker.consume(orders + ".dlq", count=1)
    delivered = broker.consume(orders, count=2)
    error = outcomes[1]
    assert isinstance(error, eventwire.DeadLetteredError)
    assert error.code == "MSG_SIZE_TOO_LARGE"
    assert isinstance(error.__cause__, eventwire.PermanentPublishError)
    assert (letter.partition, letter.offset) == (
        error.dead_letter.partition,
        error.dead_letter.offset,
    )
    assert letter.key == b"ord-000009"
    assert letter.value in (b"", None)
    assert letter.header("ce_id") == error.event_id.encode()
    assert letter.header("eventwire_error_class") == b"permanent"
    assert letter.header("eventwire_error_code") == b"MSG_SIZE_TOO_LARGE"
    assert b"Message size too large" in (letter.header("eventwire_error_message") or b"")
    assert letter.header("eventwire_original_topic") == orders.encode()
    assert letter.header("eventwire_attempts") == b"1"
    assert letter.header("eventwire_first_failure") is not None
    assert letter.header("eventwire_last_failure") is not None
    value = msgspec.json.encode(big)
    assert letter.header("eventwire_value_size") == str(len(value)).encode()
    assert letter.header("eventwire_value_sha256") == hashlib.sha256(value).hexdigest().encode()
    assert [o.event_id for o in (outcomes[0], outcomes[2])] == [
        (r.header("ce_id") or b"").decode() for r in sorted(delivered, key=lambda r: r.key or b"")
    ]
    failure_lines = [log["event"] for log in logs if log["event"] in OUTCOME_LINES]
    assert failure_lines == ["eventwire.dead_lettered"]


def _raising_topic(topic: str) -> str:
    raise LookupError(f"no route for {topic}")


@pytest.mark.parametrize(
    ("topic_of", "reason"),
    [
        (_raising_topic, b"LookupError: no route for"),
        (lambda topic: "bad name!", b"not a legal Kafka topic name"),
    ],
    ids=["callable-raises", "invalid-name"],
)
@ON_KAFKA_AND_TANSU
async def test_dead_letter_topic_that_cannot_be_named_gives_the_original_error(
    topics: Topics, topic_of: Callable[[str], str], reason: bytes
) -> None:
    # The event had left every queue when its dead-letter topic was asked for: it used to
    # be settled never (its caller waited for ever, close timed out with it undelivered).
    config = topics.config(dead_letter=eventwire.DeadLetterPolicy(topic=topic_of))
    big = order(9, notes="x" * 1_200_000)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            outcomes = await asyncio.wait_for(publisher.publish_many([order(1), big, order(2)]), 10)
            report = await publisher.aclose(timeout=5)
    assert isinstance(outcomes[0], eventwire.DeliveryReceipt)
    assert type(outcomes[1]) is eventwire.PermanentPublishError
    assert outcomes[1].code == "MSG_SIZE_TOO_LARGE"
    assert isinstance(outcomes[2], eventwire.DeliveryReceipt)
    assert (report.delivered, report.failed, report.undelivered) == (2, 1, 0)
    [line] = [log for log in logs if log["event"] in OUTCOME_LINES]
    assert line["event"] == "eventwire.dead_letter_failed"
    assert line["event_id"] == outcomes[1].event_id
    assert line["dead_letter_code"] == "_INVALID_DEAD_LETTER_TOPIC"
    assert reason in line["dead_letter_error"].encode()
    assert len(topics.broker.consume(topics.name("orders"), count=2)) == 2


@PROXIED_ON_KAFKA_AND_TANSU
async def test_exhausted_retries_are_dead_lettered_with_the_original_bytes(
    proxied: Proxied,
) -> None:
    proxied.create_topics(["orders", "orders.dlq", "warm-up"], 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        delivery_timeout=1.0,
        retry=eventwire.RetryPolicy(attempts=2, deadline=30.0, base=0.05, cap=0.1),
        dead_letter=eventwire.DeadLetterPolicy(),
        breaker=None,
    )
    event = order(5)
    async with eventwire.AsyncPublisher(config) as publisher:
        # The first publish fetches the producer id: on a busy machine over 2 x 1 s, and a
        # warm-up to "orders" then landed in orders.dlq. "warm-up.dlq" does not exist.
        for _ in range(5):
            with contextlib.suppress(eventwire.PublishError):
                await publisher.publish(order(0), topic="warm-up")
                break
        await publisher.publish(order(1))  # and "orders" has known partitions
        proxied.proxy.cut()  # the broker is unreachable: both attempts time out (1 s each)
        task = asyncio.create_task(publisher.publish(event))
        # After the second attempt's timeout (~2.1 s, up to ~1 s later: librdkafka scans for
        # timeouts once a second), before the dead-letter write's third try gives up (>5 s).
        await asyncio.sleep(3.5)
        proxied.proxy.restore()  # the dead-letter write (retried if it times out) gets through
        with pytest.raises(eventwire.DeadLetteredError) as caught:
            await task
    error = caught.value
    assert error.attempts == 2
    assert isinstance(error.__cause__, eventwire.AmbiguousPublishError)
    [letter] = proxied.consume("orders.dlq", count=1)
    assert letter.value == msgspec.json.encode(event)  # the original bytes
    assert letter.key == b"ord-000005"
    assert letter.header("eventwire_attempts") == b"2"
    assert letter.header("ce_id") == error.event_id.encode()


@PROXIED_ON_KAFKA_AND_TANSU
async def test_a_dead_letter_write_that_fails_gives_the_caller_the_original_error(
    proxied: Proxied,
) -> None:
    # The cluster stays unreachable: the event's attempts time out, then so do the dead-letter
    # writes (retried, then given up). The caller must get the event's own error; the only
    # tests of a failed dead-lettering so far failed before any write (an unnamed topic).
    proxied.create_topics(["orders", "orders.dlq"], 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        # Above the first publish's ~0.5-1 s here (the idempotent producer's id is fetched first).
        delivery_timeout=2.0,
        retry=eventwire.RetryPolicy(attempts=2, deadline=30.0, base=0.05, cap=0.1),
        dead_letter=eventwire.DeadLetterPolicy(),
        breaker=None,
    )
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            await publisher.publish(order(0))
            proxied.proxy.cut()
            with pytest.raises(eventwire.PublishError) as caught:
                await asyncio.wait_for(publisher.publish(order(5)), 60)
            report = await publisher.aclose(timeout=5)
    error = caught.value
    assert not isinstance(error, eventwire.DeadLetteredError)
    assert (error.code, error.attempts, error.topic) == ("_MSG_TIMED_OUT", 2, "orders")
    assert (report.delivered, report.failed, report.undelivered) == (1, 1, 0)
    [line] = [log for log in logs if log["event"] in OUTCOME_LINES]
    assert line["event"] == "eventwire.dead_letter_failed"
    assert (line["event_id"], line["code"]) == (error.event_id, "_MSG_TIMED_OUT")
    assert line["dead_letter_code"] == "_MSG_TIMED_OUT"
    proxied.proxy.restore()
    assert [r.key for r in proxied.consume("orders")] == [b"ord-000000"]
    assert proxied.consume("orders.dlq") == []


# -- circuit breaker -------------------------------------------------------------------------


async def test_breaker_opens_when_broker_stops_and_closes_after_restart(
    private_broker: Callable[[], LocalBroker],
) -> None:
    broker = private_broker()
    broker.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers,
        breaker=eventwire.BreakerPolicy(failures=3, window=5.0, cooldown=0.5, probe_timeout=0.5),
        delivery_timeout=5.0,
    )
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            await publisher.publish(order(0))
            broker.stop()
            deadline = time.monotonic() + 10
            while publisher.breaker_state != "open":  # _ALL_BROKERS_DOWN from error_cb
                assert time.monotonic() < deadline, "the breaker never opened"
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            with pytest.raises(eventwire.CircuitOpenError, match="circuit breaker is open"):
                await publisher.publish(order(1))
            elapsed = time.perf_counter() - started
            assert elapsed < 0.010
            fast = []
            for n in range(100):
                started = time.perf_counter()
                with pytest.raises(eventwire.CircuitOpenError):
                    await publisher.publish(order(n))
                fast.append(time.perf_counter() - started)
            assert max(fast) < 0.010

            broker.restart()  # memory only: the topic is created again
            broker.create_topic("orders", 3)
            deadline = time.monotonic() + 30
            while True:
                try:
                    receipt = await publisher.publish(order(7))
                    break
                except (eventwire.CircuitOpenError, eventwire.PublishError):
                    assert time.monotonic() < deadline, "publishing never resumed"
                    await asyncio.sleep(0.1)
            assert receipt.topic == "orders"
            more = await publisher.publish_many([order(n) for n in range(10, 20)])
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in more)
    keys = {r.key for r in broker.consume("orders")}
    assert {b"ord-000007"} | {f"ord-{n:06d}".encode() for n in range(10, 20)} <= keys
    events = [log["event"] for log in logs]
    assert "eventwire.circuit_opened" in events
    assert "eventwire.circuit_closed" in events


async def test_events_queued_for_a_cluster_never_reached_fail_fast_then_it_recovers() -> None:
    """A mistyped address, or a cluster down since start: once the breaker opens, the events
    already queued fail with CircuitOpenError in seconds, not after ``delivery_timeout``
    (minutes); when a broker answers there, the same publisher delivers."""
    port = _free_port("127.0.0.1")
    config = eventwire.PublisherConfig(
        bootstrap_servers=f"127.0.0.1:{port}",
        breaker=eventwire.BreakerPolicy(cooldown=0.2, probe_timeout=0.5),
    )
    assert config.delivery_timeout >= 60  # the wait this saves
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            started = time.monotonic()
            outcomes = await publisher.publish_many([order(n) for n in range(20)])
            assert time.monotonic() - started < 10
            assert [type(o) for o in outcomes] == [eventwire.CircuitOpenError] * 20
            first = outcomes[0]
            assert isinstance(first, eventwire.CircuitOpenError)
            assert f"cluster at 127.0.0.1:{port} has not answered since the publisher" in str(first)
            assert first.attempts == 0
            assert isinstance(first.__cause__, KafkaException)
            assert first.__cause__.args[0].code() == KafkaError._PURGE_QUEUE
            with pytest.raises(eventwire.CircuitOpenError):  # new events: refused at once
                await publisher.publish(order(20))

            with LocalBroker(partitions=3, port=port) as broker:
                broker.create_topic("orders", 3)
                deadline = time.monotonic() + 30
                while True:  # until a probe of the open breaker reaches the broker
                    try:
                        receipt = await publisher.publish(order(21))
                        break
                    except eventwire.CircuitOpenError:
                        assert time.monotonic() < deadline, "the breaker never closed"
                        await asyncio.sleep(0.05)
                [record] = broker.consume("orders")
    assert record.value == msgspec.json.encode(order(21))
    assert (record.partition, record.offset) == (receipt.partition, receipt.offset)
    failed = [log for log in logs if log["event"] == "eventwire.publish_failed"]
    assert len(failed) == 20  # one line per failed event (the purged ones)
    assert not [log for log in logs if log["event"] == "eventwire.dead_lettered"]


def test_sync_publish_to_a_cluster_never_reached_fails_fast() -> None:
    port = _free_port("127.0.0.1")
    config = eventwire.PublisherConfig(
        bootstrap_servers=f"127.0.0.1:{port}",
        breaker=eventwire.BreakerPolicy(probe_timeout=0.5),
    )
    with eventwire.Publisher(config) as publisher:
        started = time.monotonic()
        with pytest.raises(eventwire.CircuitOpenError, match="has not answered since"):
            publisher.publish(order(0))
        assert time.monotonic() - started < 10
        report = publisher.close(timeout=1.0)
    assert (report.failed, report.undelivered, report.timed_out) == (1, 0, False)


@ON_KAFKA_AND_TANSU
def test_sasl_against_a_plaintext_broker_names_the_handshake_and_no_secret(
    topics: Topics,
) -> None:
    # The local broker speaks plaintext only: the SASL handshake fails on every connection. The
    # error used to say only that the cluster "has not answered" (the cause was in the logs).
    secret = "s3cret-pa55word"  # noqa: S105 - a fake secret the test hunts for
    config = topics.config(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="svc",
        sasl_password=secret,
        breaker=eventwire.BreakerPolicy(probe_timeout=0.5),
    )
    with capture_logs() as logs, eventwire.Publisher(config) as publisher:
        with pytest.raises((eventwire.AuthenticationError, eventwire.CircuitOpenError)) as raised:
            publisher.publish(order(0))
        report = publisher.close(timeout=1.0)
    message = str(raised.value)
    if isinstance(raised.value, eventwire.AuthenticationError):
        # Tansu names the mechanism: a typed refusal, at once (docs/security.md).
        assert "refuses this client, authentication failed: the listener at" in message
        assert "refused the SASL PLAIN handshake" in message
    else:
        # Apache Kafka's plaintext listener answers "Request not valid in current SASL state",
        # which a token re-authentication race also gives: the breaker, with the cause.
        assert "has not answered since" in message
        assert "last client error: _AUTHENTICATION" in message
        assert "SASL PLAIN mechanism handshake failed" in message
    assert secret not in message
    assert not [log for log in logs if secret in repr(log)]
    assert (report.delivered, report.failed) == (0, 1)
    assert topics.broker.consume(topics.name("orders")) == []


# -- retries through injected faults ---------------------------------------------------------


@PROXIED_ON_KAFKA_AND_TANSU
async def test_connection_resets_and_a_cut_are_retried_in_key_order(
    proxied: Proxied,
) -> None:
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        delivery_timeout=3.0,
        retry=FAST_RETRY,
        breaker=None,
    )
    events = [order(n, key=f"k{n % 10}") for n in range(3000)]
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            proxied.proxy.reset_every(0.2)
            first = asyncio.create_task(publisher.publish_many(events[:1500]))
            await asyncio.sleep(0.5)
            proxied.proxy.cut()
            await asyncio.sleep(0.5)
            proxied.proxy.restore()
            second = await publisher.publish_many(events[1500:])
            outcomes = [*await first, *second]
            proxied.proxy.reset_every(None)
    assert [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)] == []
    records = proxied.consume("orders", count=3000, timeout=60)
    assert _ordered_by_key(records) == _published_by_key(events)
    ids = Counter(r.header("ce_id") for r in records)
    duplicates = {i for i, n in ids.items() if n > 1}
    ambiguous = {
        log["event_id"].encode()
        for log in logs
        if log["event"] == "eventwire.retry_scheduled" and log["error_class"] == "ambiguous"
    }
    assert duplicates <= ambiguous  # a duplicate only where the outcome was ambiguous
    print(f"duplicates: {len(duplicates)}, ambiguous retries: {len(ambiguous)}")


async def test_fenced_producer_is_recreated_and_unacknowledged_events_resent(
    proxied: Proxied,
) -> None:
    """Tansu answers PRODUCER_FENCED to every message after one timed out (the idempotent
    producer bumped its epoch). A black hole longer than delivery_timeout makes messages time
    out; the core must recreate the producer and re-send, in order per key."""
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        delivery_timeout=1.0,
        retry=FAST_RETRY,
        breaker=None,
    )
    events = [order(n, key=f"k{n % 5}") for n in range(400)]
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            await publisher.publish_many(events[:100])
            proxied.proxy.blackhole()
            pending = asyncio.create_task(publisher.publish_many(events[100:300]))
            await asyncio.sleep(1.5)  # longer than delivery_timeout: messages time out
            proxied.proxy.restore()
            after = await publisher.publish_many(events[300:])
            outcomes = [*await pending, *after]
    assert [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)] == []
    names = [log["event"] for log in logs]
    assert "eventwire.producer_recreated" in names
    records = proxied.consume("orders", count=400, timeout=60)
    assert _ordered_by_key(records) == _published_by_key(events)
    ids = Counter(r.header("ce_id") for r in records)
    print(
        f"recreations: {names.count('eventwire.producer_recreated')}, "
        f"duplicates: {sum(1 for n in ids.values() if n > 1)}"
    )


async def test_a_fatal_client_error_replaces_the_producer_and_resends_in_key_order(
    proxied: Proxied,
) -> None:
    """The fatal-flag path, which the local broker never takes (the fenced test above ends in
    a replacement for the timeout, before Tansu's PRODUCER_FENCED): librdkafka reports a
    fatal error through ``error_cb`` (injected here, the one seam; librdkafka's own fatal
    injection is not in the Python client) while 200 events are held in flight by the proxy.
    Every event must arrive, in order per key; a duplicate only where the outcome was
    ambiguous, with the same ce_id."""
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers, retry=FAST_RETRY, breaker=None
    )
    events = [order(n, key=f"k{n % 5}") for n in range(400)]
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            first = await publisher.publish_many(events[:100])
            proxied.proxy.pause()
            pending = asyncio.create_task(publisher.publish_many(events[100:300]))
            await asyncio.sleep(0)  # each event handed to librdkafka
            publisher._core.client_errors(  # the seam, see the docstring
                KafkaError(KafkaError._FATAL, "injected fatal error", fatal=True)
            )
            deadline = time.monotonic() + 10
            while publisher._core.counters.recreations == 0:
                assert time.monotonic() < deadline, "the producer was never replaced"
                await asyncio.sleep(0.01)
            proxied.proxy.resume()
            after = await publisher.publish_many(events[300:])
            outcomes = [*first, *await pending, *after]
    assert [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)] == []
    [recreated] = [log for log in logs if log["event"] == "eventwire.producer_recreated"]
    assert recreated["reason"].startswith("fatal error _FATAL")
    records = proxied.consume("orders", count=400, timeout=60)
    assert _ordered_by_key(records) == _published_by_key(events)
    ids = Counter(r.header("ce_id") for r in records)
    assert set(ids) == {
        o.event_id.encode() for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)
    }
    ambiguous = {
        log["event_id"].encode()
        for log in logs
        if log["event"] == "eventwire.retry_scheduled" and log["error_class"] == "ambiguous"
    }
    assert {i for i, n in ids.items() if n > 1} <= ambiguous
    retried = sum(1 for log in logs if log["event"] == "eventwire.retry_scheduled")
    duplicates = sum(n > 1 for n in ids.values())
    print(f"re-sent: {retried}, ambiguous: {len(ambiguous)}, duplicates: {duplicates}")


@ON_KAFKA_AND_TANSU
async def test_a_refused_event_without_dead_letter_topic_is_one_failure_line(
    topics: Topics,
) -> None:
    big = order(8, notes="x" * 1_200_000)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(topics.config()) as publisher:
            outcomes = await publisher.publish_many([order(1), big])
    assert isinstance(outcomes[1], eventwire.PermanentPublishError)
    failures = [log for log in logs if log["event"] in OUTCOME_LINES]
    assert [(log["event"], log["code"], log["event_id"]) for log in failures] == [
        ("eventwire.publish_failed", "MSG_SIZE_TOO_LARGE", outcomes[1].event_id)
    ]


# -- missing topic ---------------------------------------------------------------------------


def test_no_partition_while_the_cluster_is_unreachable_blames_the_cluster_not_the_topic() -> None:
    """A topic whose metadata never came because the cluster did not answer was reported as
    "has no known partition (does it exist?)", pointing away from the outage."""
    config = {
        "delivery_timeout": 3.0,
        "retry": eventwire.RetryPolicy.never(),
        "breaker": None,  # the event waits for its timeout instead of failing fast
    }
    with ProxiedBroker(partitions=1) as broker:
        known = broker.unique_topic("known")
        settings = eventwire.PublisherConfig(bootstrap_servers=broker.bootstrap_servers, **config)
        with eventwire.Publisher(settings) as publisher:
            publisher.publish(order(1), topic=known)  # the cluster has answered
            broker.proxy.cut()
            with pytest.raises(eventwire.RetriablePublishError) as cut:
                publisher.publish(order(2), topic="never-seen")
            broker.proxy.restore()
    message = str(cut.value)
    assert message.startswith(
        f"no partition of topic 'never-seen' is known: the cluster at {broker.bootstrap_servers}"
        " did not answer while the event waited (unreachable); last client error: "
    ), message
    assert "does it exist" not in message

    nowhere = f"127.0.0.1:{_free_port('127.0.0.1')}"
    settings = eventwire.PublisherConfig(bootstrap_servers=nowhere, **config)
    with (
        eventwire.Publisher(settings) as publisher,
        pytest.raises(eventwire.RetriablePublishError) as never,
    ):
        publisher.publish(order(3), topic="orders")
    message = str(never.value)
    assert message.startswith(
        f"no partition of topic 'orders' is known: the cluster at {nowhere} has not answered"
        " since the publisher started; last client error: _TRANSPORT: "
    ), message
    assert "does it exist" not in message


@ON_KAFKA_AND_TANSU
async def test_a_missing_topic_times_out_as_never_sent_without_replacing_the_producer(
    topics: Topics,
) -> None:
    """With auto-creation off (Tansu honours the client's flag), an event for a missing topic
    never gets a partition: its timeout is retriable (never sent, not ambiguous) and names the
    topic. It neither replaces the producer, which re-sent what the other topics had in flight
    as ambiguous, nor counts toward the breaker, which opened for every topic after five such
    events (qa5a finding)."""
    config = topics.config(
        delivery_timeout=5.0,  # the missing topic's events wait this long; 1 s flaked under load
        retry=eventwire.RetryPolicy.never(),
        librdkafka_overrides={"allow.auto.create.topics": False},
    )
    others = [order(n) for n in range(1, 40)]
    strays = [order(n) for n in range(100, 106)]  # more than the breaker's 5 failures
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            first = await publisher.publish(order(0))  # the cluster has answered
            missing, outcomes = await asyncio.gather(
                publisher.publish_many(strays, topic="missing"),
                publisher.publish_many(others),
            )
            state = publisher.breaker_state
            after = await publisher.publish(order(40))
    for error in missing:
        assert isinstance(error, eventwire.RetriablePublishError), repr(error)
        assert error.code == "_MSG_TIMED_OUT"
        assert error.topic == topics.name("missing")
        assert f"topic {topics.name('missing')!r} has no known partition" in str(error)
    assert state == "closed"
    assert not [line for line in logs if line["event"] == "eventwire.producer_recreated"]
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes), outcomes
    records = topics.broker.consume(topics.name("orders"), count=len(others) + 2)
    ids = Counter(r.header("ce_id") for r in records)
    assert sorted(ids.values()) == [1] * (len(others) + 2)
    assert {first.event_id.encode(), after.event_id.encode()} <= set(ids)
