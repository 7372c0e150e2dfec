"""``eventwire outbox init|schema`` and ``eventwire relay``: the tables, their DDL, and a relay
that publishes committed rows (``--once``) or serves until SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select

import eventwire
from eventwire import outbox
from eventwire.testing import KafkaCluster, LocalBroker
from tests.cli.conftest import ROOT, assert_one_line_error, run_cli, stderr_lines
from tests.outbox.conftest import OrderPlaced


def test_schema_prints_the_ddl_of_each_dialect() -> None:
    result = run_cli("outbox", "schema", "--dialect", "sqlite")
    assert result.returncode == 0
    assert result.stdout == outbox.schema_ddl("sqlite")
    result = run_cli("outbox", "schema")
    assert "pg_notify('eventwire_outbox'" in result.stdout


def test_init_creates_the_tables_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    for _ in range(2):
        result = run_cli("outbox", "init", "--database-url", url)
        assert result.returncode == 0, result.stderr
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == {
            outbox.TABLE_NAME,
            outbox.LEASE_TABLE_NAME,
        }
    finally:
        engine.dispose()


def test_another_database_is_refused_in_one_line() -> None:
    result = run_cli("outbox", "init", "--database-url", "mysql://app@db/app")
    assert_one_line_error(result, "the outbox supports PostgreSQL and SQLite, not 'mysql'")


def test_an_unreachable_database_is_one_line_without_its_password() -> None:
    result = run_cli(
        "relay", "--once", "--database-url", "postgresql+psycopg://app:s3cret@127.0.0.1:1/app"
    )
    assert_one_line_error(result, "database postgresql+psycopg://app:***@127.0.0.1:1/app")
    assert "s3cret" not in result.stderr


def test_relay_once_without_a_cluster_fails_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    fill(url, "orders", 3)
    started = time.monotonic()
    result = run_cli(
        "relay",
        "--once",
        "--database-url",
        url,
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--connect-timeout",
        "2",
    )
    assert time.monotonic() - started < 60
    assert_one_line_error(result, "cannot reach Kafka at 127.0.0.1:1 within 2 s")
    assert rows(url) == 3


def fill(url: str, topic: str, count: int) -> None:
    engine = create_engine(url)
    config = eventwire.PublisherConfig(bootstrap_servers="unused:9092", topic_map={"orders": topic})
    try:
        outbox.create_tables(engine)
        with engine.begin() as conn:
            outbox.add_many(
                conn,
                [OrderPlaced(order_id=f"o{n % 4}", seq=n) for n in range(count)],
                config=config,
            )
    finally:
        engine.dispose()


def rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(outbox.outbox_table)).scalar_one()
            )
    finally:
        engine.dispose()


def relay_once(url: str, bootstrap_servers: str, *extra: str) -> None:
    """``eventwire relay --once`` over 30 rows: exits 0, all published, none left."""
    result = run_cli(
        "relay", "--once", "--database-url", url, "--bootstrap-servers", bootstrap_servers, *extra
    )
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result)[-1] == "relay stopped: 30 published, 0 left in the table"


def test_relay_once_publishes_what_is_committed_and_exits(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    topic = eventwire_broker.unique_topic("cli-relay", partitions=3)
    fill(url, topic, 30)
    relay_once(url, eventwire_broker.bootstrap_servers)
    records = eventwire_broker.consume(topic, count=30)
    assert sorted(int(r.header("ce_id") is not None) for r in records) == [1] * 30
    assert rows(url) == 0


def test_relay_once_with_a_transactional_id_publishes_in_kafka_transactions(
    kafka_broker: KafkaCluster, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    topic = f"cli-relay-tx-{tmp_path.name[-8:]}"
    kafka_broker.create_topics([topic], 3)
    fill(url, topic, 30)
    relay_once(
        url,
        kafka_broker.bootstrap_servers,
        "--transactional-id",
        "cli-outbox-relay",
        "--max-in-flight",
        "10",
    )
    assert len(kafka_broker.consume(topic, count=30)) == 30  # read_committed
    assert rows(url) == 0


def test_relay_serves_until_sigterm_and_releases_its_lease(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    topic = eventwire_broker.unique_topic("cli-relay", partitions=3)
    fill(url, topic, 5)
    process = subprocess.Popen(  # noqa: S603 - our interpreter and arguments
        [
            sys.executable,
            "-m",
            "eventwire",
            "relay",
            "--database-url",
            url,
            "--bootstrap-servers",
            eventwire_broker.bootstrap_servers,
            "--poll-interval",
            "0.1",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while rows(url) > 0:
            assert time.monotonic() < deadline, "the relay did not publish"
            time.sleep(0.05)
        fill(url, topic, 5)  # more rows while it runs: polled and published too
        while rows(url) > 0:
            assert time.monotonic() < deadline, "the relay did not publish the second rows"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "relay stopped: 10 published" in stderr
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            lease = conn.execute(select(outbox.lease_table)).one()
            now = conn.exec_driver_sql(
                "SELECT (julianday('now') - 2440587.5) * 86400.0"
            ).scalar_one()
    finally:
        engine.dispose()
    assert lease.expires_at < now  # released: a standby takes over at once
    assert len(eventwire_broker.consume(topic, count=10)) == 10


@pytest.mark.parametrize("args", [["--once"], []])
def test_relay_needs_a_database_url(args: list[str]) -> None:
    result = run_cli("relay", *args)
    assert result.returncode == 2
    assert "--database-url" in result.stderr
