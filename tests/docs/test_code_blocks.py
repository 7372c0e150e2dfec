"""Every code block of the documentation runs as written, or says why it does not.

``tests/docs/blocks.py`` describes the markers. Runners change only what a reader must fill in
(the broker's address, a spool path, a private topic, a directory) and check the outcome: by
consuming back what was delivered, or by comparing what the block prints with the output
block that follows it.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime as dt
import http.client
import http.server
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

import eventwire
from eventwire.testing import AsyncFakePublisher, KafkaCluster, LocalBroker, capture_logs
from tests.docs.blocks import (
    ROOT,
    Block,
    all_blocks,
    blocks,
    output_after,
    runner_blocks,
)


def run_code(
    source: str, namespace: dict[str, Any], *, replace: dict[str, str] | None = None
) -> str:
    """Execute a block after the replacements (each must apply) and return what it printed.
    Top-level ``await`` (as typed in ``python -m asyncio``) runs in a fresh event loop."""
    for old, new in (replace or {}).items():
        assert old in source, f"the block no longer contains {old!r}"
        source = source.replace(old, new)
    # dont_inherit: this module's `from __future__ import annotations` must not apply.
    code = compile(
        source, "<docs block>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    printed = io.StringIO()
    # capture_logs: the library's log lines are not part of what a block prints.
    with contextlib.redirect_stdout(printed), capture_logs():
        outcome = eval(code, namespace)  # noqa: S307 - the repository's own documentation
        if isinstance(outcome, Coroutine):
            asyncio.run(outcome)
    return printed.getvalue()


def the_block(name: str) -> Block:
    [found] = runner_blocks(name)
    return found


def private_topic(broker: LocalBroker) -> str:
    return broker.create_topic(f"docs-{uuid.uuid4().hex[:10]}", 3)


def expected_output(block: Block) -> str:
    output = output_after(block)
    assert output is not None, f"{block.name}: no <!-- output --> block follows"
    return output.text


def all_runners() -> dict[str, Callable[..., None]]:
    """The runners of this module and of the modules that run one page's blocks."""
    from tests.docs.test_outbox_blocks import OUTBOX_RUNNERS

    return RUNNERS | OUTBOX_RUNNERS


# -- the markers ----------------------------------------------------------------------------------


def test_every_block_is_run_or_says_why_not() -> None:
    problems = []
    for block in all_blocks():
        if block.marker is None:
            problems.append(f"{block.name}: no marker (<!-- run: ... --> or <!-- not-run: ... -->)")
        elif block.marker == "not-run" and len(block.argument) < 10:
            problems.append(f"{block.name}: <!-- not-run: --> needs a reason")
        elif block.marker == "run" and block.argument not in all_runners():
            problems.append(f"{block.name}: no runner named {block.argument!r}")
        elif block.marker == "output":
            before = [b for b in blocks(block.document) if b.line < block.line]
            if not before or before[-1].marker != "run":
                problems.append(f"{block.name}: an output block must follow a block that runs")
    assert problems == []
    used = {b.argument for b in all_blocks() if b.marker == "run"}
    assert set(all_runners()) == used, "a runner no block names"


def test_the_markers_are_read() -> None:
    """The coverage rule above only means something if blocks and markers are found."""
    found = all_blocks()
    assert len(found) >= 20
    assert {b.marker for b in found} == {"run", "not-run", "output"}
    readme = blocks(ROOT / "README.md")
    assert readme[0].language == "bash"
    assert readme[0].text.startswith("make demo")
    assert readme[0].marker == "not-run"


# -- standalone blocks ----------------------------------------------------------------------------

STANDALONE = runner_blocks("standalone")


@pytest.mark.parametrize("block", STANDALONE, ids=[b.name for b in STANDALONE])
def test_standalone_block(block: Block) -> None:
    printed = run_code(block.text, {"__name__": "docs_block"})
    output = output_after(block)
    if output is not None:
        assert printed == output.text


# -- README.md ------------------------------------------------------------------------------------


