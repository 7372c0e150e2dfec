"""Broker faults on Apache Kafka's 3-broker cluster (RF 3, ``min.insync.replicas=2``): the
session's ``kafka_cluster``, restored after each test (every broker running, every ISR full).

Each test publishes ``EVENTWIRE_FAULT_EVENTS`` ticks while brokers are killed, stopped or
paused, reads the topic back and compares it with what each caller was told (the fault suite's
tally): every event read back exactly once, every key complete and in publishing order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import msgspec
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import eventwire
from eventwire.testing import KafkaCluster, capture_logs
from tests.faults.conftest import (
    EVENTS,
    Fault,
    Run,
    Tally,
    Tick,
    assert_all_delivered_in_order,
    publish_under_faults,
    publisher_config,
    tally,
    ticks,
)
from tests.integration.spool_runs import (
    Child,
    Children,
    accepted_ids,
    assert_none_lost,
    per_key_first_seen_in_order,
    record_ids,
    replay,
    spooled_ids,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240 + EVENTS // 250)]

#: Seconds an event may wait for a broker that was killed to be fenced (6 s) and its
#: partitions to get new leaders: far more than that, far less than the default 120 s.
DELIVERY_TIMEOUT = 60.0
#: Bytes a tick takes in a produce request: ~300 of JSON, ~250 of headers, the record's own.
RECORD_BYTES = 600
#: librdkafka reconnects to a restarted broker at once.
FAST_RECONNECT = {"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200}


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The session's cluster; every broker running and every ISR full again afterwards."""
    yield kafka_cluster
    kafka_cluster.restore()


@pytest.fixture
def topic(cluster: KafkaCluster) -> str:
    """A fresh 3-partition topic (RF 3) for the ticks."""
    return cluster.unique_topic("ticks", partitions=3)


def _config(
    cluster: KafkaCluster, topic: str, spool_mode: str = "spool-off", tmp_path: Path | None = None
) -> eventwire.PublisherConfig:
    return publisher_config(
        spool_mode,
        cluster.bootstrap_servers,
        tmp_path,
        topic_map={"ticks": topic},
        delivery_timeout=DELIVERY_TIMEOUT,
        librdkafka_overrides=FAST_RECONNECT,
    )


def _read_back(cluster: KafkaCluster, topic: str) -> list[eventwire.testing.ConsumedRecord]:
    # count=None reads every partition to its end: duplicates beyond the count show up too.
    return cluster.consume(topic, timeout=60 + EVENTS / 2000)


def assert_exactly_once_in_order(counts: Tally) -> None:
    """Every event read back exactly once (not even a duplicate explained by an ambiguous
    outcome), every key complete and in publishing order."""
    assert_all_delivered_in_order(counts)
    assert counts.duplicates == 0
    assert counts.order_violations == 0
    assert counts.consumed == counts.published


def _receipts(outcomes: Sequence[eventwire.PublishOutcome]) -> list[eventwire.DeliveryReceipt]:
    """``outcomes``, each of which must be a receipt."""
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]


def _await_new_leader(cluster: KafkaCluster, topic: str, old: int) -> None:
    """Wait until partition 0 of ``topic`` has a leader other than ``old`` (the controller
    fences a broker that stopped heartbeating after 6 s)."""
    deadline = time.monotonic() + 60
    while cluster.leader(topic, 0) == old:
        assert time.monotonic() < deadline, f"broker {old} still leads {topic}/0 after 60 s"
        time.sleep(0.2)


async def _settled_beyond(run: Run, what: str, within: float = 90.0) -> None:
    """Wait until more events settle than now (or all of them have)."""
    settled = run.settled
    await run.until(
        lambda: run.settled > settled or run.settled == run.submitted, within=within, what=what
    )


# -- a killed leader -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxied_cluster() -> Iterator[KafkaCluster]:
    """3 brokers behind a `FaultProxy` each, so a broker's answers can be lost while it
    writes and replicates (replication does not go through the proxies). A restarted broker
    gets its leaderships back within seconds (the preferred-leader check runs every 2 s, not
    every 5 min), as a rolling restart waits for before it takes the next broker."""
    with KafkaCluster(
        brokers=3, proxied=True, server_properties={"leader.imbalance.check.interval.seconds": 2}
    ) as own:
        yield own


