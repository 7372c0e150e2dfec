"""FaultProxy against a real Tansu broker (and a loopback echo server): every fault, no mocks.

The broker advertises the proxy's address (`ProxiedBroker`), so every client connection goes
through the proxy. Outages stay well below ``message.timeout.ms``: after a ``_MSG_TIMED_OUT``
Tansu fences the idempotent producer (PRODUCER_FENCED), which is not what these tests are about.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import socketserver
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer

from eventwire.testing import FaultProxy, ProxiedBroker

pytestmark = pytest.mark.timeout(60)

# Short client timeouts: a fault is noticed, and healed, in a second or two.
CLIENT_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "message.timeout.ms": 15_000,
    "socket.timeout.ms": 2_000,
    "socket.connection.setup.timeout.ms": 2_000,
    "reconnect.backoff.ms": 20,
    "reconnect.backoff.max.ms": 200,
    "retry.backoff.ms": 20,
    "retry.backoff.max.ms": 200,
}


class Recorder:
    """Delivery reports and client errors of one producer (called back on the polling thread)."""

    def __init__(self) -> None:
        self.delivered: list[bytes] = []
        self.failed: list[KafkaError] = []
        self.errors: list[KafkaError] = []

    def on_error(self, error: KafkaError) -> None:
        self.errors.append(error)

    def on_delivery(self, error: KafkaError | None, message: Message[Any, Any]) -> None:
        if error is None:
            self.delivered.append(message.value() or b"")
        else:
            self.failed.append(error)


ProducerFactory = Callable[..., tuple[Producer, Recorder]]


@pytest.fixture
def broker() -> Iterator[ProxiedBroker]:
    with ProxiedBroker(partitions=3) as own:
        yield own


@pytest.fixture
def make_producer(broker: ProxiedBroker) -> Iterator[ProducerFactory]:
    """Producers through the proxy; purged and closed before the broker stops."""
    made: list[Producer] = []

    def make(**overrides: Any) -> tuple[Producer, Recorder]:
        recorder = Recorder()
        config = {
            **CLIENT_CONFIG,
            "bootstrap.servers": broker.bootstrap_servers,
            "error_cb": recorder.on_error,
            **overrides,
        }
        producer = Producer(config)
        made.append(producer)
        return producer, recorder

    yield make
    broker.proxy.restore()
    for producer in made:
        producer.purge()
        producer.flush(2)
        producer.close()


def _produce(producer: Producer, recorder: Recorder, topic: str, values: list[bytes]) -> None:
    for value in values:
        producer.produce(topic, value, on_delivery=recorder.on_delivery)
    producer.poll(0)


def _values(prefix: str, count: int) -> list[bytes]:
    return [f"{prefix}-{i:04d}".encode() for i in range(count)]


def _poll_until(producer: Producer, done: Callable[[], bool], within: float) -> float:
    """Serve callbacks until ``done()``; return the seconds it took. Fails after ``within``."""
    start = time.monotonic()
    while not done():
        elapsed = time.monotonic() - start
        assert elapsed < within, f"condition not met within {within} s"
        producer.poll(0.05)
    return time.monotonic() - start


def _warm_up(producer: Producer, recorder: Recorder, topic: str) -> None:
    """One delivered message: producer id obtained, connections up."""
    _produce(producer, recorder, topic, [b"warm-up"])
    assert producer.flush(10) == 0
    assert recorder.delivered == [b"warm-up"]


def _assert_exactly_once(broker: ProxiedBroker, topic: str, expected: list[bytes]) -> None:
    # count=None reads every partition to its end: a duplicate beyond the count shows up too.
    records = broker.consume(topic, timeout=20)
    counts = collections.Counter(record.value for record in records)
    duplicates = {value: n for value, n in counts.items() if n > 1}
    assert duplicates == {}
    assert set(counts) == set(expected)


# -- through a real broker -------------------------------------------------------------------


def test_produce_and_consume_through_the_proxy(
    broker: ProxiedBroker, make_producer: ProducerFactory
) -> None:
    topic = broker.unique_topic("plain")
    producer, recorder = make_producer()
    values = _values("plain", 20)
    _produce(producer, recorder, topic, values)
    assert producer.flush(10) == 0
    assert recorder.failed == []
    assert sorted(recorder.delivered) == values
    # The broker sends clients to the proxy, never to its own port.
    brokers = producer.list_topics(timeout=5).brokers.values()
    assert {f"{b.host}:{b.port}" for b in brokers} == {broker.bootstrap_servers}
    assert broker.broker_port != broker.port
    proxy = broker.proxy
    assert proxy.connections >= 1
    assert proxy.bytes_up > 0
    assert proxy.bytes_down > 0
    _assert_exactly_once(broker, topic, values)


def test_cut_reports_brokers_down_and_restore_delivers_the_queue(
    broker: ProxiedBroker, make_producer: ProducerFactory
) -> None:
    topic = broker.unique_topic("cut")
    producer, recorder = make_producer()
    _warm_up(producer, recorder, topic)

    broker.proxy.cut()
    assert broker.proxy.connections == 0
    values = _values("cut", 30)
    _produce(producer, recorder, topic, values)
    down = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT}
    _poll_until(producer, lambda: any(e.code() in down for e in recorder.errors), 5)
    producer.poll(1.0)  # the outage lasts on; reconnects are refused
    assert recorder.delivered == [b"warm-up"]
    assert broker.proxy.resets >= 2  # the live connections, then refused reconnects

    broker.proxy.restore()
    assert producer.flush(10) == 0
    assert recorder.failed == []
    assert sorted(recorder.delivered) == sorted([b"warm-up", *values])
    _assert_exactly_once(broker, topic, [b"warm-up", *values])


def test_pause_holds_everything_and_resume_delivers_it(
    broker: ProxiedBroker, make_producer: ProducerFactory
) -> None:
    topic = broker.unique_topic("pause")
    producer, recorder = make_producer()
    _warm_up(producer, recorder, topic)

    broker.proxy.pause()
    up, down = broker.proxy.bytes_up, broker.proxy.bytes_down
    values = _values("pause", 30)
    _produce(producer, recorder, topic, values)
    producer.poll(1.0)  # below socket.timeout.ms: the client keeps waiting
    assert recorder.delivered == [b"warm-up"]
    assert (broker.proxy.bytes_up, broker.proxy.bytes_down) == (up, down)

    broker.proxy.resume()
    assert producer.flush(10) == 0
    assert recorder.failed == []
    assert recorder.errors == []  # nothing was lost: no disconnect, no error
    _assert_exactly_once(broker, topic, [b"warm-up", *values])


def test_blackhole_with_idempotence_delivers_each_message_exactly_once(
    broker: ProxiedBroker, make_producer: ProducerFactory
) -> None:
    topic = broker.unique_topic("hole")
    producer, recorder = make_producer()
    _warm_up(producer, recorder, topic)

    broker.proxy.blackhole()
    up, down = broker.proxy.bytes_up, broker.proxy.bytes_down
    values = _values("hole", 50)
    _produce(producer, recorder, topic, values)
    _poll_until(producer, lambda: broker.proxy.bytes_up > up, 3)  # the requests got through
    # Past socket.timeout.ms: the client gives up on the requests, reconnects and retries.
    producer.poll(2.5)
    assert broker.proxy.bytes_down == down
    assert recorder.delivered == [b"warm-up"]

    broker.proxy.restore()
    assert producer.flush(10) == 0
    assert recorder.failed == []
    assert sorted(recorder.delivered) == sorted([b"warm-up", *values])
    _assert_exactly_once(broker, topic, [b"warm-up", *values])


def test_blackhole_without_idempotence_stores_retries_twice(
    broker: ProxiedBroker, make_producer: ProducerFactory
) -> None:
    # Proves the black hole lets requests reach the broker: without idempotence, the retries
    # of requests whose responses were lost are stored again.
    topic = broker.unique_topic("dup")
    producer, recorder = make_producer(**{"enable.idempotence": False})
    _warm_up(producer, recorder, topic)

    broker.proxy.blackhole("downstream")
    up = broker.proxy.bytes_up
    values = _values("dup", 20)
    _produce(producer, recorder, topic, values)
    _poll_until(producer, lambda: broker.proxy.bytes_up > up, 3)
    producer.poll(2.5)
    broker.proxy.restore()
    assert producer.flush(10) == 0
    assert recorder.failed == []

    records = broker.consume(topic, timeout=20)
    counts = collections.Counter(record.value for record in records)
    assert set(counts) == {b"warm-up", *values}
    assert sum(counts.values()) > len(values) + 1


def test_latency_slows_every_round_trip(
    broker: ProxiedBroker, make_producer: ProducerFactory
) -> None:
    topic = broker.unique_topic("latency")
    producer, recorder = make_producer(**{"linger.ms": 0})
    _warm_up(producer, recorder, topic)

    def round_trips(label: str) -> list[float]:
        times = []
        for i in range(5):
            start = time.monotonic()
            _produce(producer, recorder, topic, [f"{label}-{i}".encode()])
            assert producer.flush(5) == 0
            times.append(time.monotonic() - start)
        return times

    fast = round_trips("fast")
    broker.proxy.set_latency(0.05)
    slow = round_trips("slow")
    broker.proxy.set_latency(0)
    assert recorder.failed == []
    # 50 ms each way: a produce request and its response, at least 100 ms.
    assert min(slow) >= 0.1
    assert statistics.median(slow) - statistics.median(fast) >= 0.05


def test_periodic_resets_lose_and_duplicate_nothing(
    broker: ProxiedBroker, make_producer: ProducerFactory
) -> None:
    topic = broker.unique_topic("resets")
    producer, recorder = make_producer()
    _warm_up(producer, recorder, topic)

    broker.proxy.reset_every(0.3)
    resets = broker.proxy.resets
    values = _values("resets", 200)
    # 10 messages every 0.1 s for 2 s: resets land on idle and busy connections alike.
    start = time.monotonic()
    for i in range(0, len(values), 10):
        _produce(producer, recorder, topic, values[i : i + 10])
        while time.monotonic() < start + (i + 10) / 100:
            producer.poll(0.02)
    broker.proxy.reset_every(None)
    assert broker.proxy.resets - resets >= 3
    assert producer.flush(10) == 0
    assert recorder.failed == []
    assert sorted(recorder.delivered) == sorted([b"warm-up", *values])
    _assert_exactly_once(broker, topic, [b"warm-up", *values])


# -- the proxy alone, in front of a loopback echo server -------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with self.request as conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass  # the proxy reset the connection


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield str(host), int(port)
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=echo) as own:
        yield own


def _connect(proxy: FaultProxy) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    conn.settimeout(2)
    return conn


def _echoed(conn: socket.socket, data: bytes) -> bytes:
    conn.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_relays_both_ways_and_counts(proxy: FaultProxy) -> None:
    assert proxy.address == f"127.0.0.1:{proxy.port}"
    with _connect(proxy) as conn:
        assert _echoed(conn, b"x" * 100_000) == b"x" * 100_000
        assert proxy.connections == 1
    assert (proxy.bytes_up, proxy.bytes_down) == (100_000, 100_000)
    assert proxy.accepted == 1
    deadline = time.monotonic() + 2
    while proxy.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.connections == 0  # a closed client closes the upstream connection too


def _refused(proxy: FaultProxy) -> bool:
    """Whether a new connection is reset (during connect() itself if the RST came first)."""
    try:
        with _connect(proxy) as conn:
            conn.recv(10)
    except ConnectionResetError:
        return True
    return False


def test_cut_resets_live_and_new_connections_until_restore(proxy: FaultProxy) -> None:
    with _connect(proxy) as live:
        assert _echoed(live, b"ping") == b"ping"
        proxy.cut()
        assert proxy.connections == 0
        with pytest.raises(ConnectionResetError):
            live.recv(10)
    assert _refused(proxy)
    assert proxy.resets == 2
    proxy.restore()
    with _connect(proxy) as again:
        assert _echoed(again, b"pong") == b"pong"


def test_pause_is_in_effect_when_it_returns(proxy: FaultProxy) -> None:
    with _connect(proxy) as conn:
        proxy.pause()
        conn.sendall(b"held")
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(10)
        conn.settimeout(2)
        proxy.resume()
        assert conn.recv(10) == b"held"


async def test_an_async_test_drives_it_too(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        proxy.pause()  # blocks this loop for a moment only: the proxy runs its own
        writer.write(b"held")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(10), 0.3)
        proxy.resume()
        assert await asyncio.wait_for(reader.readexactly(4), 2) == b"held"
    finally:
        writer.close()
        await writer.wait_closed()


def test_blackhole_upstream_drops_requests_and_restore_resets(proxy: FaultProxy) -> None:
    with _connect(proxy) as conn:
        assert _echoed(conn, b"before") == b"before"
        proxy.blackhole("upstream")
        conn.sendall(b"lost")
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(10)
        conn.settimeout(2)
        proxy.restore()  # bytes were lost on this connection: its framing cannot be trusted
        with pytest.raises(ConnectionResetError):
            conn.recv(10)
    assert proxy.bytes_up == len(b"before")


def test_a_connection_that_lost_nothing_survives_restore(proxy: FaultProxy) -> None:
    with _connect(proxy) as conn:
        proxy.blackhole("both")
        proxy.restore()
        assert _echoed(conn, b"fine") == b"fine"


def test_stop_is_bounded_and_resets_clients(echo: tuple[str, int]) -> None:
    proxy = FaultProxy(upstream=echo).start()
    conns = [_connect(proxy) for _ in range(5)]
    try:
        proxy.pause()
        for conn in conns:
            conn.sendall(b"held")
        start = time.monotonic()
        proxy.stop()
        assert time.monotonic() - start < 1.0
        for conn in conns:
            with pytest.raises(ConnectionResetError):
                conn.recv(10)
    finally:
        for conn in conns:
            conn.close()
    proxy.stop()  # idempotent
    assert not proxy.running
    with pytest.raises(RuntimeError, match="not running"):
        proxy.cut()
    # A restart listens on the same port.
    port = proxy.port
    with proxy, _connect(proxy) as conn:
        assert proxy.port == port
        assert _echoed(conn, b"back") == b"back"


def test_unreachable_upstream_resets_the_client() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    with FaultProxy(upstream=("127.0.0.1", closed_port)) as proxy:
        assert _refused(proxy)
        assert proxy.resets == 1


def test_arguments_are_checked() -> None:
    proxy = FaultProxy(upstream=("127.0.0.1", 9))
    with pytest.raises(RuntimeError, match="never started"):
        _ = proxy.port
    with pytest.raises(ValueError, match="latency"):
        proxy.set_latency(-1)
    with pytest.raises(ValueError, match="period"):
        proxy.reset_every(0)
    with pytest.raises(ValueError, match="direction"):
        proxy.blackhole("sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="connect_timeout"):
        FaultProxy(upstream=("127.0.0.1", 9), connect_timeout=0)
