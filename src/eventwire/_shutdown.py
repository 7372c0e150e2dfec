"""GracefulShutdown: SIGTERM/SIGINT stop a publisher within a deadline, never blocking in a
signal handler.

First signal: intake stops at once (``publish``/``accept`` raise ``PublisherClosedError``),
``requested`` becomes true, ``wait()`` returns, and closing starts: outstanding events are
flushed within the deadline (less a second for the teardown), and what is not acknowledged by
then stays in the spool (with ``spool_path``) or is reported in
``CloseReport.undelivered_event_ids`` (without). A caller still blocked in ``publish`` (the
broker down, the event being retried) gets its outcome by the deadline too, so the service
loop ends in time. Leaving the ``with`` block waits for that close (or closes, without a
signal). ``eventwire.publisher_closed`` is the one summary line (delivered / spooled / failed /
undelivered).

Second signal: the process exits at once (``os._exit(128 + signal)``). With a spool nothing
accepted is lost by that: it is replayed on the next start.

The handlers only set flags: the async twin uses ``loop.add_signal_handler`` (the callback
runs on the event loop, between callbacks, and starts ``aclose`` as a task), the sync twin
``signal.signal`` with a handler that sets a flag and returns; a thread waiting on that flag
closes the publisher.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, Self, runtime_checkable

from eventwire._config_checks import check_seconds
from eventwire._logs import log as _log
from eventwire._outcome import CloseReport

if TYPE_CHECKING:
    from eventwire._async_publisher import AsyncPublisher
    from eventwire._sync_publisher import Publisher


@runtime_checkable
class _AsyncTwin(Protocol):
    """What the async shutdown needs of an `AsyncPublisher` (the fakes are ones)."""

    def _stop_intake(self) -> None: ...

    async def aclose(self, timeout: float = ...) -> CloseReport: ...  # noqa: ASYNC109


@runtime_checkable
class _SyncTwin(Protocol):
    """What the sync shutdown needs of a `Publisher` (the fakes are ones)."""

    def _stop_intake(self) -> None: ...

    def close(self, timeout: float = ...) -> CloseReport: ...


#: Seconds of the deadline kept for the teardown after the flush: the poll thread may be in a
#: breaker probe (up to ``BreakerPolicy.probe_timeout``) and the producer must be closed.
_TEARDOWN: Final = 1.0


class GracefulShutdown:
    """Closes a publisher within ``deadline`` seconds of SIGTERM/SIGINT; a second signal
    exits at once.

    Use ``async with`` around an ``AsyncPublisher`` (on its event loop), or ``with`` around a
    ``Publisher`` (on the main thread: Python runs signal handlers there). Leaving the block
    closes the publisher — signal or not — and restores the previous handlers.

    Example::

        async with eventwire.AsyncPublisher(config) as publisher:
            async with eventwire.GracefulShutdown(publisher, deadline=10.0) as shutdown:
                while not shutdown.requested:
                    await publisher.accept(next_event())
            print(shutdown.report)

    Args:
        publisher: the publisher to stop; the fake publishers of ``eventwire.testing`` work
            too, so a service's shutdown loop can be unit-tested.
        deadline: seconds from the first signal (or from leaving the block, without one)
            until the publisher is closed; outstanding events get all of it but the last
            second (kept for stopping threads and closing the producer) to be delivered.
        signals: the signals to handle.

    Raises:
        ConfigError: ``deadline`` is not a positive number of seconds.
        TypeError: ``publisher`` is not a publisher (real or fake).
    """

    def __init__(
        self,
        publisher: AsyncPublisher | Publisher,
        *,
        deadline: float = 10.0,
        signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    ) -> None:
        check_seconds("deadline", deadline)
        if not isinstance(publisher, _AsyncTwin | _SyncTwin):
            raise TypeError(
                "GracefulShutdown needs an eventwire.AsyncPublisher or eventwire.Publisher "
                f"(or a fake of eventwire.testing), not {type(publisher).__name__}"
            )
        self.publisher = publisher
        self.deadline = float(deadline)
        self.signals = tuple(signals)
        #: The signal that started the shutdown, or ``None``.
        self.signal: signal.Signals | None = None
        #: What closing the publisher reported (set when the block ends).
        self.report: CloseReport | None = None
        self._requested_at: float | None = None
        self._flag = threading.Event()
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._closing: asyncio.Task[CloseReport] | None = None
        self._closer: threading.Thread | None = None
        self._close_lock = threading.Lock()
        # Set by the first signal, or once the block is left (the handlers restored by then):
        # wakes the sync twin's closing thread.
        self._wake = threading.Event()

    @property
    def requested(self) -> bool:
        """Whether a shutdown signal arrived."""
        return self._flag.is_set()

    def _first(self, signum: signal.Signals) -> None:
        """Record the first signal: stop intake, set the flag. A second one exits now."""
        if self._flag.is_set():
            os._exit(128 + int(signum))
        self.signal = signum
        self._requested_at = time.monotonic()
        self.publisher._stop_intake()
        self._flag.set()
        self._wake.set()

    def _remaining(self) -> float:
        """The flush budget: what is left of the deadline, less ``_TEARDOWN`` seconds kept
        for stopping threads and closing the producer after the flush."""
        started = self._requested_at if self._requested_at is not None else time.monotonic()
        return max(0.001, self.deadline - _TEARDOWN - (time.monotonic() - started))

    # -- async -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if not isinstance(self.publisher, _AsyncTwin):
            raise TypeError("use 'with GracefulShutdown(...)' for a sync Publisher")
        loop = self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        for signum in self.signals:
            self._previous[signum] = signal.getsignal(signum)
            loop.add_signal_handler(signum, self._on_signal_async, signum)
        return self

    def _on_signal_async(self, signum: signal.Signals) -> None:
        # Runs on the event loop as an ordinary callback: no flush, no wait here.
        self._first(signum)
        _log.warning("eventwire.shutdown_requested", signal=signum.name, deadline_s=self.deadline)
        publisher = self.publisher
        assert isinstance(publisher, _AsyncTwin)  # noqa: S101 - checked in __aenter__
        if self._closing is None:
            # Closing now, not when the block ends: a caller awaiting an event the broker
            # does not take gets its outcome by the deadline instead of after its retries.
            self._closing = asyncio.ensure_future(publisher.aclose(self._remaining()))
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Return once a shutdown signal arrived (async twin only)."""
        if self._event is None:
            raise RuntimeError("GracefulShutdown.wait() needs 'async with GracefulShutdown(...)'")
        await self._event.wait()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        publisher = self.publisher
        assert isinstance(publisher, _AsyncTwin)  # noqa: S101 - checked in __aenter__
        try:
            # The handlers stay installed while closing: a second signal still exits at once.
            if self._closing is not None:
                self.report = await self._closing
            else:
                self.report = await publisher.aclose(self._remaining())
        finally:
            loop = self._loop
            if loop is not None:
                for signum in self.signals:
                    loop.remove_signal_handler(signum)
            self._restore()

    # -- sync ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if not isinstance(self.publisher, _SyncTwin) or isinstance(self.publisher, _AsyncTwin):
            raise TypeError("use 'async with GracefulShutdown(...)' for an AsyncPublisher")
        self._closer = threading.Thread(
            target=self._close_on_signal, name="eventwire-shutdown", daemon=True
        )
        self._closer.start()
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._on_signal_sync)
        return self

    def _close_on_signal(self) -> None:
        """The closing thread: once a signal arrived, close the publisher (a caller blocked
        in ``publish`` gets its outcome by the deadline); returns when the block is left."""
        self._wake.wait()
        if self._flag.is_set():
            self._close_sync()

    def _close_sync(self) -> CloseReport:
        """Close the publisher once, from whichever thread comes first."""
        publisher = self.publisher
        assert isinstance(publisher, _SyncTwin)  # noqa: S101 - checked in __enter__
        with self._close_lock:
            if self.report is None:
                if self.signal is not None:
                    _log.warning(
                        "eventwire.shutdown_requested",
                        signal=self.signal.name,
                        deadline_s=self.deadline,
                    )
                self.report = publisher.close(self._remaining())
            return self.report

    def _on_signal_sync(self, signum: int, _frame: FrameType | None) -> None:
        # Only flags: the main thread may be anywhere, even inside a lock the log uses.
        self._first(signal.Signals(signum))

    def wait_sync(self, timeout: float | None = None) -> bool:
        """Block until a shutdown signal arrived or ``timeout`` passed; True if it arrived."""
        return self._flag.wait(timeout)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._close_sync()
        finally:
            self._restore()
            self._wake.set()  # after the restore: no handler of ours can interrupt this set
            if self._closer is not None:
                self._closer.join()

    def _restore(self) -> None:
        """Put back the handlers that were installed before (asyncio's
        ``remove_signal_handler`` alone would reset them to the defaults)."""
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)
        self._previous.clear()