def test_readme_example(eventwire_broker: LocalBroker) -> None:
    topic = private_topic(eventwire_broker)
    printed = run_code(
        the_block("readme-example").text,
        {"__name__": "readme_example"},
        replace={
            '"localhost:9092"': repr(eventwire_broker.bootstrap_servers),
            'topic="orders"': f"topic={topic!r}",
        },
    )
    [record] = eventwire_broker.consume(topic, count=1)
    assert printed == f"{topic} {record.partition} {record.offset}\n"
    assert record.key == b"ord-1"
    assert msgspec.json.decode(record.value or b"")["total"] == "9.90"


# -- index.md -------------------------------------------------------------------------------------


def test_first_event(eventwire_broker: LocalBroker) -> None:
    topic = private_topic(eventwire_broker)
    run_code(
        the_block("first-event").text,
        {"__name__": "first_event"},
        replace={
            '"localhost:9092"': repr(eventwire_broker.bootstrap_servers),
            'topic="orders"': f"topic={topic!r}",
        },
    )
    records = eventwire_broker.consume(topic, count=4)
    assert sorted(r.key for r in records) == [b"ord-1", b"ord-2", b"ord-3", b"ord-4"]
    assert {r.header("ce_type") for r in records} == {b"order.placed"}
    assert {msgspec.json.decode(r.value or b"")["total_price"] for r in records} == {"9.90"}


# -- publishing.md --------------------------------------------------------------------------------


def test_publish_many(eventwire_broker: LocalBroker) -> None:
    topic = private_topic(eventwire_broker)
    block = the_block("publish-many")
    printed = run_code(
        block.text,
        {"__name__": "publish_many"},
        replace={
            '"localhost:9092"': repr(eventwire_broker.bootstrap_servers),
            'topic="orders"': f"topic={topic!r}",
        },
    )
    assert printed == expected_output(block)
    records = eventwire_broker.consume(topic, count=9)
    by_key: dict[bytes, list[int]] = {}
    for record in records:
        by_key.setdefault(record.key or b"", []).append(
            msgspec.json.decode(record.value or b"")["quantity"]
        )
    assert by_key == {b"ord-0": [0, 3, 6], b"ord-1": [1, 4, 7], b"ord-2": [2, 5, 8]}


# -- durability.md and spool.md -------------------------------------------------------------------


@eventwire.event(topic="docs.spool", key="order_id", type="docs.order.placed", version=1)
class SpooledOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str


def spool_replacements(broker: LocalBroker, topic: str, tmp_path: Path) -> dict[str, str]:
    return {
        "bootstrap_servers=...": (
            f"bootstrap_servers={broker.bootstrap_servers!r}, topic_map={{'docs.spool': {topic!r}}}"
        ),
        '"/var/lib/app/eventwire.db"': repr(str(tmp_path / "eventwire.db")),
    }


def test_graceful_shutdown(eventwire_broker: LocalBroker, tmp_path: Path) -> None:
    topic = private_topic(eventwire_broker)
    made: list[str] = []

    def next_event() -> SpooledOrder:
        made.append(f"ord-{len(made)}")
        if len(made) == 20:  # the service is told to stop while it publishes
            signal.raise_signal(signal.SIGTERM)
        return SpooledOrder(order_id=made[-1])

    run_code(
        the_block("graceful-shutdown").text,
        {"eventwire": eventwire, "next_event": next_event},
        replace=spool_replacements(eventwire_broker, topic, tmp_path),
    )
    records = eventwire_broker.consume(topic, count=len(made))
    assert sorted(r.key or b"" for r in records) == sorted(key.encode() for key in made)
    assert len(made) == 20


def test_spool_api(eventwire_broker: LocalBroker, tmp_path: Path) -> None:
    topic = private_topic(eventwire_broker)
    events = [SpooledOrder(order_id=f"many-{n}") for n in range(3)]
    namespace = {"eventwire": eventwire, "event": SpooledOrder(order_id="one"), "events": events}
    run_code(
        the_block("spool-api").text,
        namespace,
        replace=spool_replacements(eventwire_broker, topic, tmp_path),
    )
    assert isinstance(namespace["receipt"], eventwire.DeliveryReceipt)
    assert all(isinstance(handle, eventwire.Accepted) for handle in namespace["handles"])
    records = eventwire_broker.consume(topic, count=5)
    assert sorted(r.key or b"" for r in records) == [
        b"many-0",
        b"many-1",
        b"many-2",
        b"one",
        b"one",
    ]


