"""LocalBroker against the real Tansu binary: lifecycle, topics, read-back, restart, ports."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from eventwire._errors import EventwireError
from eventwire.testing import BrokerStartError, ConsumedRecord, LocalBroker


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    """A broker of the test's own, for tests that stop or restart it."""
    with LocalBroker(partitions=2) as own:
        yield own


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _partition_counts(bootstrap_servers: str) -> dict[str, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    metadata = admin.list_topics(timeout=10)  # no topic argument: that would auto-create it
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


Header = tuple[str, str | bytes | None]


def _produce(
    bootstrap_servers: str,
    topic: str,
    records: list[tuple[int, bytes | None, bytes, list[Header]]],
) -> None:
    """Produce ``(partition, key, value, headers)`` records and wait for every report."""
    failures: list[KafkaError] = []

    def report(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 0})
    for partition, key, value, headers in records:
        producer.produce(
            topic, value, key, partition=partition, headers=headers, on_delivery=report
        )
    assert producer.flush(15) == 0
    assert failures == []


# -- lifecycle ---------------------------------------------------------------------------------


def test_start_and_stop_leave_no_process() -> None:
    local = LocalBroker()
    assert not local.running
    assert local.pid is None

    started = time.monotonic()
    assert local.start() is local
    assert time.monotonic() - started < 5
    pid = local.pid
    assert pid is not None
    assert _alive(pid)
    assert local.running
    assert local.bootstrap_servers == f"127.0.0.1:{local.port}"
    assert local.start() is local  # already running: same process
    assert local.pid == pid

    local.stop()
    assert not local.running
    assert local.pid is None
    assert not _alive(pid)
    local.stop()  # idempotent


def test_context_manager_stops_the_broker() -> None:
    with LocalBroker() as local:
        pid = local.pid
        assert pid is not None
        assert _alive(pid)
    assert not local.running
    assert not _alive(pid)


def test_a_crashed_broker_is_noticed_and_can_be_started_again() -> None:
    with LocalBroker() as local:
        assert local.pid is not None
        os.kill(local.pid, 9)
        deadline = time.monotonic() + 5
        while local.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not local.running
        with pytest.raises(BrokerStartError, match="not running"):
            local.create_topic("orders")

        local.start()
        assert local.create_topic("orders") == "orders"


def test_unstarted_broker_has_no_address() -> None:
    local = LocalBroker()
    with pytest.raises(BrokerStartError, match="never started"):
        _ = local.bootstrap_servers
    with pytest.raises(BrokerStartError, match="not running"):
        local.consume("orders")


def test_broker_start_error_is_an_eventwire_error() -> None:
    assert issubclass(BrokerStartError, EventwireError)


def test_a_missing_binary_is_reported() -> None:
    with pytest.raises(BrokerStartError, match="not an executable file"):
        LocalBroker(binary="/nonexistent/tansu").start()


def test_the_environment_variable_overrides_the_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTWIRE_TANSU_BIN", "/nonexistent/tansu")
    with pytest.raises(BrokerStartError, match=r"\$EVENTWIRE_TANSU_BIN="):
        LocalBroker().start()


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="partitions"):
        LocalBroker(partitions=0)
    with pytest.raises(ValueError, match="startup_timeout"):
        LocalBroker(startup_timeout=0)


# -- ports ---------------------------------------------------------------------------------------
# Decision: a fixed port that is taken is an error (the caller asked for that port); only a port
# LocalBroker picked itself is replaced by another one.


def test_a_fixed_port_held_by_another_broker_is_refused(broker: LocalBroker) -> None:
    with pytest.raises(BrokerStartError, match="in use"):
        LocalBroker(port=broker.port).start()
    assert broker.running  # the first one is unaffected
    assert broker.create_topic("still-mine") in _partition_counts(broker.bootstrap_servers)


def test_a_fixed_port_held_by_any_listener_is_refused() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BrokerStartError, match="in use"):
            LocalBroker(port=port, startup_timeout=3).start()


def test_a_free_fixed_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LocalBroker(port=port) as local:
        assert local.port == port
        assert local.bootstrap_servers == f"127.0.0.1:{port}"


# -- restart -------------------------------------------------------------------------------------


def test_restart_keeps_the_port_and_loses_the_data(broker: LocalBroker) -> None:
    port, pid = broker.port, broker.pid
    topic = broker.create_topic("orders")
    _produce(broker.bootstrap_servers, topic, [(0, b"k", b"v", [])])

    assert broker.restart() is broker

    assert broker.port == port
    assert broker.running
    assert broker.pid != pid
    assert pid is not None
    assert not _alive(pid)
    # Memory only: the topic is gone, and the new broker answers on the same address.
    assert topic not in _partition_counts(broker.bootstrap_servers)
    broker.create_topic(topic)
    assert broker.consume(topic) == []


def test_restart_after_stop_uses_the_same_port(broker: LocalBroker) -> None:
    port = broker.port
    broker.stop()
    broker.restart()
    assert broker.running
    assert broker.port == port


# -- topics --------------------------------------------------------------------------------------


