"""The lines ``eventwire produce`` reads, in chunks: from a file, or from a stream.

A regular file is read as fast as it is checked. A stream (stdin from a pipe or a terminal, a
FIFO) may pause for any time between lines, so it is read on a thread of its own: the event
loop stays free (Ctrl-C stops the run at once, not when the next line arrives), and a chunk
that does not fill is published once its first line has waited ``wait`` seconds, as librdkafka's
``linger`` does for a batch.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO, Final

from eventwire._cli.errors import CliError

#: One line to check: its 1-based number in the input and its text, as written.
Line = tuple[int, bytes]

_BOM: Final = b"\xef\xbb\xbf"
_BLOCK: Final = 1 << 16
#: Blocks read ahead of the checking: bounds the memory a fast stream can take.
_READ_AHEAD: Final = 16


class _Numbering:
    """Numbers lines from 1, leaves out blank ones and keeps the text as written."""

    def __init__(self) -> None:
        self.number = 0

    def take(self, line: bytes) -> Line | None:
        self.number += 1
        # Editors on Windows start UTF-8 files with a byte order mark; JSON may not hold it.
        raw = line.removeprefix(_BOM) if self.number == 1 else line
        if not raw.strip():
            return None
        # The text stays as written (a rejects line quotes it); JSON allows the whitespace.
        return self.number, raw.rstrip(b"\r\n")


class FileInput:
    """A regular file (or stdin redirected from one), read in order."""

    def __init__(self, stream: BinaryIO, size: int | None, *, owned: bool) -> None:
        self._stream = stream
        self._owned = owned
        #: Bytes in the file, for the progress bar.
        self.size = size

    @property
    def position(self) -> int:
        return self._stream.tell()

    def _chunks(self, size: int) -> Iterator[list[Line]]:
        numbering = _Numbering()
        chunk: list[Line] = []
        for line in self._stream:
            taken = numbering.take(line)
            if taken is None:
                continue
            chunk.append(taken)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    async def chunks(self, size: int, wait: float) -> AsyncIterator[list[Line]]:
        """``size`` lines at a time (``wait`` does not apply: a file never waits)."""
        for chunk in self._chunks(size):
            yield chunk

    def close(self) -> None:
        if self._owned:
            self._stream.close()


class StreamInput:
    """A pipe, terminal or FIFO, read by a daemon thread (see the module docstring).

    The thread reads the file descriptor with ``os.read``, never through ``sys.stdin``: a
    daemon thread blocked inside a buffered reader would hold its lock while the interpreter
    shuts down.
    """

    size = None

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._closed = threading.Event()
        self._reader: threading.Thread | None = None
        self.position = 0

    async def chunks(self, size: int, wait: float) -> AsyncIterator[list[Line]]:
        """``size`` lines at a time, or fewer once the first of them has waited ``wait``
        seconds (and the rest at the end of the input).

        Raises:
            CliError: the stream cannot be read.
        """
        loop = asyncio.get_running_loop()
        blocks: asyncio.Queue[bytes | OSError] = asyncio.Queue(_READ_AHEAD)
        self._reader = threading.Thread(
            target=self._read, args=(loop, blocks), name="eventwire-produce-input", daemon=True
        )
        self._reader.start()
        numbering = _Numbering()
        chunk: list[Line] = []
        deadline = 0.0
        rest = b""
        while True:
            try:
                block = await asyncio.wait_for(
                    blocks.get(), max(deadline - loop.time(), 0) if chunk else None
                )
            except TimeoutError:  # the chunk's first line has waited long enough
                yield chunk
                chunk = []
                continue
            if isinstance(block, OSError):
                raise CliError(f"cannot read the input: {block.strerror or block}")
            *lines, rest = (rest + block).split(b"\n") if block else (rest, b"")
            for line in lines:
                taken = numbering.take(line)
                if taken is None:
                    continue
                if not chunk:
                    deadline = loop.time() + wait
                chunk.append(taken)
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
            if not block:  # end of input
                break
        if chunk:
            yield chunk

    def _read(
        self, loop: asyncio.AbstractEventLoop, blocks: asyncio.Queue[bytes | OSError]
    ) -> None:
        while not self._closed.is_set():
            block: bytes | OSError
            try:
                block = os.read(self._fd, _BLOCK)
            except OSError as exc:
                block = exc
            else:
                self.position += len(block)
            try:
                handed = asyncio.run_coroutine_threadsafe(blocks.put(block), loop)
            except RuntimeError:  # the loop is closed: the run is over
                return
            # The queue bounds the read-ahead; a closed run stops the wait.
            while not self._closed.is_set():
                try:
                    handed.result(timeout=0.2)
                    break
                except TimeoutError:
                    continue
                except BaseException:  # noqa: BLE001 - cancelled with the run's tasks
                    return
            if not isinstance(block, bytes) or not block:
                return

    def close(self) -> None:
        """Stop handing blocks over (a read in progress still waits for input or its end)."""
        self._closed.set()


def open_input(path: str) -> FileInput | StreamInput:
    """The input ``path`` names (``-``: standard input).

    Raises:
        CliError: it cannot be opened.
    """
    if path == "-":
        fd = sys.stdin.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return FileInput(sys.stdin.buffer, None, owned=False)
        return StreamInput(fd)
    try:
        stream = Path(path).open("rb")  # noqa: SIM115 - closed by the caller (close_input)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    status = os.fstat(stream.fileno())
    if stat.S_ISREG(status.st_mode):
        return FileInput(stream, status.st_size, owned=True)
    return _OwnedStream(stream)


class _OwnedStream(StreamInput):
    """A FIFO or device opened by path: read as a stream, closed with it."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream.fileno())
        self._stream = stream

    def close(self) -> None:
        super().close()
        reader = self._reader
        if reader is None or not reader.is_alive():  # never close what a read still uses
            self._stream.close()