@pytest.fixture
def proxied(proxied_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The module's proxied cluster; every broker running, its proxy letting everything
    through and every ISR full again afterwards."""
    yield proxied_cluster
    for broker in proxied_cluster.broker_ids:
        proxied_cluster.proxy(broker).restore()
    proxied_cluster.restore()


async def _answers_lost(cluster: KafkaCluster, broker: int, run: Run) -> None:
    """Once produce requests flow to the broker, its answers are lost on the way (its proxy
    black-holes them) while requests still reach it; returns once an answer was lost: a batch
    it wrote and replicated without the client hearing of it. ``restore`` the proxy
    afterwards."""
    proxy = cluster.proxy(broker)
    before = proxy.bytes_up
    await run.until(
        lambda: proxy.bytes_up > before + 3_000, within=30, what=f"requests to broker {broker}"
    )
    dropped = proxy.bytes_dropped
    proxy.blackhole("downstream")
    await run.until(
        lambda: proxy.bytes_dropped > dropped,
        within=30,
        what=f"answers of broker {broker} lost",
    )


async def test_leader_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(
    proxied: KafkaCluster, report: Callable[[Tally], None]
) -> None:
    """The leader of partition 0 is SIGKILLed (no controlled shutdown) at 30 % of the run,
    the answers it was sending lost with it (made a window of 20 kB of requests wide by its
    proxy); the controller fences it after its session timeout and moves its partitions to
    the other replicas, which carry on (2 in sync of 3). It starts again at 70 %. Every event
    arrives exactly once, in key order: idempotence de-duplicates the re-sent batches the
    dead leader had written and replicated without acknowledging them."""
    cluster = proxied
    topic = cluster.unique_topic("ticks", partitions=3)
    killed: list[int] = []
    in_flight: list[int] = []

    async def kill_leader(run: Run) -> None:
        leader = cluster.leader(topic, 0)
        killed.append(leader)
        await _answers_lost(cluster, leader, run)
        in_flight.append(run.submitted - run.settled)
        await asyncio.to_thread(cluster.kill_broker, leader)
        cluster.proxy(leader).restore()
        await asyncio.to_thread(_await_new_leader, cluster, topic, leader)
        await _settled_beyond(run, "events settled after the new leader took over")

    async def restart(run: Run) -> None:
        await asyncio.to_thread(cluster.start_broker, killed[0])
        await _settled_beyond(run, "events settled after the restart")

    async with eventwire.AsyncPublisher(_config(cluster, topic)) as publisher:
        run = await publish_under_faults(publisher, ticks(), [(0.3, kill_leader), (0.7, restart)])
    counts = tally(run, _read_back(cluster, topic))
    report(counts)
    print(f"killed broker {killed[0]} with {in_flight[0]} events handed over, not settled")
    assert in_flight[0] > 0
    assert cluster.broker_running(killed[0])
    assert_exactly_once_in_order(counts)


# -- a paused leader -------------------------------------------------------------------------


async def test_paused_leader_is_replaced_and_nothing_is_lost_or_duplicated(
    cluster: KafkaCluster, topic: str, report: Callable[[Tally], None]
) -> None:
    """The leader of partition 0 is stopped with SIGSTOP at 30 % of the run: its connections
    stay open and nothing answers (a hung broker, a long GC pause). The controller misses its
    heartbeats, fences it and moves its partitions; the requests in flight to it time out on
    the client (``socket.timeout.ms``, 5 s here) and librdkafka re-sends them to the new
    leader. The broker continues (SIGCONT) at 70 %, finds itself fenced and follows. Every
    event arrives exactly once, in key order."""
    paused: list[int] = []
    in_flight: list[int] = []
    config = dataclasses.replace(
        _config(cluster, topic),
        librdkafka_overrides={**FAST_RECONNECT, "socket.timeout.ms": 5000},
    )

    async def pause_leader(run: Run) -> None:
        leader = cluster.leader(topic, 0)
        paused.append(leader)
        in_flight.append(run.submitted - run.settled)
        cluster.pause_broker(leader)
        await asyncio.to_thread(_await_new_leader, cluster, topic, leader)
        await _settled_beyond(run, "events settled with the old leader paused")

    async def resume(run: Run) -> None:
        cluster.resume_broker(paused[0])
        await _settled_beyond(run, "events settled after the old leader resumed")

    async with eventwire.AsyncPublisher(config) as publisher:
        run = await publish_under_faults(publisher, ticks(), [(0.3, pause_leader), (0.7, resume)])
    counts = tally(run, _read_back(cluster, topic))
    report(counts)
    print(f"paused broker {paused[0]} with {in_flight[0]} events handed over, not settled")
    assert in_flight[0] > 0
    assert_exactly_once_in_order(counts)


# -- a rolling restart -----------------------------------------------------------------------


def _await_preferred_leaders(cluster: KafkaCluster, topic: str) -> None:
    """Wait until each partition of ``topic`` is led by its preferred (first) replica."""
    deadline = time.monotonic() + 60
    while True:
        partitions = cluster.metadata().topics[topic].partitions.values()
        if all(p.leader == p.replicas[0] for p in partitions):
            return
        assert time.monotonic() < deadline, "no preferred leaders within 60 s"
        time.sleep(0.2)


async def test_rolling_restart_of_every_broker_loses_and_duplicates_nothing(
    proxied: KafkaCluster, report: Callable[[Tally], None]
) -> None:
    """Brokers 1, 2 and 3 in turn, as an operator rolls a cluster while events flow: each
    stopped with SIGTERM (a controlled shutdown moves its leaders away first), the answers
    it was sending at that moment lost (its proxy black-holes them), started again with its
    data, and the next one taken only once every replica is in sync and the restarted
    broker leads its partitions again. Every event arrives exactly once, in key order."""
    cluster = proxied
    topic = cluster.unique_topic("ticks", partitions=3)
    pids: dict[int, list[int | None]] = {}

    def stop(broker: int) -> Fault:
        async def fault(run: Run) -> None:
            pids[broker] = [cluster.pid(broker)]
            await _answers_lost(cluster, broker, run)
            await asyncio.to_thread(cluster.stop_broker, broker)
            cluster.proxy(broker).restore()
            await _settled_beyond(run, f"events settled with broker {broker} stopped")

        return fault

    def start(broker: int) -> Fault:
        async def fault(run: Run) -> None:
            await asyncio.to_thread(cluster.start_broker, broker)
            pids[broker].append(cluster.pid(broker))
            await asyncio.to_thread(cluster.wait_for_full_isr, 120.0, [topic])
            await asyncio.to_thread(_await_preferred_leaders, cluster, topic)
            await _settled_beyond(run, f"events settled with broker {broker} back")

        return fault

    faults: list[tuple[float, Fault]] = []
    for n, broker in enumerate(cluster.broker_ids):
        faults += [(0.1 + 0.3 * n, stop(broker)), (0.25 + 0.3 * n, start(broker))]
    async with eventwire.AsyncPublisher(_config(cluster, topic)) as publisher:
        run = await publish_under_faults(publisher, ticks(), faults)
    counts = tally(run, _read_back(cluster, topic))
    report(counts)
    assert all(len(set(p)) == 2 and None not in p for p in pids.values()), pids
    assert_exactly_once_in_order(counts)


# -- two brokers of three down: fewer in-sync replicas than min.insync.replicas ---------------

#: librdkafka retries ``NOT_ENOUGH_REPLICAS`` itself until ``delivery_timeout`` and then
#: reports ``_MSG_TIMED_OUT``; with one retry of its own the broker's code reaches eventwire,
#: whose ``RetryPolicy`` then decides.
ONE_LIBRDKAFKA_RETRY = {**FAST_RECONNECT, "retries": 1}


def _stop_two_brokers(cluster: KafkaCluster, topic: str) -> int:
    """Stop brokers 2 and 3 (controlled shutdowns) and wait until broker 1 leads every
    partition of ``topic`` alone (ISR 1 < ``min.insync.replicas`` 2). Returns 1."""
    for broker in (2, 3):
        cluster.stop_broker(broker)
    deadline = time.monotonic() + 60
    while True:
        partitions = cluster.metadata().topics[topic].partitions.values()
        if all(p.leader == 1 and list(p.isrs) == [1] for p in partitions):
            return 1
        assert time.monotonic() < deadline, "the ISR did not shrink to broker 1 within 60 s"
        time.sleep(0.1)


def _restarts_told(cluster: KafkaCluster, after_stop: float, restarts: dict[int, float]) -> str:
    """When the test started the brokers (``after_stop``: seconds after they stopped), how
    long each took to serve again (``start_broker``, and the call as the test waited for
    it), then the end of each one's log."""
    took = "; ".join(
        f"broker {broker} served again after {cluster.restart_seconds.get(broker, -1):.1f} s"
        f" ({restarts[broker]:.1f} s with the call)"
        for broker in restarts
    )
    logs = "".join(
        f"\n--- broker {broker}'s log ends with:\n{cluster.log_tail(broker, 60)}"
        for broker in restarts
    )
    return f"started {after_stop:.1f} s after the stop; {took}{logs}"


async def _health_once_probed(publisher: eventwire.AsyncPublisher) -> eventwire.HealthStatus:
    """``health()`` once its probe has answered (the first call only starts the probes)."""
    deadline = time.monotonic() + 10
    while (status := publisher.health()).broker_reachable is None:
        assert time.monotonic() < deadline, "no health probe within 10 s"
        await asyncio.sleep(0.05)
    return status


async def test_two_brokers_down_past_the_retry_deadline_dead_letters_or_fails_clearly(
    cluster: KafkaCluster, topic: str
) -> None:
    """With brokers 2 and 3 stopped, broker 1 answers ``NOT_ENOUGH_REPLICAS`` to every
    acks=all write: retriable (the classification table), re-sent by the ``RetryPolicy``
    until its deadline, then dead-lettered (to a topic that needs one in-sync replica) with
    the original bytes, or failed with a ``RetriablePublishError`` naming the code. The
    cluster answers metadata: the breaker stays closed and ``health()`` says reachable, as
    documented (the breaker is about an unreachable cluster, not about one partition's ISR).
    """
    dead_letters = cluster.create_topic(
        f"{topic}.dlq", partitions=1, config={"min.insync.replicas": "1"}
    )
    retry = eventwire.RetryPolicy(attempts=50, deadline=3.0, base=0.1, cap=0.5)
    plain = eventwire.PublisherConfig(
        bootstrap_servers=cluster.bootstrap_servers,
        topic_map={"ticks": topic},
        delivery_timeout=DELIVERY_TIMEOUT,
        retry=retry,
        librdkafka_overrides=ONE_LIBRDKAFKA_RETRY,
    )
    lettered = plain.with_overrides(dead_letter=eventwire.DeadLetterPolicy())
    events = ticks(60)
    await asyncio.to_thread(_stop_two_brokers, cluster, topic)
    with capture_logs() as logs:
        async with (
            eventwire.AsyncPublisher(plain) as failing,
            eventwire.AsyncPublisher(lettered) as dead_lettering,
        ):
            await _health_once_probed(failing)
            started = time.monotonic()
            failed, letters = await asyncio.gather(
                failing.publish_many(events[:30]), dead_lettering.publish_many(events[30:])
            )
            took = time.monotonic() - started
            health = failing.health()
            assert failing.breaker_state == dead_lettering.breaker_state == "closed"
    # Failed after the deadline (3 s from the first failure), not before, nor much after.
    assert 3.0 <= took < 3.0 + 10.0
    for outcome in failed:
        assert type(outcome) is eventwire.RetriablePublishError, outcome
        assert outcome.code == "NOT_ENOUGH_REPLICAS"
        assert outcome.attempts >= 2
        assert "(retriable, NOT_ENOUGH_REPLICAS): Broker: Not enough in-sync replicas" in str(
            outcome
        )
    assert health.broker_reachable is True
    assert health.breaker_state == "closed"
    assert health.failed == 30
    assert health.delivered == 0
    assert health.ready, health.reasons
    retried = [log for log in logs if log["event"] == "eventwire.retry_scheduled"]
    assert retried
    assert {(r["error_class"], r["code"]) for r in retried} == {
        ("retriable", "NOT_ENOUGH_REPLICAS")
    }
    assert not [log for log in logs if log["event"] == "eventwire.circuit_opened"]
    original = {}
    for outcome, event in zip(letters, events[30:], strict=True):
        assert isinstance(outcome, eventwire.DeadLetteredError), outcome
        original[outcome.event_id] = (outcome, event)
    records = cluster.consume(dead_letters, count=30, timeout=30)
    assert sorted((r.header("ce_id") or b"").decode() for r in records) == sorted(original)
    for record in records:
        outcome, event = original[(record.header("ce_id") or b"").decode()]
        assert outcome.code == "NOT_ENOUGH_REPLICAS"
        assert type(outcome.__cause__) is eventwire.RetriablePublishError
        assert record.value == msgspec.json.encode(event)  # the original bytes
        assert record.key == event.stream.encode()
        assert record.header("eventwire_error_class") == b"retriable"
        assert record.header("eventwire_error_code") == b"NOT_ENOUGH_REPLICAS"
        assert record.header("eventwire_original_topic") == topic.encode()
        assert record.header("eventwire_value_omitted") is None
    assert cluster.consume(topic, timeout=5) == []  # nothing reached the topic itself


async def test_two_brokers_down_then_back_within_the_retry_deadline_delivers_everything(
    cluster: KafkaCluster, topic: str, report: Callable[[Tally], None]
) -> None:
    """Brokers 2 and 3 stopped at 20 % of the run, once what was published before has
    settled (publishing waits until broker 1 is alone in every ISR); then the events are
    published into the outage: every write gets
    ``NOT_ENOUGH_REPLICAS`` (retriable), which the ``RetryPolicy`` re-sends with backoff while
    later events of each key wait behind it; meanwhile the breaker stays closed and
    ``health()`` says reachable. Both brokers start again within the retry deadline: every
    event arrives exactly once, in key order.

    The restart is not gated on how many events were published: no event is settled during
    the outage, so the publishing window fills up and publishing stops until the brokers are
    back (a start at 50 % of the events waited out the retry deadline once the window was
    full before 50 %)."""
    config = eventwire.PublisherConfig(
        bootstrap_servers=cluster.bootstrap_servers,
        topic_map={"ticks": topic},
        delivery_timeout=DELIVERY_TIMEOUT,
        retry=eventwire.RetryPolicy(attempts=1_000, deadline=180.0, base=0.2, cap=2.0),
        librdkafka_overrides=ONE_LIBRDKAFKA_RETRY,
    )
    during: list[eventwire.HealthStatus] = []
    restarts: dict[int, float] = {}
    #: When the brokers were stopped, and when the test began starting them (monotonic).
    stopped: list[float] = []
    starting: list[float] = []

    async def stop_two(run: Run) -> None:
        # Nothing in flight while the ISR shrinks: a write caught then is appended and answered
        # NOT_ENOUGH_REPLICAS_AFTER_APPEND (ambiguous), and with librdkafka's one retry it is
        # reported as NOT_ENOUGH_REPLICAS, so its re-send could duplicate it (classification.md).
        await run.until(lambda: run.settled == run.submitted, within=60, what="events settled")
        await asyncio.to_thread(_stop_two_brokers, cluster, topic)
        stopped.append(time.monotonic())

    async def start_two(run: Run) -> None:
        # The events from here on are published into the outage.
        await run.until(
            lambda: any(
                log["event"] == "eventwire.retry_scheduled" and log["code"] == "NOT_ENOUGH_REPLICAS"
                for log in run.logs
            ),
            within=60,
            what="a retry after NOT_ENOUGH_REPLICAS",
        )
        during.append(await _health_once_probed(publisher))
        starting.append(time.monotonic())
        for broker in (2, 3):
            asked = time.monotonic()
            await asyncio.to_thread(cluster.start_broker, broker)
            restarts[broker] = time.monotonic() - asked
        during.append(publisher.health())
        await _settled_beyond(run, "events settled after the brokers returned")

    async with eventwire.AsyncPublisher(config) as publisher:
        # One fault after the other at 20 %: the start waits for the stop, not for publishing.
        run = await publish_under_faults(publisher, ticks(), [(0.2, stop_two), (0.2, start_two)])
        assert publisher.breaker_state == "closed"
    counts = tally(run, _read_back(cluster, topic))
    report(counts)
    retried = {
        (log["error_class"], log["code"])
        for log in run.logs
        if log["event"] == "eventwire.retry_scheduled"
    }
    assert ("retriable", "NOT_ENOUGH_REPLICAS") in retried
    assert not [log for log in run.logs if log["event"] == "eventwire.circuit_opened"]
    after_stop = (starting or [-1.0])[0] - (stopped or [0.0])[0]
    for status in during:
        assert status.broker_reachable is True
        assert status.breaker_state == "closed"
        # Being retried, not failed; unless the brokers took longer than the retry deadline.
        assert status.failed == 0, _restarts_told(cluster, after_stop, restarts)
    assert_exactly_once_in_order(counts)


# -- a record over the topic's size limit ----------------------------------------------------

#: The topic's ``max.message.bytes``: a record batch larger than this is refused whole.
TOPIC_MAX_BYTES = 200_000


async def test_record_over_the_topics_max_message_bytes_is_dead_lettered_with_its_bytes(
    cluster: KafkaCluster,
) -> None:
    """A topic that takes at most 200,000 bytes a record batch, and three events of 300 kB
    among small ones: the broker refuses each big one (``MSG_SIZE_TOO_LARGE``: permanent,
    not retried) and it is dead-lettered whole, its original bytes, key and headers, to a
    topic with the broker's 1 MB limit. The small ones are delivered, in key order.

    librdkafka does not split a refused batch (the Java producer does): a batch of small
    records over the topic's limit would be refused whole, so ``batch.size`` stays below it
    (docs/failures.md)."""
    topic = cluster.unique_topic(
        "sized", partitions=3, config={"max.message.bytes": str(TOPIC_MAX_BYTES)}
    )
    dead_letters = cluster.create_topic(f"{topic}.dlq", partitions=1)
    config = eventwire.PublisherConfig(
        bootstrap_servers=cluster.bootstrap_servers,
        topic_map={"ticks": topic},
        dead_letter=eventwire.DeadLetterPolicy(),
        librdkafka_overrides={"batch.size": TOPIC_MAX_BYTES // 2},
    )
    events = ticks(min(EVENTS, 3_000))
    big_at = [len(events) // 4, len(events) // 2, 3 * len(events) // 4]
    for n in big_at:
        events[n] = msgspec.structs.replace(events[n], pad="y" * 300_000)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            outcomes = await publisher.publish_many(events)
    letters = cluster.consume(dead_letters, count=3, timeout=30)
    delivered = cluster.consume(topic, timeout=60)
    big: dict[str, Tick] = {}
    for n, outcome in enumerate(outcomes):
        if n in big_at:
            assert isinstance(outcome, eventwire.DeadLetteredError), outcome
            assert outcome.code == "MSG_SIZE_TOO_LARGE"
            assert outcome.attempts == 1  # permanent: not retried
            assert type(outcome.__cause__) is eventwire.PermanentPublishError
            assert outcome.dead_letter.topic == dead_letters
            big[outcome.event_id] = events[n]
        else:
            assert isinstance(outcome, eventwire.DeliveryReceipt), outcome
    assert sorted((r.header("ce_id") or b"").decode() for r in letters) == sorted(big)
    for letter in letters:
        event = big[(letter.header("ce_id") or b"").decode()]
        assert letter.value == msgspec.json.encode(event)  # the original bytes, whole
        assert letter.key == event.stream.encode()
        assert letter.header("ce_type") == b"fault.tick"
        assert letter.header("eventwire_error_class") == b"permanent"
        assert letter.header("eventwire_error_code") == b"MSG_SIZE_TOO_LARGE"
        assert letter.header("eventwire_original_topic") == topic.encode()
        assert letter.header("eventwire_attempts") == b"1"
        assert letter.header("eventwire_value_omitted") is None
    small = [e for n, e in enumerate(events) if n not in big_at]
    read = [msgspec.json.decode(r.value or b"", type=Tick) for r in delivered]
    assert sorted(read, key=lambda e: e.n) == small  # each small one once
    for stream in {e.stream for e in small}:
        assert [e.n for e in read if e.stream == stream] == [
            e.n for e in small if e.stream == stream
        ]
    assert [log["event"] for log in logs if log["event"].startswith("eventwire.dead")] == [
        "eventwire.dead_lettered"
    ] * 3


# -- a missing topic, auto-creation off on the broker ----------------------------------------


@pytest.fixture(scope="module")
def no_auto_create() -> Iterator[KafkaCluster]:
    """One Kafka broker that creates no topic on first use (``auto.create.topics.enable`` is
    a static broker setting: the shared cluster keeps Kafka's default)."""
    with KafkaCluster(brokers=1, server_properties={"auto.create.topics.enable": False}) as own:
        yield own


async def test_missing_topic_with_auto_creation_off_fails_retriable_then_delivers_once_created(
    no_auto_create: KafkaCluster,
) -> None:
    """The client asks for auto-creation (librdkafka's producer default) and the broker
    refuses it: an event for a missing topic never gets a partition. It times out as
    *retriable* (never sent), naming the topic, without replacing the producer or opening
    the breaker, while the events for an existing topic are delivered. Re-sent by the retry
    policy, the same events are delivered once the topic is created, exactly once, in key
    order."""
    cluster = no_auto_create
    present = cluster.unique_topic("present")
    missing, later = f"missing-{present}", f"later-{present}"
    config = eventwire.PublisherConfig(
        bootstrap_servers=cluster.bootstrap_servers,
        topic_map={"ticks": present},
        delivery_timeout=3.0,
        retry=eventwire.RetryPolicy(attempts=20, deadline=60.0, base=0.2, cap=1.0),
    )
    events = ticks(min(EVENTS, 2_000))
    strays = ticks(30)
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            first = await publisher.publish(events[0])  # the cluster has answered
            failing = config.with_overrides(retry=eventwire.RetryPolicy.never())
            async with eventwire.AsyncPublisher(failing) as once:
                # A publisher that never had an event acknowledged would word the timeout as
                # "the cluster has not answered since the publisher started".
                reached = await once.publish(strays[0])
                lost, delivered = await asyncio.gather(
                    once.publish_many(strays[1:10], topic=missing),
                    publisher.publish_many(events[1:]),
                )
                assert once.breaker_state == "closed"

            async def create_later() -> None:
                # Once the first attempt timed out and a re-send is scheduled.
                deadline = time.monotonic() + 30
                while not any(log["event"] == "eventwire.retry_scheduled" for log in logs):
                    assert time.monotonic() < deadline, "no re-send within 30 s"
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(cluster.create_topic, later)

            waited, _ = await asyncio.gather(
                publisher.publish_many(strays[10:], topic=later), create_later()
            )
            assert publisher.breaker_state == "closed"
    for error in lost:
        assert type(error) is eventwire.RetriablePublishError, error
        assert error.code == "_MSG_TIMED_OUT"
        assert error.topic == missing
        assert str(error).startswith(
            f"topic {missing!r} has no known partition (does it exist?): event {error.event_id}"
        ), error
    receipts = [first, *_receipts(delivered)]
    assert not [log for log in logs if log["event"] == "eventwire.producer_recreated"]
    assert not [log for log in logs if log["event"] == "eventwire.circuit_opened"]
    assert missing not in cluster.metadata().topics  # asking for it created nothing
    read = [(r.header("ce_id") or b"").decode() for r in cluster.consume(later, count=20)]
    assert sorted(read) == sorted(o.event_id for o in _receipts(waited))  # each once
    kept = cluster.consume(present, count=len(events) + 1)
    ids = [(r.header("ce_id") or b"").decode() for r in kept]
    assert sorted(ids) == sorted([reached.event_id, *(o.event_id for o in receipts)])
    position = {receipt.event_id: n for n, receipt in enumerate(receipts)}
    by_key: dict[bytes | None, list[int]] = {}
    for record, event_id in zip(kept, ids, strict=True):
        if event_id in position:
            by_key.setdefault(record.key, []).append(position[event_id])
    assert all(order == sorted(order) for order in by_key.values())


# -- a producer quota ------------------------------------------------------------------------


def _metric_total(reader: InMemoryMetricReader, name: str) -> dict[str, float]:
    """The points of one metric by broker (``eventwire.kafka.broker``)."""
    data = reader.get_metrics_data()
    return {
        str(point.attributes["eventwire.kafka.broker"]): point.value
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    }


async def test_producer_quota_throttles_without_an_error_or_a_loss(
    cluster: KafkaCluster, topic: str, report: Callable[[Tally], None]
) -> None:
    """A ``producer_byte_rate`` quota for the publisher's client id, a fifteenth of what each
    broker receives in the run: the brokers delay their answers (``throttle_time``) and
    librdkafka holds back its requests meanwhile. The throttling shows in
    ``eventwire.kafka.broker.throttle_time``; no event fails, none is lost or duplicated, the
    breaker stays closed."""
    client_id = f"quota-{topic}"
    per_broker = EVENTS * RECORD_BYTES / len(cluster.broker_ids)  # 3 partitions, 3 leaders
    rate = max(1_000, round(per_broker / 15))
    await asyncio.to_thread(cluster.set_client_quota, client_id, producer_byte_rate=rate)
    reader = InMemoryMetricReader()
    config = dataclasses.replace(
        _config(cluster, topic),
        client_id=client_id,
        telemetry=eventwire.Telemetry(
            meter_provider=MeterProvider(metric_readers=[reader]), statistics_interval=0.5
        ),
    )
    started = time.monotonic()
    async with eventwire.AsyncPublisher(config) as publisher:
        run = await publish_under_faults(publisher, ticks(), [])
        took = time.monotonic() - started
        # The statistics of the last interval, with the last throttled answers.
        await asyncio.sleep(1.0)  # two statistics intervals: nothing to await
        throttled = _metric_total(reader, "eventwire.kafka.broker.throttle_time")
        assert publisher.breaker_state == "closed"
    counts = tally(run, _read_back(cluster, topic))
    report(counts)
    print(f"quota {rate:,} B/s per broker: {took:.1f} s, throttled {throttled}")
    assert sum(throttled.values()) >= 1.0, throttled
    complaints = {"eventwire.retry_scheduled", "eventwire.publish_failed", "eventwire.kafka_error"}
    assert [log for log in run.logs if log["event"] in complaints] == []
    assert_exactly_once_in_order(counts)


# -- the durable spool, the producer killed during leader changes ---------------------------


async def test_spooled_producer_sigkilled_three_times_during_leader_changes_loses_nothing(
    cluster: KafkaCluster, tmp_path: Path
) -> None:
    """A publishing process with a spool (``tests/integration/spool_child``) is SIGKILLed
    three times, each time right after the leader of one partition was SIGKILLed too, while
    that partition waits for its new leader; each next process replays the spool and goes
    on. Every accepted event arrives (0 lost); an event read back twice is one that was
    in the spool at a kill (sent, its acknowledgement not recorded), with the same ``ce_id``
    and bytes; per key the first copies keep their order."""
    topic = cluster.unique_topic("spooled", partitions=3)
    spool = tmp_path / "spool.db"
    children = Children(tmp_path / "accepted.txt")

    def resume() -> Child:
        done = len(accepted_ids(children.side_file))
        return children.start(
            cluster.bootstrap_servers, topic, spool, "--start", str(done), "--count",
            str(EVENTS - done), "--chunk", str(max(50, min(500, EVENTS // 40))),
        )  # fmt: skip

    in_flight: set[str] = set()  # in the spool at a kill: the only events that may repeat
    kills: list[tuple[int, int, int]] = []
    try:
        for partition, point in enumerate((0.25, 0.5, 0.75)):
            child = resume()
            done = len(accepted_ids(children.side_file))
            await asyncio.to_thread(child.read_until, "accepted", int(EVENTS * point) - done)
            leader = cluster.leader(topic, partition)
            await asyncio.to_thread(cluster.kill_broker, leader)
            # The child goes on accepting into the spool while the partition has no leader.
            # (A child counts what it accepted itself.)
            accepted = len(accepted_ids(children.side_file)) - done
            await asyncio.to_thread(child.read_until, "accepted", accepted + 1)
            child.kill()  # SIGKILL
            left = spooled_ids(spool)
            in_flight |= left
            kills.append((leader, len(accepted_ids(children.side_file)), len(left)))
            await asyncio.to_thread(cluster.start_broker, leader)
            await asyncio.to_thread(cluster.wait_for_full_isr, 120.0, [topic])
        last = resume()
        report = await asyncio.to_thread(last.report)
        assert last.proc.wait() == 0
        assert report["spooled"] == 0
    finally:
        children.kill_all()
    await replay(cluster.bootstrap_servers, topic, spool)
    accepted = accepted_ids(children.side_file)
    assert len(accepted) >= EVENTS
    records = cluster.consume(topic, timeout=60 + EVENTS / 2000)
    duplicates = assert_none_lost(records, accepted)
    repeated = {event_id for event_id, n in Counter(record_ids(records)).items() if n > 1}
    assert repeated <= in_flight, f"{len(repeated - in_flight)} duplicates were not in flight"
    per_key_first_seen_in_order(records)
    print(
        f"{EVENTS:,} events, kills (broker, accepted, spool rows) {kills}; "
        f"accepted {len(accepted):,}, records {len(records):,}, lost 0, duplicates {duplicates}"
    )
    assert all(rows > 0 for _, _, rows in kills)  # each kill left events to replay
