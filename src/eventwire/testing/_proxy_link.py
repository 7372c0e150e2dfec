"""The connections a `FaultProxy` relays: one client connection and its upstream (``Link``),
reset with RST rather than closed, and the chunks queued between them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Iterable
from typing import TypeAlias

CHUNK = 64 * 1024
# Chunks queued per direction; beyond that the proxy stops reading and TCP pushes back.
QUEUED_CHUNKS = 64
# SO_LINGER on, 0 s: close() discards unsent data and sends RST instead of FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)

Chunk: TypeAlias = tuple[float, bytes] | None  # (loop time received, bytes); None: EOF


def reset_transport(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


async def wait_closed(writers: Iterable[asyncio.StreamWriter], grace: float) -> None:
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


class Link:
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
            reset_transport(writer)
        for pipe in self.pipes:
            pipe.cancel()