def test_topics_are_created_with_the_requested_partitions(broker: LocalBroker) -> None:
    assert broker.create_topic("five", partitions=5) == "five"
    assert broker.create_topic("default") == "default"
    assert broker.create_topics(["a", "b", "a"], partitions=4) == ["a", "b"]

    counts = _partition_counts(broker.bootstrap_servers)
    assert counts["five"] == 5
    assert counts["default"] == broker.partitions == 2
    assert counts["a"] == counts["b"] == 4


def test_creating_an_existing_topic_is_a_no_op(broker: LocalBroker) -> None:
    broker.create_topic("orders", partitions=3)
    broker.create_topic("orders", partitions=3)
    broker.create_topic("orders", partitions=1)  # an existing topic keeps its own count
    assert _partition_counts(broker.bootstrap_servers)["orders"] == 3


def test_unique_topics_have_fresh_names(broker: LocalBroker) -> None:
    first, second = broker.unique_topic("orders"), broker.unique_topic("orders", partitions=1)
    assert first != second
    assert first.startswith("orders-")
    counts = _partition_counts(broker.bootstrap_servers)
    assert counts[first] == 2
    assert counts[second] == 1


@pytest.mark.parametrize("name", ["bad name", ".", "..", "t" * 250, "orders/v2"])
def test_a_topic_name_publishers_refuse_is_not_created(
    eventwire_broker: LocalBroker, name: str
) -> None:
    # Tansu created them, and every publish to them then failed on the name.
    with pytest.raises(ValueError, match=r"is not a legal Kafka topic name: "):
        eventwire_broker.create_topics(["fine-" + uuid.uuid4().hex[:8], name])
    if name not in {".", ".."}:  # "{prefix}-{hex}" is a fine name for these two
        with pytest.raises(ValueError, match=r"is not a legal Kafka topic name: "):
            eventwire_broker.unique_topic(name)
    assert name not in _partition_counts(eventwire_broker.bootstrap_servers)


# -- reading back --------------------------------------------------------------------------------


def test_consume_returns_records_in_partition_then_offset_order(
    eventwire_broker: LocalBroker,
) -> None:
    topic = eventwire_broker.unique_topic("readback")
    _produce(
        eventwire_broker.bootstrap_servers,
        topic,
        [
            (2, b"k-2a", b"v-2a", [("h", b"1")]),
            (0, b"k-0a", b"v-0a", [("ce_id", b"a"), ("dup", b"x"), ("dup", b"y")]),
            (0, None, b"v-0b", [("nullable", None)]),
            (1, b"k-1a", b"", []),
            (2, b"k-2b", b"v-2b", []),
        ],
    )

    records = eventwire_broker.consume(topic, count=5)

    assert [(r.partition, r.offset) for r in records] == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    assert [r.key for r in records] == [b"k-0a", None, b"k-1a", b"k-2a", b"k-2b"]
    assert [r.value for r in records] == [b"v-0a", b"v-0b", b"", b"v-2a", b"v-2b"]
    first = records[0]
    assert first.topic == topic
    assert first.headers == (("ce_id", b"a"), ("dup", b"x"), ("dup", b"y"))
    assert first.header("dup") == b"x"
    assert first.header("absent") is None
    assert records[1].headers == (("nullable", None),)
    assert records[2].headers == ()
    now_ms = time.time() * 1000
    assert all(now_ms - 60_000 < r.timestamp_ms <= now_ms + 1000 for r in records)
    # Without a count it reads up to the end of every partition: the same records.
    assert eventwire_broker.consume(topic) == records


def test_consume_of_an_empty_topic_reaches_the_end(eventwire_broker: LocalBroker) -> None:
    assert eventwire_broker.consume(eventwire_broker.unique_topic("empty"), timeout=10) == []


def test_consume_times_out_when_too_few_records_arrive(eventwire_broker: LocalBroker) -> None:
    topic = eventwire_broker.unique_topic("short")
    _produce(eventwire_broker.bootstrap_servers, topic, [(0, b"k", b"v", [])])

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"read 1 records .* without reaching 3 records"):
        eventwire_broker.consume(topic, count=3, timeout=1.0)
    assert time.monotonic() - started < 5


def test_consume_of_an_unknown_topic_is_refused(eventwire_broker: LocalBroker) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        eventwire_broker.consume("no-such-topic-ever", timeout=5)
    # Checking did not auto-create it.
    assert "no-such-topic-ever" not in _partition_counts(eventwire_broker.bootstrap_servers)


def test_consumed_records_are_immutable_values() -> None:
    record = ConsumedRecord(
        topic="t", partition=0, offset=0, key=None, value=b"v", headers=(), timestamp_ms=1
    )
    with pytest.raises(AttributeError):
        record.offset = 1  # type: ignore[misc]
    assert record == ConsumedRecord("t", 0, 0, None, b"v", (), 1)


# -- the pytest plugin ---------------------------------------------------------------------------


def test_the_session_fixture_is_a_running_broker(eventwire_broker: LocalBroker) -> None:
    assert eventwire_broker.running
    assert eventwire_broker.partitions == 3
    topic = eventwire_broker.unique_topic()
    assert _partition_counts(eventwire_broker.bootstrap_servers)[topic] == 3


def test_the_session_fixture_is_shared(eventwire_broker: LocalBroker) -> None:
    assert eventwire_broker.pid is not None
    assert _alive(eventwire_broker.pid)
