"""AsyncPublisher: runs the flows of ``_flows`` on the event loop.

Futures are only touched on the loop thread: the poll thread hands each batch of reports to
the loop with one ``call_soon_threadsafe`` (``LoopSettler``), and the flows' waits are
awaited here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

from eventwire import _flows as flows
from eventwire._async_settling import AcceptedSink, Batch, FutureSink, LoopSettler
from eventwire._backpressure import AsyncRoomLine
from eventwire._codec import UserHeaders
from eventwire._config import PublisherConfig
from eventwire._core.record import InFlight
from eventwire._core.transport import TransportFactory
from eventwire._durable.relay import Callback, run_callbacks
from eventwire._errors import EventwireError, TransactionStateError
from eventwire._events import event_batch
from eventwire._logs import log as _log
from eventwire._messages import OTHER_LOOP_MESSAGE
from eventwire._outcome import Accepted, CloseReport, DeliveryReceipt, PublishOutcome
from eventwire._publisher import PublisherBase, check_call_timeout
from eventwire._transactions import Ledger, TransactionScope

_T = TypeVar("_T")


class AsyncPublisher(PublisherBase):
    """Publishes events from asyncio code; one ``confluent_kafka.Producer`` underneath.

    Use it as an async context manager, or call ``aclose()``. All methods must be called from
    the event loop the publisher was first used on. Build it in the process that uses it: in
    a child forked after it was built it raises ``PublisherClosedError``.

    Example::

        async with eventwire.AsyncPublisher(config) as publisher:
            receipt = await publisher.publish(OrderPlaced(...))
    """

    _line: AsyncRoomLine

    def __init__(
        self, config: PublisherConfig, *, transport: TransportFactory | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settler: LoopSettler | None = None
        self._room = asyncio.Event()
        self._line = AsyncRoomLine(self._room)

    async def __aenter__(self) -> Self:
        self._bind()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:  # a call from another loop could not be settled on it
            if asyncio.get_running_loop() is not loop:
                self._check_open()
                raise RuntimeError(OTHER_LOOP_MESSAGE)
            return loop
        running = asyncio.get_running_loop()
        self._check_open()  # a closed (or forked) publisher starts no poll thread
        loop = self._loop = running
        core = self._core
        call_soon = loop.call_soon_threadsafe
        settler = self._settler = LoopSettler(loop, core.settle)
        room = self._room

        def hand_over(batch: list[InFlight]) -> None:
            if not settler.hand_over(batch):
                # No loop thread is left to settle on: the poll thread counts the outcomes
                # itself (a close from a later loop reports them).
                core.loop_closed(len(batch))
                settler.rescue()

        def on_room() -> None:
            if not loop.is_closed():
                room.set()

        core.start(handoff=hand_over, on_room=on_room, on_orphan_stopped=self._orphan_stopped())
        if self._relay is not None:
            self._relay.start(lambda calls, failure: call_soon(run_callbacks, calls, failure))
        return loop

    async def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call bound, as the sync twin's
    ) -> DeliveryReceipt:
        """Publish one event and wait for Kafka's acknowledgement.

        Args:
            event: an instance of a class declared with ``@eventwire.event``.
            topic: send to this topic instead of the declared one (the publisher's remapping
                still applies).
            key: use this Kafka key instead of the event's key field.
            headers: extra record headers (names may repeat; str values are sent UTF-8). The
                headers eventwire sets (``ce_specversion``, ``ce_id``, ``ce_source``,
                ``ce_type``, ``ce_time``, ``ce_eventversion``, ``content-type``, in any case)
                are refused; other ``ce_*`` extensions may be given. When tracing records,
                the span's ``traceparent``/``tracestate`` replace the caller's.
            timeout: most seconds to wait, waiting for queue room included; ``None`` waits
                until the outcome, which comes within ``queue_full_timeout`` +
                ``delivery_timeout`` + ``retry.deadline`` + ``delivery_timeout``. When it
                passes first, ``AmbiguousPublishError`` (``code="CALL_TIMED_OUT"``) is raised
                and the event goes on: it may still be delivered.

        Returns:
            The receipt: topic, partition, offset, timestamp and event id.

        Raises:
            EventValidationError: the event does not match its schema (nothing was sent).
            QueueFullError: the local queue stayed full for ``queue_full_timeout`` seconds
                (or until ``timeout``).
            PublishError: delivery failed; the subclass says how (retriable, permanent, fatal,
                ambiguous).
            PublisherClosedError: the publisher was closed.

        While other callers wait for room in a full local queue, this call waits behind them
        (first come, first served), so it never overtakes an earlier event of its key.
        Cancelling the call does not recall an event already handed to Kafka.
        """
        check_call_timeout(timeout)
        loop = self._bind()
        encoded = self._encode(event, topic, key, headers)
        future: asyncio.Future[DeliveryReceipt] = loop.create_future()
        sink = FutureSink(future)
        try:
            started = flows.publish_at_once(self, encoded, sink)
            if started is flows.TAKEN and timeout is None:
                return await future  # the common case: no wait but the outcome's
            receipt: DeliveryReceipt = await self._run(
                flows.publish(self, encoded, sink, future, timeout=timeout, started=started)
            )
            return receipt
        finally:
            # The error raised has this frame in its traceback: holding it (in the future)
            # here would make a cycle that keeps the event until a full collection.
            del future, sink

    async def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[PublishOutcome]:
        """Publish events in order and wait until every one is settled.

        Returns:
            One outcome per event, in input order: its ``DeliveryReceipt``, or the error it met
            (``EventValidationError``, a ``PublishError`` subclass). Events with the same key
            keep their relative order: when one finds no room in the local queue in time
            (``QueueFullError``), the later events of its key in the call get a
            ``QueueFullError`` too (they would overtake it); other failures cancel nothing.
            Once the call waits for room it keeps its place: events of callers arriving later
            are produced after the rest of the call. An iterator or generator is read whole
            first, and every event and outcome is held until the call returns: for a long
            stream, call it per chunk (500,000 650-byte orders from a generator in one call:
            the process peaked at ~1 GB, ~0.6 GB of it the events).

        A large call lets the loop's other tasks run about every 10 ms while it encodes and
        produces; their events may be produced in between. Cancelling it stops producing:
        the events already handed to Kafka are still delivered.

        Raises:
            PublisherClosedError: the publisher was closed before the call.
        """
        loop = self._bind()
        self._check_open()
        events = event_batch(events, "publish_many")
        batch = Batch(len(events), loop.create_future())
        outcomes: list[PublishOutcome] = await self._run(
            flows.publish_many(self, events, topic, batch)
        )
        return outcomes

    async def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> Accepted:
        """Commit one event to the durable spool and return as soon as it is durable.

        A separate method rather than a mode of ``publish``: ``publish`` keeps meaning
        "acknowledged by Kafka" and returns a ``DeliveryReceipt``; ``accept`` means "will reach
        Kafka, even if this process dies now" and returns an ``Accepted`` whose ``delivered()``
        waits for the receipt. Arguments are those of ``publish``.

        Returns:
            The ``Accepted`` handle (event id, topic, ``await delivered()``).

        Raises:
            ConfigError: the publisher has no spool (``PublisherConfig(spool_path=...)``).
            EventValidationError: the event does not match its schema (nothing was written).
            SpoolFullError: the spool stayed full for ``spool_full_timeout`` seconds.
            SpoolError: the spool file could not be written (e.g. disk full).
            PublisherClosedError: the publisher was closed (or is shutting down).

        Cancelling the call after the event was handed to the spool writer does not take it
        back: it may still be committed and delivered.
        """
        self._need_spool()
        loop = self._bind()
        encoded = self._encode(event, topic, key, headers)
        future: asyncio.Future[DeliveryReceipt] = loop.create_future()
        await self._run(flows.accept(self, encoded, AcceptedSink(future)))
        return Accepted(encoded.event_id, encoded.topic, future)

    async def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[Accepted | EventwireError]:
        """Commit events to the durable spool in order (few transactions) and return once
        they are durable.

        Returns:
            One entry per event, in input order: its ``Accepted`` handle, or the error that
            kept it out (``EventValidationError``, ``SpoolFullError``).

        Raises:
            ConfigError: the publisher has no spool.
            SpoolError: the spool file could not be written.
            PublisherClosedError: the publisher was closed before the call.
        """
        self._need_spool()
        loop = self._bind()
        self._check_open()
        events = event_batch(events, "accept_many")
        results: list[Accepted | EventwireError] = [None] * len(events)  # type: ignore[list-item]

        def target(encoded: Any, index: int) -> AcceptedSink:
            future: asyncio.Future[DeliveryReceipt] = loop.create_future()
            results[index] = Accepted(encoded.event_id, encoded.topic, future)
            return AcceptedSink(future)

        await self._run(flows.accept_many(self, events, topic, results, target))
        return results

    async def aclose(self, timeout: float = 30.0) -> CloseReport:  # noqa: ASYNC109 - the API
        """Stop accepting events, wait up to ``timeout`` seconds for outstanding deliveries,
        then fail whatever is left (its callers get a ``PublishError``). With a spool, what is
        left stays in the spool file instead (``CloseReport.spooled``), delivered on the next
        start; waiting callers get a ``RetriablePublishError`` with ``code="SPOOLED"``.

        Always returns within ``timeout`` + about one second, even with the broker gone and
        hundreds of thousands of events in flight. Events given up get no log line each (the
        close's ``eventwire.publisher_closed`` line counts them, the report lists them);
        those whose purge is still being settled when it returns count as undelivered.
        Calling it again waits for the first close to finish (e.g. one `GracefulShutdown`
        started), within its own ``timeout``, then returns a fresh report.
        """
        report: CloseReport = await self._run(flows.close(self, timeout))
        return report

    def transaction(self) -> AsyncTransaction:
        """A Kafka transaction: ``async with publisher.transaction() as tx:``.

        The events published with ``tx.publish``/``tx.publish_many`` (and the consumer
        offsets given to ``tx.send_offsets``) become visible to ``read_committed`` consumers
        together when the block exits cleanly, or not at all: an exception in the block, or
        a failure of any call on ``tx``, aborts the transaction. See docs/transactions.md.

        One transaction at a time per publisher; ``publish()`` and ``publish_many()`` of a
        transactional publisher raise ``TransactionStateError``.

        Raises:
            ConfigError: the publisher has no ``transactional_id``.
        """
        self._need_transactions()
        return AsyncTransaction(self)

    def _commit_waiter(self) -> tuple[Callback, Any]:
        loop = self._loop or self._bind()
        commit: asyncio.Future[None] = loop.create_future()

        def committed(failure: BaseException | None) -> None:
            if commit.done():
                return
            if failure is None:
                commit.set_result(None)
            else:
                commit.set_exception(failure)

        return committed, commit

    # -- the driver --------------------------------------------------------------------------

    def _run(self, flow: flows.Flow[_T]) -> Awaitable[_T]:
        return flows.run_async(flow, self._perform)

    async def _perform(self, op: flows.Operation) -> Any:
        """Wait as ``op`` says, on the event loop."""
        if isinstance(op, flows.Wait):
            # This frame is in the traceback of the error the future raises: it must not hold
            # the future (nor the operation), or the event lives until a full collection.
            waitable, timeout = op.waitable, op.timeout
            del op
            try:
                if timeout is None:
                    return await waitable
                async with asyncio.timeout(timeout):  # the outcome itself is not cancelled
                    return await asyncio.shield(waitable)
            finally:
                del waitable
        if isinstance(op, flows.Room):
            return await self._line.produce(op.produce, op.record, op.limit, op.turn)
        if isinstance(op, flows.Tick):
            return await self._tick(op.timeout)
        if isinstance(op, flows.Blocking):
            return await asyncio.to_thread(op.call, *op.args)
        await asyncio.sleep(0)  # Breathe: the loop's other tasks run
        return None

    async def _tick(self, seconds: float) -> None:
        loop = self._loop
        if loop is not None and asyncio.get_running_loop() is not loop:
            # Closed from a later loop: reports are settled on the poll thread, which never
            # wakes this loop's tasks; what the ended loop dropped is settled here.
            if loop.is_closed() and self._settler is not None:
                self._settler.rescue()
            core = self._core
            await asyncio.to_thread(core.wait_for_room, core.room_generation(), seconds)
            return
        room = self._room
        room.clear()
        try:
            await asyncio.wait_for(room.wait(), seconds)
        except TimeoutError:
            return


class AsyncTransaction(TransactionScope):
    """One Kafka transaction of an ``AsyncPublisher`` (``publisher.transaction()``).

    Entering begins it (the publisher's first transaction initialises transactions first:
    that fences older producers with the same ``transactional_id``). A clean exit waits until
    every event is written, then commits: after it, ``receipts`` holds every event's receipt
    in publish order and ``committed`` is true. An exception in the block aborts it and goes
    on; a failed call inside (even one the block caught) aborts it too, and the exit raises
    ``TransactionAbortedError``. Cancelling the exit does not stop the commit or abort under
    way: it completes in the background.

    Raises (on exit):
        TransactionAbortedError: it was aborted; nothing of it is visible; run it again.
        ProducerFencedError: a newer producer with the same ``transactional_id`` took over;
            nothing of this transaction is visible, and the publisher publishes nothing more.
        AmbiguousTransactionError: the commit was not confirmed within
            ``transaction_timeout``; the publisher publishes nothing more.
        FatalTransactionError: the producer failed otherwise; nothing of this transaction is
            visible, and the publisher publishes nothing more.
    """

    __slots__ = ("_publisher",)
    _statement = "async with"

    def __init__(self, publisher: AsyncPublisher) -> None:
        super().__init__()
        self._publisher = publisher

    async def __aenter__(self) -> Self:
        """Begin the transaction.

        Raises:
            TransactionStateError: a transaction of this publisher is open already, or this
                one was entered before.
            TransactionAbortedError: transactions could not be initialised in time.
            FatalTransactionError: the producer failed (e.g. fenced).
            PublisherClosedError: the publisher was closed.
        """
        if self._ledger is not None:
            raise TransactionStateError("a transaction is entered once; call transaction() again")
        pub = self._publisher
        ledger = Ledger(Batch(0, pub._bind().create_future()))
        await pub._run(flows.begin_transaction(pub, ledger))
        self._ledger = ledger
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pub = self._publisher
        ending = asyncio.ensure_future(pub._run(flows.end_transaction(pub, self._open(), exc)))
        try:
            await asyncio.shield(ending)
        except asyncio.CancelledError:
            if not ending.done():
                ending.add_done_callback(_retrieve)
            raise

    async def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> DeliveryReceipt:
        """Publish one event in the transaction and wait until it is written.

        Arguments are those of ``AsyncPublisher.publish``; ``event`` may also be an
        ``eventwire.codec.EncodedEvent`` (encoded earlier by ``EventCodec``, e.g. a record the
        transactional outbox stored), produced as it is (no ``topic``, ``key`` or
        ``headers`` then). The receipt says where it was written; ``read_committed``
        consumers see it once the transaction commits.

        Raises:
            EventValidationError, PublishError: as ``AsyncPublisher.publish``; the
                transaction then cannot commit (its exit aborts it).
            TransactionStateError: the transaction has ended.
        """
        pub = self._publisher
        future: asyncio.Future[DeliveryReceipt] = pub._bind().create_future()
        try:
            receipt: DeliveryReceipt = await pub._run(
                flows.publish_in_transaction(
                    pub,
                    self._open(),
                    event,
                    (topic, key, headers),
                    sink=FutureSink(future),
                    waitable=future,
                )
            )
            return receipt
        finally:
            del future  # the error raised holds this frame: no cycle through it

    async def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[DeliveryReceipt]:
        """Publish events in the transaction, in order, and wait until every one is written.

        Every event is validated and encoded first: an invalid one raises before any is
        produced. ``EncodedEvent`` items are produced as they are (see ``publish``).

        Returns:
            Every event's receipt, in input order.

        Raises:
            EventValidationError, PublishError: the first error, in input order, once every
                event produced is settled; the transaction then cannot commit.
            TransactionStateError: the transaction has ended.
        """
        pub = self._publisher
        ledger = self._open()
        events = event_batch(events, "publish_many")
        batch = Batch(len(events), pub._bind().create_future())
        receipts: list[DeliveryReceipt] = await pub._run(
            flows.publish_many_in_transaction(pub, ledger, events, topic, batch)
        )
        return receipts

    async def send_offsets(self, consumer: Any, offsets: Iterable[Any]) -> None:
        """Commit a consumer's offsets with the transaction (consume-transform-produce).

        Args:
            consumer: the ``confluent_kafka.Consumer`` the input was read with (its
                ``consumer_group_metadata()`` is sent).
            offsets: ``confluent_kafka.TopicPartition`` entries with the next offset to read
                (the last processed offset + 1), e.g. ``consumer.position(assignment)``.

        Raises:
            TransactionAbortedError: the offsets were refused; the transaction cannot
                commit.
            FatalTransactionError: the producer failed (e.g. fenced).
            TransactionStateError: the transaction has ended.
        """
        pub = self._publisher
        await pub._run(flows.send_offsets(pub, self._open(), consumer, offsets))


def _retrieve(task: asyncio.Future[None]) -> None:
    """The end of a transaction whose caller was cancelled: its error is logged, not lost."""
    if not task.cancelled() and task.exception() is not None:
        _log.warning("eventwire.transaction_end_failed", reason=str(task.exception()))
