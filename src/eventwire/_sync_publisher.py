"""Publisher: runs the flows of ``_flows`` on the calling thread, blocking where they wait.

Delivery reports are settled on the poll thread; callers wait on thread-safe sinks.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

from eventwire import _flows as flows
from eventwire._backpressure import RoomLine
from eventwire._codec import UserHeaders
from eventwire._config import PublisherConfig
from eventwire._core.record import InFlight
from eventwire._core.transport import TransportFactory
from eventwire._durable.relay import Callback
from eventwire._errors import EventwireError, PublishError, TransactionStateError
from eventwire._events import event_batch
from eventwire._outcome import CloseReport, DeliveryReceipt, PublishOutcome, SyncAccepted
from eventwire._publisher import PublisherBase, check_call_timeout
from eventwire._transactions import Ledger, TransactionScope

_T = TypeVar("_T")


class Publisher(PublisherBase):
    """The synchronous twin of ``AsyncPublisher``: same core, same guarantees.

    Thread-safe: several threads may publish through one instance. Build it in the process
    that uses it: in a child forked after it was built it raises ``PublisherClosedError``.

    Example::

        with eventwire.Publisher(config) as publisher:
            receipt = publisher.publish(OrderPlaced(...))
    """

    _line: RoomLine

    def __init__(
        self, config: PublisherConfig, *, transport: TransportFactory | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        self._line = RoomLine(self._core.handover)
        self._core.start(on_orphan_stopped=self._orphan_stopped())
        if self._relay is not None:
            self._relay.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
        timeout: float | None = None,
    ) -> DeliveryReceipt:
        """Publish one event and block until Kafka acknowledges it.

        Arguments, result and errors are those of ``AsyncPublisher.publish``; without a
        ``timeout`` the wait ends within ``queue_full_timeout`` + ``delivery_timeout`` +
        ``retry.deadline`` + ``delivery_timeout``. A call
        that finds other threads waiting for room in a full local queue waits behind them
        (first come, first served); threads that reach a full queue at the same moment are
        not ordered among themselves.
        """
        check_call_timeout(timeout)
        encoded = self._encode(event, topic, key, headers)
        sink = _EventSink()
        started = flows.publish_at_once(self, encoded, sink)
        if started is flows.TAKEN and timeout is None:
            return sink.wait()  # the common case: no wait but the outcome's
        receipt: DeliveryReceipt = self._run(
            flows.publish(self, encoded, sink, sink, timeout=timeout, started=started)
        )
        return receipt

    def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[PublishOutcome]:
        """Publish events in order and block until every one is settled.

        Returns and raises as ``AsyncPublisher.publish_many``, with the same order per key.
        Once the call waits for room it keeps its place: events of calls that start waiting
        later (from other threads) are produced after the rest of this call.
        """
        self._check_open()
        events = event_batch(events, "publish_many")
        outcomes: list[PublishOutcome] = self._run(
            flows.publish_many(self, events, topic, _Batch(len(events)))
        )
        return outcomes

    def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> SyncAccepted:
        """Commit one event to the durable spool and return as soon as it is durable.

        The sync twin of ``AsyncPublisher.accept``: arguments and errors are the same;
        returns a ``SyncAccepted`` whose ``wait_delivered(timeout)`` blocks for the receipt.
        """
        self._need_spool()
        encoded = self._encode(event, topic, key, headers)
        future: concurrent.futures.Future[DeliveryReceipt] = concurrent.futures.Future()
        self._run(flows.accept(self, encoded, _ThreadFutureSink(future)))
        return SyncAccepted(encoded.event_id, encoded.topic, future)

    def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[SyncAccepted | EventwireError]:
        """Commit events to the durable spool in order and return once they are durable.

        The sync twin of ``AsyncPublisher.accept_many``: one ``SyncAccepted`` (or the error
        that kept the event out) per event, in input order; raises the same errors.
        """
        self._need_spool()
        self._check_open()
        events = event_batch(events, "accept_many")
        results: list[SyncAccepted | EventwireError] = [None] * len(events)  # type: ignore[list-item]

        def target(encoded: Any, index: int) -> _ThreadFutureSink:
            future: concurrent.futures.Future[DeliveryReceipt] = concurrent.futures.Future()
            results[index] = SyncAccepted(encoded.event_id, encoded.topic, future)
            return _ThreadFutureSink(future)

        self._run(flows.accept_many(self, events, topic, results, target))
        return results

    def close(self, timeout: float = 30.0) -> CloseReport:
        """Stop accepting events, wait up to ``timeout`` seconds for outstanding deliveries,
        then fail whatever is left. Bounded like ``AsyncPublisher.aclose``; called again, it
        waits for the first close to finish (within its own ``timeout``), then reports."""
        report: CloseReport = self._run(flows.close(self, timeout))
        return report

    def transaction(self) -> Transaction:
        """A Kafka transaction: ``with publisher.transaction() as tx:``; the sync twin of
        ``AsyncPublisher.transaction`` (same rules and errors). One transaction at a time
        per publisher; its ``tx`` may be used from several threads.

        Raises:
            ConfigError: the publisher has no ``transactional_id``.
        """
        self._need_transactions()
        return Transaction(self)

    def _commit_waiter(self) -> tuple[Callback, Any]:
        commit = _Commit()
        return commit, commit

    # -- the driver --------------------------------------------------------------------------

    def _run(self, flow: flows.Flow[_T]) -> _T:
        return flows.run(flow, self._perform)

    def _perform(self, op: flows.Operation) -> Any:
        """Wait as ``op`` says, blocking this thread."""
        if isinstance(op, flows.Wait):
            waitable, timeout = op.waitable, op.timeout
            del op  # this frame is in the traceback of the error the wait raises
            return waitable.wait(timeout)
        if isinstance(op, flows.Room):
            return self._line.produce(op.produce, op.record, op.limit, op.turn)
        if isinstance(op, flows.Tick):
            core = self._core
            return core.wait_for_room(core.room_generation(), op.timeout)
        if isinstance(op, flows.Blocking):
            return op.call(*op.args)
        return None  # Breathe: nothing else runs on this thread meanwhile


class Transaction(TransactionScope):
    """One Kafka transaction of a ``Publisher``: the sync twin of ``AsyncTransaction``
    (``with`` instead of ``async with``; same methods, outcomes and errors)."""

    __slots__ = ("_publisher",)

    def __init__(self, publisher: Publisher) -> None:
        super().__init__()
        self._publisher = publisher

    def __enter__(self) -> Self:
        """Begin the transaction (raises as ``AsyncTransaction.__aenter__``)."""
        if self._ledger is not None:
            raise TransactionStateError("a transaction is entered once; call transaction() again")
        pub = self._publisher
        ledger = Ledger(_Batch(0))
        pub._run(flows.begin_transaction(pub, ledger))
        self._ledger = ledger
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pub = self._publisher
        pub._run(flows.end_transaction(pub, self._open(), exc))

    def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> DeliveryReceipt:
        """Publish one event in the transaction and block until it is written (as
        ``AsyncTransaction.publish``)."""
        pub = self._publisher
        sink = _EventSink()
        receipt: DeliveryReceipt = pub._run(
            flows.publish_in_transaction(
                pub, self._open(), event, (topic, key, headers), sink=sink, waitable=sink
            )
        )
        return receipt

    def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[DeliveryReceipt]:
        """Publish events in the transaction, in order, and block until every one is written
        (as ``AsyncTransaction.publish_many``)."""
        pub = self._publisher
        ledger = self._open()
        events = event_batch(events, "publish_many")
        receipts: list[DeliveryReceipt] = pub._run(
            flows.publish_many_in_transaction(pub, ledger, events, topic, _Batch(len(events)))
        )
        return receipts

    def send_offsets(self, consumer: Any, offsets: Iterable[Any]) -> None:
        """Commit a consumer's offsets with the transaction (as
        ``AsyncTransaction.send_offsets``)."""
        pub = self._publisher
        pub._run(flows.send_offsets(pub, self._open(), consumer, offsets))


class _EventSink:
    """The outcome of one ``publish`` call, for the thread that waits on it."""

    __slots__ = ("event", "outcome")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.outcome: DeliveryReceipt | PublishError | None = None

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        self.outcome = outcome
        self.event.set()

    def wait(self, timeout: float | None = None) -> DeliveryReceipt:
        if not self.event.wait(timeout):
            raise TimeoutError
        outcome = self.outcome
        self.outcome = None  # the error raised must not be held here: no cycle through it
        if isinstance(outcome, DeliveryReceipt):
            return outcome
        assert outcome is not None  # noqa: S101 - set before the event
        try:
            raise outcome
        finally:
            del outcome  # this frame is in the error's traceback


class _ThreadFutureSink:
    """The delivery of a ``SyncAccepted`` event: a thread-safe future any thread may wait on."""

    __slots__ = ("future",)

    def __init__(self, future: concurrent.futures.Future[DeliveryReceipt]) -> None:
        self.future = future

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        if isinstance(outcome, DeliveryReceipt):
            self.future.set_result(outcome)
        else:
            self.future.set_exception(outcome)


class _Batch:
    """Outcomes of one ``publish_many`` call; done when every hold is released (settled on
    the poll thread while the caller's thread produces: under a lock)."""

    __slots__ = ("_done", "_lock", "outcomes", "remaining")

    def __init__(self, size: int) -> None:
        self.outcomes: list[PublishOutcome | None] = [None] * size
        self.remaining = 1  # the producing caller's own hold
        self._lock = threading.Lock()
        self._done = threading.Event()

    @property
    def waitable(self) -> _Batch:
        return self

    def wait(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def hold(self, count: int) -> None:
        with self._lock:
            self.remaining += count

    def release(self, count: int = 1) -> None:
        with self._lock:
            self.remaining -= count
            finished = self.remaining == 0
        if finished:
            self._done.set()

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        self.outcomes[record.slot] = outcome
        self.release()


class _Commit:
    """A caller waiting for its submission to be committed to the spool."""

    __slots__ = ("event", "failure")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.failure: BaseException | None = None

    def __call__(self, failure: BaseException | None) -> None:
        self.failure = failure
        self.event.set()

    def wait(self, timeout: float | None = None) -> None:
        self.event.wait(timeout)
        failure, self.failure = self.failure, None
        if failure is not None:
            try:
                raise failure
            finally:
                del failure  # this frame is in the error's traceback
