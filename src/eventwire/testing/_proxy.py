"""FaultProxy: a loopback TCP proxy that injects network faults between Kafka clients and a broker.

There is no ``tc netem`` and no Toxiproxy on our machines; an in-process proxy with the broker
advertising the proxy's address reproduces the faults that matter to a producer: latency, a
healing partition (`FaultProxy.pause`), a hard cut, lost responses (`FaultProxy.blackhole`)
and connection resets. `ProxiedBroker` (``_proxied``) starts a local Tansu broker that is
reachable only through such a proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from typing import Literal, Self, TypeAlias

from eventwire.testing._loop_thread import LoopThread
from eventwire.testing._proxy_link import (
    CHUNK,
    QUEUED_CHUNKS,
    Chunk,
    Link,
    reset_transport,
    wait_closed,
)
from eventwire.testing._started import StartStop

Direction: TypeAlias = Literal["upstream", "downstream", "both"]
"""``"upstream"``: client to broker (requests); ``"downstream"``: broker to client (responses)."""

_DIRECTIONS: frozenset[str] = frozenset(("upstream", "downstream", "both"))
# A method waits this long for the proxy's loop; only a wedged loop gets anywhere near it.
_CALL_TIMEOUT = 10.0
_STOP_TIMEOUT = 1.0


class FaultProxy(StartStop):
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
        self._loop = LoopThread("eventwire-fault-proxy", "the fault proxy")
        # Everything below is read and written on the proxy's loop only (counters are also
        # read from other threads: a plain int read is atomic).
        self._server: asyncio.Server | None = None
        self._links: set[Link] = set()
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
        self._bytes_dropped = 0
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
        return self._loop.running

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
    def bytes_dropped(self) -> int:
        """Bytes a black hole dropped since construction, in either direction."""
        return self._bytes_dropped

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
            if self._loop.running:
                return self
            self._loop.start()
            try:
                self._listen_port = self._loop.call(self._open, _CALL_TIMEOUT)
            except BaseException:
                self._loop.stop(_STOP_TIMEOUT)
                raise
        return self

    def stop(self) -> None:
        """Reset every connection, stop listening and end the proxy's thread; idempotent.

        Returns within about a second, whatever the connections are doing. Counters are kept;
        a later `start` listens on the same port.
        """
        with self._lifecycle:
            if not self._loop.running:
                return
            self._loop.check_caller()
            try:
                self._loop.call(self._close, _STOP_TIMEOUT)
            except TimeoutError:
                pass  # the loop is stopped below; its tasks are cancelled there
            finally:
                self._loop.stop(_STOP_TIMEOUT)

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

        self._loop.call(apply, _CALL_TIMEOUT)

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

        self._loop.call(apply, _CALL_TIMEOUT)

    def resume(self) -> None:
        """End `pause`: deliver the held bytes in order. Other faults stay.

        Raises:
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """

        async def apply() -> None:
            self._paused = False
            self._notify()

        self._loop.call(apply, _CALL_TIMEOUT)

    def cut(self) -> None:
        """Reset (RST) every live connection, both sides, and reset new ones once accepted.

        Clients see ``ECONNRESET`` at once, never a timeout. Lasts until `restore`.

        Raises:
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """

        async def apply() -> None:
            self._refusing = True
            await self._reset_links(list(self._links))

        self._loop.call(apply, _CALL_TIMEOUT)

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

        self._loop.call(apply, _CALL_TIMEOUT)

    def reset_connections(self) -> None:
        """Reset (RST) every live connection once; new connections are accepted as before.

        Raises:
            RuntimeError: the proxy is not running, or this is the proxy's own thread.
        """

        async def apply() -> None:
            await self._reset_links(list(self._links))

        self._loop.call(apply, _CALL_TIMEOUT)

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

        self._loop.call(apply, _CALL_TIMEOUT)

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

        self._loop.call(apply, _CALL_TIMEOUT)

    # -- on the proxy's loop -----------------------------------------------------------------

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
        await wait_closed([w for link in links for w in link.writers()], _STOP_TIMEOUT / 2)
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

    def _discard_reset(self, link: Link) -> None:
        if not link.closed:
            self._resets += 1
        link.reset()
        self._links.discard(link)

    async def _reset_links(self, links: list[Link]) -> None:
        for link in links:
            self._discard_reset(link)
        await wait_closed([w for link in links for w in link.writers()], _STOP_TIMEOUT)

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
            reset_transport(client)
            return
        link = Link(client)
        self._links.add(link)
        relay = asyncio.get_running_loop().create_task(self._relay(link, client_reader))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)

    async def _relay(self, link: Link, client_reader: asyncio.StreamReader) -> None:
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
                reset_transport(upstream)
                return
            link.upstream = upstream
            up: asyncio.Queue[Chunk] = asyncio.Queue(QUEUED_CHUNKS)
            down: asyncio.Queue[Chunk] = asyncio.Queue(QUEUED_CHUNKS)
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
            await wait_closed(link.writers(), _STOP_TIMEOUT)
        finally:
            link.reset()
            self._links.discard(link)
            if link.pipes:
                await asyncio.gather(*link.pipes, return_exceptions=True)

    async def _receive(self, reader: asyncio.StreamReader, queue: asyncio.Queue[Chunk]) -> None:
        loop = asyncio.get_running_loop()
        while data := await reader.read(CHUNK):
            await queue.put((loop.time(), data))
        await queue.put(None)

    async def _send(
        self,
        link: Link,
        queue: asyncio.Queue[Chunk],
        writer: asyncio.StreamWriter,
        *,
        upstream: bool,
    ) -> None:
        while (chunk := await queue.get()) is not None:
            received_at, data = chunk
            await self._hold(received_at)
            if self._drops(upstream=upstream):
                link.lost_bytes = True
                self._bytes_dropped += len(data)
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
