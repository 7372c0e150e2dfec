"""``OutboxRelay``: committed rows reach Kafka, rolled-back ones never; rows committed late are
not skipped; replicas share a lease; figures and metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import eventwire
from eventwire import outbox
from eventwire.testing import capture_logs
from tests.outbox.conftest import Database, Kafka, OrderPlaced, seqs_by_key


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def running() -> Iterator[Callable[[outbox.OutboxRelay], threading.Thread]]:
    """Runs relays in threads; stops and joins them after the test."""
    started: list[tuple[outbox.OutboxRelay, threading.Thread]] = []

    def start(relay: outbox.OutboxRelay) -> threading.Thread:
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        started.append((relay, thread))
        return thread

    yield start
    for relay, _ in started:
        relay.stop()
    for _, thread in started:
        thread.join(30)
        assert not thread.is_alive()


def test_committed_rows_are_published_and_rolled_back_ones_never(
    database: Database, kafka: Kafka
) -> None:
    with database.engine.begin() as conn:
        outbox.add_many(
            conn,
            [OrderPlaced(order_id=f"o{n % 3}", seq=n) for n in range(6)],
            config=kafka.config(),
        )
    with pytest.raises(RuntimeError, match="business transaction fails"):
        database.add_then_fail(
            [OrderPlaced(order_id="o0", seq=n) for n in range(100, 110)], kafka.config()
        )
    with database.engine.begin() as conn:
        outbox.add(conn, OrderPlaced(order_id="o0", seq=6), config=kafka.config())

    report = outbox.OutboxRelay(database.url, kafka.config()).run(once=True)

    assert (report.published, report.deleted, report.left) == (7, 7, 0)
    records = kafka.broker.consume(kafka.topic, count=7)
    assert seqs_by_key(records) == {b"o0": [0, 3, 6], b"o1": [1, 4], b"o2": [2, 5]}
    assert database.rows() == 0
    assert all(r.header("ce_type") == b"test.outbox.order_placed" for r in records)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # SQLite: one writer
def test_a_row_that_commits_after_rows_with_higher_ids_is_published(
    database: Database, kafka: Kafka, running: Callable[[outbox.OutboxRelay], object]
) -> None:
    """The slow transaction draws the lower id; the relay has handed the higher one over
    before the slow one commits, and must still fetch it (``id > last`` would skip it)."""
    relay = outbox.OutboxRelay(database.url, kafka.config(), poll_interval=0.05)
    with capture_logs() as logs:
        running(relay)
        with database.engine.connect() as slow:
            slow.begin()
            outbox.add(slow, OrderPlaced(order_id="slow", seq=1), config=kafka.config())
            with database.engine.begin() as fast:
                outbox.add(fast, OrderPlaced(order_id="fast", seq=1), config=kafka.config())
            wait_for(lambda: relay.stats().published == 1)
            slow.commit()
        wait_for(lambda: relay.stats().published == 2)
    assert seqs_by_key(kafka.broker.consume(kafka.topic, count=2)) == {
        b"fast": [1],
        b"slow": [1],
    }
    late = [e for e in logs if e["event"] == "eventwire.outbox_late_rows"]
    assert [e["rows"] for e in late] == [1]


def test_replicas_share_a_lease_and_a_clean_stop_hands_over_at_once(
    database: Database, kafka: Kafka, running: Callable[[outbox.OutboxRelay], object]
) -> None:
    first = outbox.OutboxRelay(database.url, kafka.config(), lease_ttl=30, poll_interval=0.05)
    second = outbox.OutboxRelay(database.url, kafka.config(), lease_ttl=30, poll_interval=0.05)
    first_thread = running(first)
    wait_for(lambda: first.stats().lease_held)
    running(second)
    with database.engine.begin() as conn:
        outbox.add_many(
            conn, [OrderPlaced(order_id="k", seq=n) for n in range(50)], config=kafka.config()
        )
    wait_for(lambda: first.stats().published == 50)
    assert not second.stats().lease_held

    first.stop()
    first_thread.join(30)  # type: ignore[attr-defined]
    stopped = time.monotonic()
    # Released, not expired: the standby takes over well within the 30 s lease.
    wait_for(lambda: second.stats().lease_held, timeout=10)
    handover = time.monotonic() - stopped
    with database.engine.begin() as conn:
        outbox.add_many(
            conn, [OrderPlaced(order_id="k", seq=n) for n in range(50, 60)], config=kafka.config()
        )
    wait_for(lambda: second.stats().published == 10)
    assert second.stats().epoch == 2
    records = kafka.broker.consume(kafka.topic, count=60)
    assert seqs_by_key(records) == {b"k": list(range(60))}  # each once, in order
    assert handover < 10


def test_stats_and_metrics_report_backlog_age_and_latency(database: Database, kafka: Kafka) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    config = kafka.config(telemetry=eventwire.Telemetry(meter_provider=provider))
    relay = outbox.OutboxRelay(database.url, config, poll_interval=0.05)
    with database.engine.begin() as conn:
        outbox.add_many(
            conn, [OrderPlaced(order_id=f"o{n}", seq=n) for n in range(20)], config=kafka.config()
        )
    seen: list[outbox.OutboxStats] = []
    relay.run(once=True, progress=seen.append, progress_interval=0.01)
    stats = relay.stats()
    assert (stats.published, stats.deleted, stats.backlog, stats.in_flight) == (20, 20, 0, 0)
    assert stats.latency_p50 is not None
    assert stats.latency_p99 is not None
    assert 0 <= stats.latency_p50 <= stats.latency_p99
    assert seen, "progress was reported"
    metrics = {
        metric.name: metric
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    latency = metrics["eventwire.outbox.latency"].data.data_points[0]
    assert latency.count == 20
    published = metrics["eventwire.outbox.published"].data.data_points[0]
    assert published.value == 20
    assert metrics["eventwire.outbox.backlog"].data.data_points[0].value == 0
    provider.shutdown()


def test_the_relay_refuses_a_spool_and_bad_bounds(database: Database, tmp_path: object) -> None:
    with pytest.raises(eventwire.ConfigError, match="spool_path must be None"):
        outbox.OutboxRelay(
            database.url,
            eventwire.PublisherConfig(bootstrap_servers="localhost:9092", spool_path="s.db"),
        )
    with pytest.raises(eventwire.ConfigError, match="lease_ttl"):
        outbox.OutboxRelay(
            database.url,
            eventwire.PublisherConfig(bootstrap_servers="localhost:9092"),
            lease_ttl=0,
        )
    with pytest.raises(eventwire.ConfigError, match="in-memory"):
        outbox.OutboxRelay(
            "sqlite:///:memory:", eventwire.PublisherConfig(bootstrap_servers="localhost:9092")
        )


def test_once_returns_at_once_while_a_live_relay_holds_the_lease(
    database: Database, kafka: Kafka, running: Callable[[outbox.OutboxRelay], object]
) -> None:
    holder = outbox.OutboxRelay(database.url, kafka.config(), lease_ttl=30)
    running(holder)
    wait_for(lambda: holder.stats().lease_held)
    started = time.monotonic()
    report = outbox.OutboxRelay(database.url, kafka.config(), lease_ttl=30).run(once=True)
    assert report.held_by == holder.holder
    assert (report.published, report.terms) == (0, 0)
    assert time.monotonic() - started < 10  # not the 30 s until the lease could expire