# -- observability.md -----------------------------------------------------------------------------


class _Threads:
    """Stands in for ``threading`` in the health-server block: the server it would run for
    ever on 0.0.0.0:8081 is kept, and served on loopback by the test."""

    def __init__(self) -> None:
        self.targets: list[Callable[[], object]] = []

    def Thread(self, *, target: Callable[[], object], daemon: bool) -> SimpleNamespace:
        self.targets.append(target)
        return SimpleNamespace(start=lambda: None)


@pytest.fixture
def health_publisher(eventwire_broker: LocalBroker) -> Iterator[eventwire.Publisher]:
    config = eventwire.PublisherConfig(bootstrap_servers=eventwire_broker.bootstrap_servers)
    with eventwire.Publisher(config) as publisher:
        yield publisher


def _get(port: int) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_readiness_endpoint(health_publisher: eventwire.Publisher) -> None:
    threads = _Threads()
    run_code(
        the_block("readiness-endpoint").text,
        {"http": http, "threading": threads, "publisher": health_publisher},
        replace={'("0.0.0.0", 8081)': '("127.0.0.1", 0)'},
    )
    [serve_forever] = threads.targets
    server = serve_forever.__self__  # type: ignore[attr-defined]
    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        # The first call starts the broker probes and answers "not ready".
        status, body = _get(port)
        assert (status, body["ready"], body["broker_reachable"]) == (503, False, None)
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
        while status != 200 and dt.datetime.now(dt.UTC) < deadline:
            threading.Event().wait(0.1)  # the probe runs on the publisher's poll thread
            status, body = _get(port)
        assert (status, body["ready"], body["broker_reachable"]) == (200, True, True)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_asgi_health_app(health_publisher: eventwire.Publisher) -> None:
    namespace: dict[str, Any] = {"publisher": health_publisher}
    run_code(the_block("asgi-health").text, namespace)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        raise AssertionError("a GET needs no body")

    asyncio.run(namespace["health_app"]({"type": "http", "path": "/"}, receive, send))
    start, body = sent
    assert start == {
        "type": "http.response.start",
        "status": 503,
        "headers": [(b"content-type", b"application/json")],
    }
    assert body["type"] == "http.response.body"
    assert json.loads(body["body"])["broker_reachable"] is None


# -- testing.md -----------------------------------------------------------------------------------


def test_testing_your_service() -> None:
    from examples import unit_testing_with_fake_publisher as example

    namespace = dict(vars(example))
    run_code(the_block("fake-publisher-test").text, namespace)

    async def run() -> None:
        async with AsyncFakePublisher() as fake:
            await namespace["test_checkout_publishes_order_placed"](fake)
            assert [r.key for r in fake.published()] == [b"ord-1"]

    asyncio.run(run())


