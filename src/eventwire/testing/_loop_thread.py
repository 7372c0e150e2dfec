"""An asyncio event loop on a daemon thread, driven from other threads by blocking calls.

`FaultProxy` relays bytes on such a loop so that sync and async tests drive it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


class LoopThread:
    """One event loop running on a daemon thread, from `start` to `stop`.

    Args:
        name: the thread's name.
        owner: what the loop serves, for error messages (e.g. ``"the fault proxy"``).
    """

    def __init__(self, name: str, owner: str) -> None:
        self._name = name
        self._owner = owner
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_run_forever, args=(loop,), name=self._name, daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

    def call(self, work: Callable[[], Coroutine[Any, Any, _T]], timeout: float) -> _T:
        """Run ``work()`` on the loop and return its result; blocks the calling thread.

        Raises:
            RuntimeError: the loop is not running, or this is the loop's own thread.
            TimeoutError: ``work`` did not finish within ``timeout`` seconds.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError(f"{self._owner} is not running: call start() first")
        self.check_caller()
        return asyncio.run_coroutine_threadsafe(work(), loop).result(timeout)

    def check_caller(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                f"the methods of {self._owner} block until its loop ran them: call them from"
                " another thread, not from its own"
            )

    def stop(self, timeout: float) -> None:
        """Stop the loop and wait up to ``timeout`` for its thread; what is left is cancelled."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed by its thread meanwhile
                loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
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
