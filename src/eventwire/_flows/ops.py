"""What a flow yields when it waits, and the loops that drive flows (one per twin)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from eventwire._errors import PublisherClosedError

if TYPE_CHECKING:
    from eventwire._backpressure import Turn
    from eventwire._core.record import InFlight

_T = TypeVar("_T")

SLICE_CHECK: Final = 256
#: A batch serves the delivery reports librdkafka holds this often (events; a multiple of
#: ``SLICE_CHECK``), while the poll thread stands aside.
SERVE_EVERY: Final = 1024
#: A large call lets other work run this often (seconds): the async driver yields to the
#: event loop, so one large publish_many does not stall the application.
LOOP_SLICE: Final = 0.01
#: Events encoded for the spool between two such checks.
SPOOL_SLICE: Final = SLICE_CHECK * 8
#: After its deadline a close has this long (seconds) for everything left: settling what it
#: gave up, stopping the poll thread (the last ``STOP_SHARE`` of it at least) and the spool
#: writer; so it returns within its timeout + about one second, whatever is left.
CLOSE_GRACE: Final = 0.75
STOP_SHARE: Final = 0.25
#: Most seconds one wait for room lasts before the flow checks its deadline again.
TICK: Final = 0.1


# -- what a flow waits for --------------------------------------------------------------------


class Room:
    """Wait for the caller's turn and room in the local queue, then ``produce(record)``
    (which refuses it if the publisher closed meanwhile); the result is whether it was
    produced within ``limit`` seconds."""

    __slots__ = ("limit", "produce", "record", "turn")

    def __init__(
        self,
        record: InFlight,
        turn: Turn | None,
        limit: float,
        produce: Callable[[InFlight], None],
    ) -> None:
        self.record = record
        self.turn = turn
        self.limit = limit
        self.produce = produce


class Wait:
    """Wait for a sink or a commit made by the driver; the result is its outcome (or the
    error it holds is raised). With a ``timeout``, ``TimeoutError`` is raised when it passes
    first (the outcome is not cancelled: it is settled, counted and logged all the same)."""

    __slots__ = ("timeout", "waitable")

    def __init__(self, waitable: Any, timeout: float | None = None) -> None:
        self.waitable = waitable
        self.timeout = timeout


class Tick:
    """Wait until the core settled another batch of reports (room may have been freed), at
    most ``timeout`` seconds."""

    __slots__ = ("timeout",)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout


class Blocking:
    """Run a blocking call (off the event loop, for the async driver)."""

    __slots__ = ("args", "call")

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        self.call = call
        self.args = args


class Breathe:
    """Let other work run (the async driver yields to the event loop once)."""

    __slots__ = ()


BREATHE: Final = Breathe()
Operation = Room | Wait | Tick | Blocking | Breathe
Flow = Generator[Operation, Any, _T]


class _Step(Generic[_T]):
    """One flow being driven: the operation it waits on, or its result once it returned."""

    __slots__ = ("_flow", "op", "result", "running")

    def __init__(self, flow: Flow[_T]) -> None:
        self._flow = flow
        self.running = True
        self.op: Operation | None = None
        self.result: _T | None = None
        self.resume(None, None)

    def resume(self, value: Any, error: BaseException | None) -> None:
        """Send the wait's result (or throw its error) into the flow, up to its next wait.
        A wait's error raised again by the flow goes on to the driver's caller."""
        # Dropped first: an error raised from here has this step in its traceback, and the
        # operation (a future holding that error) would make a cycle keeping the event alive.
        self.op = None
        try:
            self.op = self._flow.send(value) if error is None else self._flow.throw(error)
        except StopIteration as stop:
            self.running = False
            self.result = stop.value
        finally:
            value = error = None  # this frame is in the traceback of an error raised here


def run(flow: Flow[_T], perform: Callable[[Any], Any]) -> _T:
    """Drive ``flow`` on this thread: ``perform(op)`` blocks for each wait it yields."""
    step = _Step(flow)
    while step.running:
        try:
            value = perform(step.op)
        except BaseException as exc:  # noqa: BLE001 - thrown into the flow
            step.resume(None, exc)
        else:
            step.resume(value, None)
    return step.result  # type: ignore[return-value]  # set once the flow returned


async def run_async(flow: Flow[_T], perform: Callable[[Any], Awaitable[Any]]) -> _T:
    """Drive ``flow`` on the event loop: ``await perform(op)`` for each wait it yields."""
    step = _Step(flow)
    while step.running:
        try:
            value = await perform(step.op)
        except BaseException as exc:  # noqa: BLE001 - thrown into the flow
            step.resume(None, exc)
        else:
            step.resume(value, None)
    return step.result  # type: ignore[return-value]  # set once the flow returned


def refuse_rest(outcomes: list[Any], first: int, message: str) -> None:
    """A call interrupted by a close: its events from ``first`` on were not accepted. They
    share one error: a large call's hundreds of thousands of exceptions would cost the closing
    process a full collection or two."""
    count = len(outcomes) - first
    outcomes[first:] = [PublisherClosedError(message)] * count


def left(until: float, at_least: float = 0.1) -> float:
    """Seconds from now to ``until``, at least ``at_least`` (by default a last step of a
    close always gets a moment)."""
    return max(at_least, until - time.monotonic())
