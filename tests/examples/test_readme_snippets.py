"""The Python blocks of README.md and docs/*.md run as written, so the documentation cannot go
stale silently.

Each block is matched by a marker to a runner below; a block no runner claims fails
``test_every_python_block_has_a_runner``. Runners change only what a reader must fill in
(the broker's address, a spool path, a private topic) and check the outcome by consuming back
what was delivered.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import http.client
import http.server
import json
import re
import signal
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

import eventwire
from eventwire.testing import AsyncFakePublisher, LocalBroker

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[str, str]]:
    """``(document name, block text)`` for every ```python block."""
    return [
        (path.name, block)
        for path in DOCUMENTS
        for block in BLOCK.findall(path.read_text(encoding="utf-8"))
    ]


def block(document: str, marker: str) -> str:
    """The one block of ``document`` containing ``marker``."""
    [found] = [text for name, text in python_blocks() if name == document and marker in text]
    return found


def run_code(
    source: str, namespace: dict[str, Any], *, replace: dict[str, str] | None = None
) -> None:
    """Execute a block, after the replacements, which must each apply; top-level ``await``
    (the README shows ``async with`` blocks as one would type them in ``python -m asyncio``)
    runs in a fresh event loop."""
    for old, new in (replace or {}).items():
        assert old in source, f"the block no longer contains {old!r}"
        source = source.replace(old, new)
    # dont_inherit: this module's `from __future__ import annotations` must not apply.
    code = compile(
        source, "<snippet>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    outcome = eval(code, namespace)  # noqa: S307 - the repository's own documentation
    if isinstance(outcome, Coroutine):
        asyncio.run(outcome)


def private_topic(broker: LocalBroker) -> str:
    return broker.create_topic(f"readme-{uuid.uuid4().hex[:10]}", 3)


# -- README.md ------------------------------------------------------------------------------------


def test_two_minute_tour(eventwire_broker: LocalBroker) -> None:
    topic = private_topic(eventwire_broker)
    run_code(
        block("README.md", "asyncio.run(main())"),
        {"__name__": "readme_tour"},
        replace={
            '"localhost:9092"': repr(eventwire_broker.bootstrap_servers),
            'topic="orders"': f"topic={topic!r}",
        },
    )
    records = eventwire_broker.consume(topic, count=4)
    assert sorted(r.key for r in records) == [b"ord-1", b"ord-2", b"ord-3", b"ord-4"]
    assert {r.header("ce_type") for r in records} == {b"order.placed"}
    assert {msgspec.json.decode(r.value or b"")["total_price"] for r in records} == {"9.90"}


@eventwire.event(topic="readme.spool", key="order_id", type="readme.order.placed", version=1)
class SpooledOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str


def test_never_lose_an_accepted_event(eventwire_broker: LocalBroker, tmp_path: Path) -> None:
    topic = private_topic(eventwire_broker)
    made: list[str] = []

    def next_event() -> SpooledOrder:
        made.append(f"ord-{len(made)}")
        if len(made) == 20:  # the service is told to stop while it publishes
            signal.raise_signal(signal.SIGTERM)
        return SpooledOrder(order_id=made[-1])

    run_code(
        block("README.md", "GracefulShutdown(publisher, deadline=10.0)"),
        {"eventwire": eventwire, "next_event": next_event},
        replace={
            "bootstrap_servers=...": (
                f"bootstrap_servers={eventwire_broker.bootstrap_servers!r},"
                f" topic_map={{'readme.spool': {topic!r}}}"
            ),
            '"/var/lib/app/eventwire.db"': repr(str(tmp_path / "eventwire.db")),
        },
    )
    records = eventwire_broker.consume(topic, count=len(made))
    assert sorted(r.key or b"" for r in records) == sorted(key.encode() for key in made)
    assert len(made) == 20


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
        block("README.md", "class Health(http.server.BaseHTTPRequestHandler)"),
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
    run_code(block("README.md", "async def health_app(scope, receive, send)"), namespace)
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


def test_testing_your_service() -> None:
    from examples import unit_testing_with_fake_publisher as example

    namespace = dict(vars(example))
    run_code(block("README.md", "async_fake_publisher.assert_published"), namespace)

    async def run() -> None:
        async with AsyncFakePublisher() as fake:
            await namespace["test_checkout_publishes_order_placed"](fake)
            assert [r.key for r in fake.published()] == [b"ord-1"]

    asyncio.run(run())


# -- docs/spool.md --------------------------------------------------------------------------------


def test_spool_api(eventwire_broker: LocalBroker, tmp_path: Path) -> None:
    topic = private_topic(eventwire_broker)
    events = [SpooledOrder(order_id=f"many-{n}") for n in range(3)]
    namespace = {"eventwire": eventwire, "event": SpooledOrder(order_id="one"), "events": events}
    run_code(
        block("spool.md", "accept_many(events)"),
        namespace,
        replace={
            "bootstrap_servers=...": (
                f"bootstrap_servers={eventwire_broker.bootstrap_servers!r},"
                f" topic_map={{'readme.spool': {topic!r}}}"
            ),
            '"/var/lib/app/eventwire.db"': repr(str(tmp_path / "eventwire.db")),
        },
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


# -- docs/testing.md ------------------------------------------------------------------------------


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
    run_code(
        block("testing.md", "cluster.kill_broker(leader)"),
        namespace,
        replace={"...\n": publish},
    )
    # Published while the leader of partition 0 was down: every event acknowledged (acks=all,
    # two replicas of three in sync) and read back, the partition led by another broker.
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in namespace["outcomes"])
    assert len(namespace["records"]) == 100
    assert namespace["new_leader"] != namespace["leader"]


RUNNERS = {
    ("README.md", "asyncio.run(main())"): test_two_minute_tour,
    ("README.md", "GracefulShutdown(publisher, deadline=10.0)"): test_never_lose_an_accepted_event,
    ("README.md", "class Health(http.server.BaseHTTPRequestHandler)"): test_readiness_endpoint,
    ("README.md", "async def health_app(scope, receive, send)"): test_asgi_health_app,
    ("README.md", "async_fake_publisher.assert_published"): test_testing_your_service,
    ("spool.md", "accept_many(events)"): test_spool_api,
    ("testing.md", "cluster.kill_broker(leader)"): test_kafka_cluster_tour,
}


def test_every_python_block_has_a_runner() -> None:
    for document, text in python_blocks():
        runners = [
            run for (name, marker), run in RUNNERS.items() if name == document and marker in text
        ]
        assert len(runners) == 1, f"{document}: no test runs this block:\n{text}"
    assert len(python_blocks()) == len(RUNNERS)