def test_testing_your_service_runs_in_a_fresh_pytest_project(tmp_path: Path) -> None:
    # A new project has no pytest configuration: pytest-asyncio runs in its strict mode, where
    # an unmarked async test is not run (pytest fails it). The documented test carries its mark.
    (tmp_path / "test_checkout.py").write_text(
        "from decimal import Decimal\n"
        "from examples.unit_testing_with_fake_publisher import CART, NOW, CheckoutService,"
        " OrderPlaced\n" + the_block("fake-publisher-test").text
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_checkout.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


# -- logging.md -----------------------------------------------------------------------------------

#: Appended to a logging set-up block: one event published and the publisher closed.
_PUBLISH_ONE = """
import msgspec
import eventwire

@eventwire.event(topic={topic!r}, key="order_id", type="docs.order.logged", version=1)
class Logged(msgspec.Struct, frozen=True):
    order_id: str

with eventwire.Publisher(eventwire.PublisherConfig(bootstrap_servers={servers!r})) as publisher:
    publisher.publish(Logged(order_id="ord-1"))
"""


def _publish_after(setup: str, broker: LocalBroker) -> list[str]:
    """Run a logging set-up and a publish in a process of their own; its stderr lines (stdout
    must stay empty)."""
    script = setup + _PUBLISH_ONE.format(
        topic=private_topic(broker), servers=broker.bootstrap_servers
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, the documentation's code
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    return result.stderr.splitlines()


def test_logging_set_up_with_plain_logging(eventwire_broker: LocalBroker) -> None:
    started, closed = _publish_after(the_block("logging-plain").text, eventwire_broker)
    assert started == (
        "INFO eventwire: eventwire.publisher_started preset=durable bootstrap_servers="
        f"{eventwire_broker.bootstrap_servers} client_id=eventwire encoding=json validate=True"
    )
    assert closed.startswith("INFO eventwire: eventwire.publisher_closed delivered=1 failed=0 ")


def test_logging_set_up_with_structlog(eventwire_broker: LocalBroker) -> None:
    lines = _publish_after(the_block("logging-structlog").text, eventwire_broker)
    started, closed = (json.loads(line) for line in lines)
    assert {k: v for k, v in started.items() if k != "timestamp"} == {
        "event": "eventwire.publisher_started",
        "level": "info",
        "logger": "eventwire",
        "preset": "durable",
        "bootstrap_servers": eventwire_broker.bootstrap_servers,
        "client_id": "eventwire",
        "encoding": "json",
        "validate": True,
    }
    assert (closed["event"], closed["delivered"], closed["failed"]) == (
        "eventwire.publisher_closed",
        1,
        0,
    )


@eventwire.event(topic="docs.logged", key="order_id", type="docs.order.captured", version=1)
class LoggedOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str


def test_logging_in_tests(eventwire_broker: LocalBroker) -> None:
    topic = private_topic(eventwire_broker)
    config = eventwire.PublisherConfig(
        bootstrap_servers=eventwire_broker.bootstrap_servers, topic_map={"docs.logged": topic}
    )
    with eventwire.Publisher(config) as publisher:
        namespace = {"publisher": publisher, "event": LoggedOrder(order_id="logged")}
        run_code(the_block("logging-in-tests").text, namespace)
    assert namespace["logs"] == []
    [record] = eventwire_broker.consume(topic, count=1)
    assert record.key == b"logged"


# -- schemas.md -----------------------------------------------------------------------------------


def write_package(blocks_: list[Block], folder: Path) -> None:
    """Write each Python block to the file its first line names (``# shop/events.py``)."""
    for block in blocks_:
        first = block.text.splitlines()[0]
        assert first.startswith("# "), f"{block.name}: the first line names the file"
        target = folder / first[2:].strip()
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        target.write_text(block.text)


def test_schema_check(tmp_path: Path) -> None:
    *sources, commands = the_blocks = runner_blocks("schema-check")
    assert [b.language for b in the_blocks] == ["python", "python", "bash"]
    write_package(sources, tmp_path)
    env = {**os.environ, "COLUMNS": "200"}
    results = [
        subprocess.run(  # noqa: S603 - our own interpreter and the page's commands
            [sys.executable, "-m", "eventwire", *shlex.split(line)[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        for line in commands.text.splitlines()
        if line.startswith("eventwire ")
    ]
    *exports, check = results
    assert [r.returncode for r in exports] == [0, 0], [r.stderr for r in exports]
    assert check.returncode == 1, check.stderr
    assert check.stdout == expected_output(commands)


def test_schema_snapshots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_package(runner_blocks("schema-check")[:1], tmp_path)
    write_package(runner_blocks("snapshots"), tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, Any] = {"__name__": "docs_snapshots"}
    run_code((tmp_path / "tests" / "test_event_schemas.py").read_text(), namespace)
    with pytest.raises(AssertionError, match="no snapshot"):
        namespace["test_event_schemas"]()
    monkeypatch.setenv("EVENTWIRE_UPDATE_SCHEMAS", "1")
    namespace["test_event_schemas"]()
    monkeypatch.delenv("EVENTWIRE_UPDATE_SCHEMAS")
    namespace["test_event_schemas"]()
    written = tmp_path / "tests" / "schemas" / "order.placed.v1.schema.json"
    assert json.loads(written.read_text())["x-eventwire"]["version"] == 1


def test_kafka_cluster_tour() -> None:
    from tests.events import order

    publish = (
        "async def _publish():\n"
        "        async with eventwire.AsyncPublisher(config) as publisher:\n"
        "            return await publisher.publish_many([order(n) for n in range(100)])\n"
        "    outcomes = asyncio.run(_publish())\n"
        "    new_leader = cluster.leader('orders', 0)\n"
    )
    namespace: dict[str, Any] = {"eventwire": eventwire, "asyncio": asyncio, "order": order}
    run_code(the_block("kafka-cluster-tour").text, namespace, replace={"...\n": publish})
    # Published while the leader of partition 0 was down: every event acknowledged (acks=all,
    # two replicas of three in sync) and read back, the partition led by another broker.
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in namespace["outcomes"])
    assert len(namespace["records"]) == 100
    assert namespace["new_leader"] != namespace["leader"]


# -- security.md ----------------------------------------------------------------------------------


@eventwire.event(topic="docs.security", key="order_id", type="docs.security.order", version=1)
class SecuredOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    total: Decimal


@pytest.fixture(scope="module")
def secured_kafka() -> Iterator[KafkaCluster]:
    """Apache Kafka with SASL_SSL (SCRAM) and its own CA, for the blocks of security.md."""
    with KafkaCluster(brokers=1, security="SASL_SSL") as cluster:
        cluster.create_topic("docs.security")
        yield cluster


def _delivered(cluster: KafkaCluster, namespace: dict[str, Any], order_id: str) -> None:
    receipt = namespace["receipt"]
    assert receipt.topic == "docs.security"
    records = {r.header("ce_id"): r for r in cluster.consume("docs.security", as_user="client")}
    record = records[receipt.event_id.encode()]
    assert msgspec.json.decode(record.value or b"")["order_id"] == order_id


def test_security_from_a_properties_file(
    secured_kafka: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the reader downloads: here the file of the kit's cluster (SCRAM, its own CA).
    (tmp_path / "client.properties").write_text(
        f"bootstrap.servers={secured_kafka.bootstrap_servers}\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanisms=SCRAM-SHA-512\n"
        "sasl.username=client\n"
        f"sasl.password={secured_kafka.users['client']}\n"
        f"ssl.ca.location={secured_kafka.ca_location}\n"
        "session.timeout.ms=45000\n"
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"OrderPlaced": SecuredOrder, "Decimal": Decimal}
    run_code(the_block("security-properties").text, namespace)
    assert namespace["config"].client_id == "orders-api"
    _delivered(secured_kafka, namespace, "ord-1")


def test_security_from_the_environment(
    secured_kafka: KafkaCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "EVENTWIRE_BOOTSTRAP_SERVERS": secured_kafka.bootstrap_servers,
        "EVENTWIRE_SECURITY_PROTOCOL": "SASL_SSL",
        "EVENTWIRE_SASL_MECHANISM": "SCRAM-SHA-512",
        "EVENTWIRE_SASL_USERNAME": "client",
        "EVENTWIRE_SASL_PASSWORD": secured_kafka.users["client"],
        "EVENTWIRE_SSL_CA_LOCATION": str(secured_kafka.ca_location),
    }.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {"OrderPlaced": SecuredOrder, "Decimal": Decimal}
    run_code(the_block("security-environment").text, namespace)
    _delivered(secured_kafka, namespace, "ord-2")


def test_security_in_code(secured_kafka: KafkaCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PASSWORD", secured_kafka.add_user("orders-api"))
    namespace: dict[str, Any] = {"OrderPlaced": SecuredOrder, "Decimal": Decimal}
    run_code(
        the_block("security-in-code").text,
        namespace,
        replace={
            '"kafka-1.internal:9093"': repr(secured_kafka.bootstrap_servers),
            '"/etc/kafka/ca.pem"': repr(str(secured_kafka.ca_location)),
        },
    )
    _delivered(secured_kafka, namespace, "ord-3")


# -- transactions.md (Apache Kafka: Tansu shows aborted records to read_committed consumers) ----


def test_transactions_async(kafka_broker: KafkaCluster) -> None:
    prefix = f"docs{uuid.uuid4().hex[:8]}."
    kafka_broker.create_topics([prefix + "orders", prefix + "payments"], 3)
    block = the_block("transactions-async")
    printed = run_code(
        block.text,
        {"__name__": "transactions_async"},
        replace={
            '"localhost:9092"': repr(kafka_broker.bootstrap_servers),
            'transactional_id="checkout-1",': (
                f"transactional_id={prefix + 'checkout'!r}, topic_prefix={prefix!r},"
            ),
        },
    )
    assert printed == expected_output(block)
    [placed] = kafka_broker.consume(prefix + "orders")  # read_committed: not ord-2
    [paid] = kafka_broker.consume(prefix + "payments")
    assert (placed.key, paid.key) == (b"ord-1", b"ord-1")


@eventwire.event(topic="docs.enriched", key="order_id", type="docs.order.enriched", version=1)
class EnrichedOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    source_offset: int


def test_transactions_consume_transform_produce(kafka_broker: KafkaCluster) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    source = kafka_broker.unique_topic("docs-incoming", 1)
    output = kafka_broker.unique_topic("docs-enriched", 3)
    group = f"docs-enricher-{uuid.uuid4().hex[:8]}"
    plain = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for n in range(25):
        plain.produce(source, key=f"ord-{n}".encode(), value=b"{}")
    assert plain.flush(30) == 0

    def enrich(message: Any) -> EnrichedOrder:
        return EnrichedOrder(order_id=message.key().decode(), source_offset=message.offset())

    run_code(
        the_block("transactions-consume-transform-produce").text,
        {"__name__": "transactions_ctp", "enrich": enrich},
        replace={
            '"localhost:9092"': repr(kafka_broker.bootstrap_servers),
            '"order-enricher"': repr(group),
            '"incoming-orders"': repr(source),
            'transactional_id="enricher-1")': (
                f"transactional_id={group!r}, topic_map={{'docs.enriched': {output!r}}})"
            ),
            "timeout=2.0": "timeout=10.0",  # the first call waits for the group's assignment
        },
    )
    records = kafka_broker.consume(output)
    assert sorted(msgspec.json.decode(r.value or b"")["source_offset"] for r in records) == list(
        range(25)
    )
    check = Consumer({"bootstrap.servers": kafka_broker.bootstrap_servers, "group.id": group})
    try:
        [committed] = check.committed([TopicPartition(source, 0)], timeout=10)
    finally:
        check.close()
    assert committed.offset == 25  # committed with the transactions


RUNNERS: dict[str, Callable[..., None]] = {
    "standalone": test_standalone_block,
    "readme-example": test_readme_example,
    "first-event": test_first_event,
    "publish-many": test_publish_many,
    "graceful-shutdown": test_graceful_shutdown,
    "spool-api": test_spool_api,
    "readiness-endpoint": test_readiness_endpoint,
    "asgi-health": test_asgi_health_app,
    "fake-publisher-test": test_testing_your_service,
    "logging-plain": test_logging_set_up_with_plain_logging,
    "logging-structlog": test_logging_set_up_with_structlog,
    "logging-in-tests": test_logging_in_tests,
    "schema-check": test_schema_check,
    "snapshots": test_schema_snapshots,
    "kafka-cluster-tour": test_kafka_cluster_tour,
    "security-properties": test_security_from_a_properties_file,
    "security-environment": test_security_from_the_environment,
    "security-in-code": test_security_in_code,
    "transactions-async": test_transactions_async,
    "transactions-consume-transform-produce": test_transactions_consume_transform_produce,
}
