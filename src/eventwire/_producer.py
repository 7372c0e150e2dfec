"""ProducerCore: the one ``confluent_kafka.Producer`` of a publisher, its poll thread, and the
failure handling that applies to every delivery report.

Threads, in one place:

* callers (the event loop thread, or any thread for the sync publisher) call ``produce()``;
* one daemon thread polls librdkafka; each delivery callback only stores its report (``err``,
  and the ``DeliveryReceipt`` when delivered) on its ``Pending`` and appends it to a list; after
  each ``poll()`` the whole list is handed over at once through the ``handoff`` the publisher
  injected:
  ``loop.call_soon_threadsafe(core.settle, batch)`` for the async publisher (so futures are
  only touched on the loop thread), a direct ``core.settle`` call for the sync publisher;
* the poll thread also does the core's own producing: retries that are due, events released
  after a retry, dead-letter records, and the replacement of a producer after a fatal error.
  When one of those is refused, a synthetic report goes through the same handoff.

What happens to a failed delivery (``_on_failure``), in order:

1. a fatal error (or ``PRODUCER_FENCED``, or a message timeout: the idempotence state is then
   in doubt) schedules the producer's replacement; the event is treated as ambiguous (it may
   have been written);
2. **retry** — retriable (and, if the policy says so, ambiguous) failures are re-sent after an
   exponential, jittered backoff, within the policy's attempts and deadline. The event's key
   enters a *hold*: events with that key accepted later wait behind it, and after the first
   re-send succeeds everything held is released in order, so no event overtakes an earlier one
   of the same key. A *durable* event (in the spool) whose retries ran out is parked instead
   of failing: it stays the head of its hold and is re-sent every ``PARK_DELAY`` until
   delivered (never dead-lettered, never a failure);
3. **dead-letter** — permanent failures and exhausted retries are written to the dead-letter
   topic when a ``DeadLetterPolicy`` is set; the caller gets ``DeadLetteredError``, or the
   original error if the dead-letter write fails too;
4. otherwise the caller gets the classified ``PublishError``.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Producer

from eventwire._breaker import CircuitBreaker
from eventwire._classify import FailureClass, classify, still_ambiguous, to_publish_error
from eventwire._codec import EncodedEvent
from eventwire._config import PublisherConfig
from eventwire._dead_letter import dead_letter_record
from eventwire._errors import (
    CLOSED_MESSAGE,
    CircuitOpenError,
    ConfigError,
    DeadLetteredError,
    PermanentPublishError,
    PublisherClosedError,
    PublishError,
)
from eventwire._health import HealthProbe
from eventwire._lifecycle import forked_message, track
from eventwire._logs import librdkafka_log
from eventwire._logs import log as _log
from eventwire._outcome import DeliveryReceipt
from eventwire._telemetry import Instrumentation, instrumentation_for

#: How long one ``poll()`` blocks when nothing happens; bounds how fast the thread sees a stop
#: or a due retry.
_POLL_INTERVAL: Final = 0.05
#: How long one ``flush()`` of a closing publisher blocks: short, so the reports it served
#: are handed over about as soon as by ``poll()``.
_CLOSE_FLUSH_SLICE: Final = 0.01
#: librdkafka's default queue.buffering.max.kbytes (1 GB).
_DEFAULT_QUEUE_KBYTES: Final = 1_048_576
#: How long a replaced producer is still polled for the reports of what it held.
_RETIRE_GRACE: Final = 30.0
#: Back-off of the poll loop while the same step fails again and again: doubles from the base.
_BACKOFF_BASE: Final = 0.005
_BACKOFF_MAX: Final = 0.1
#: Delay before a durable (spooled) event whose retries ran out is sent again.
PARK_DELAY: Final = 1.0
#: Most reports handed over in one batch: the event loop settles one batch per iteration, so
#: a burst of reports (a large publish_many) does not stall the loop's other tasks.
HANDOFF_MAX: Final = 4096

Handoff = Callable[[list["Pending"]], object]


class Pending:
    """An accepted event waiting for its delivery report.

    Subclasses say what to do with the outcome (resolve a future, fill a batch slot, wake a
    thread). The instance itself is the ``on_delivery`` callback, so producing allocates no
    closure.
    """

    __slots__ = (
        "_append",
        "connection_errors",
        "encoded",
        "err",
        "failures",
        "first_failure",
        "generation",
        "maybe_written",
        "order",
        "receipt",
        "span",
        "t0",
        "unsent",
    )
    #: A durable event (in the spool) is never given up for a transient failure: when its
    #: retries run out it is *parked* (re-sent after ``PARK_DELAY``, its key still held).
    durable: bool = False
    _append: Callable[[Pending], None]
    #: ``ProducerCore.connection_errors`` when the event was last handed to librdkafka.
    connection_errors: int
    encoded: EncodedEvent
    #: The latest report, until settled: ``None`` (delivered, then ``receipt`` says where), a
    #: ``KafkaError``, or the ``PublishError`` of a re-send librdkafka refused.
    err: Any
    receipt: DeliveryReceipt
    failures: int
    first_failure: float
    generation: int
    #: An earlier attempt failed ambiguously (it may be in Kafka). Set only then: read it
    #: with ``getattr(pending, "maybe_written", False)``.
    maybe_written: bool
    #: Acceptance order (``ProducerCore.produce``): failures of a key are re-sent in this order.
    order: int
    #: Set by the instrumentation only (``_telemetry``): the event's span and start time.
    span: Any
    t0: float | None
    #: No attempt can have been written: every failed report so far came without a
    #: partition (librdkafka never assigned the message one: no metadata for its topic).
    #: Set by ``ProducerCore.produce``.
    unsent: bool

    def __call__(self, err: Any, msg: Any) -> None:
        # Runs inside Producer.poll() on the poll thread: only record, never resolve here.
        # The report lives on the instance (no tuple per delivery for the cyclic collector),
        # and librdkafka's message, which holds a copy of the record, is dropped right away.
        self.err = err
        if err is None:
            enc = self.encoded
            self.receipt = DeliveryReceipt(
                enc.topic, msg.partition(), msg.offset(), msg.timestamp()[1], enc.event_id
            )
        elif msg.partition() is not None:
            self.unsent = False
        self._append(self)

    def refused(self, error: PublishError) -> None:
        """Report a re-send that librdkafka refused (a synthetic failed delivery)."""
        self.err = error
        self._append(self)

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        raise NotImplementedError


class _DeadLetterDelivery(Pending):
    """The dead-letter record of ``original``: its outcome settles the original event."""

    __slots__ = ("error", "original", "telemetry")

    #: A dead-letter write that fails transiently (or on a fenced producer) is tried again.
    ATTEMPTS: Final = 3

    def __init__(self, encoded: EncodedEvent, original: Pending, error: PublishError) -> None:
        self.encoded = encoded
        self.original = original
        self.error = error
        self.failures = 0
        self.generation = self.connection_errors = self.order = 0
        self.span = self.t0 = None
        self.telemetry: Instrumentation | None = None
        self.unsent = True

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        error = self.error
        telemetry = self.telemetry
        if isinstance(outcome, DeliveryReceipt):
            dead = DeadLetteredError(
                f"event {error.event_id} was dead-lettered to {outcome.topic!r} "
                f"(partition {outcome.partition}, offset {outcome.offset}) after: {error}",
                topic=error.topic,
                event_id=error.event_id,
                attempts=error.attempts,
                code=error.code,
                dead_letter=outcome,
            )
            dead.__cause__ = error
            _log.error(
                "eventwire.dead_lettered",
                topic=error.topic,
                event_id=error.event_id,
                dead_letter_topic=outcome.topic,
                error_class=error.category,
                code=error.code,
                attempts=error.attempts,
            )
            if telemetry is not None:
                telemetry.dead_lettered(self.original, outcome.topic)
                telemetry.finish(self.original, dead)
            self.original.settle(dead)
        else:
            _log.error(
                "eventwire.dead_letter_failed",
                topic=error.topic,
                event_id=error.event_id,
                event_type=self.original.encoded.event_type,
                error_class=error.category,
                code=error.code,
                attempts=error.attempts,
                dead_letter_code=outcome.code,
                dead_letter_error=str(outcome),
            )
            if telemetry is not None:
                telemetry.finish(self.original, error)
            self.original.settle(error)


class _KeyHold:
    """Events of one key while one of them is being retried.

    ``failed`` are failed events awaiting a re-send, in the order they were accepted
    (``failed[0]`` is the head, the one re-sent first); ``held`` were accepted later and never
    produced yet.
    """

    __slots__ = ("failed", "head_in_flight", "held")

    def __init__(self) -> None:
        self.failed: deque[Pending] = deque()
        self.held: deque[Pending] = deque()
        self.head_in_flight = False


def _insert_failed(hold: _KeyHold, pending: Pending) -> None:
    """Put a failed event in its place among the failed events of its key. Failures can be
    reported out of order: after a producer replacement, purge reports of a partition came
    back with newer events before older ones (the fault suite saw keys re-sent out of order).
    A head already re-sent keeps its place."""
    failed = hold.failed
    index = len(failed)
    first = 1 if hold.head_in_flight else 0
    while index > first and failed[index - 1].order > pending.order:
        index -= 1
    failed.insert(index, pending)


def too_large_error(enc: EncodedEvent, limit: int, err: KafkaError) -> PermanentPublishError:
    """The error of an event librdkafka refused as larger than ``message.max.bytes``."""
    error = PermanentPublishError(
        f"event {enc.event_id} ({enc.event_type}) is {len(enc.value):,} bytes encoded"
        f" (+ key and headers), over the producer's limit message.max.bytes="
        f"{limit:,}, which librdkafka checks before compression; it was not sent (raise it"
        " with PublisherConfig(librdkafka_overrides={'message.max.bytes': ...}); the topic's"
        " max.message.bytes must allow it too)",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
        code=err.name(),
    )
    error.__cause__ = KafkaException(err)
    return error


def _size_limits(settings: Mapping[str, object]) -> tuple[int, int]:
    """``(message.max.bytes, queue.buffering.max.kbytes in bytes)`` of librdkafka settings."""
    kbytes = settings.get("queue.buffering.max.kbytes", _DEFAULT_QUEUE_KBYTES)
    return int(str(settings.get("message.max.bytes", 1_000_000))), int(str(kbytes)) * 1024


def too_large_for_queue_error(enc: EncodedEvent, limit: int) -> PermanentPublishError:
    """The error of an event larger than librdkafka's whole local queue (it never fits)."""
    error = PermanentPublishError(
        f"event {enc.event_id} ({enc.event_type}) is {len(enc.value):,} bytes encoded, more"
        f" than the local producer queue holds (queue.buffering.max.kbytes={limit // 1024:,}"
        f" = {limit:,} bytes); it can never be queued and was not sent",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=0,
        code="MSG_SIZE_TOO_LARGE",
    )
    error.__cause__ = KafkaException(KafkaError(KafkaError._QUEUE_FULL))
    return error


class ProducerCore:
    """Owns the librdkafka producer, the poll thread and the delivery bookkeeping."""

    #: The last client error other than _ALL_BROKERS_DOWN (which follows every failed
    #: connection): the cause a failure message names (a refused TLS or SASL handshake).
    _last_cause: str | None = None
    #: The hand-over ``order`` of the latest acknowledged event seen: the cluster took a
    #: write after every event handed over before it, so a failure of such an event is about
    #: its partition (e.g. one that vanished when its topic was re-created with fewer
    #: partitions), not the cluster, and does not count toward the breaker.
    _acknowledged_order: int = -1
    #: Stops the spool's writer and closes its file: run by the poll thread as it stops after
    #: the publisher was dropped unclosed, as a close would.
    spool_stop: Callable[[], object] | None = None

    def __init__(self, config: PublisherConfig) -> None:
        self.config = config
        self._settings: dict[str, object] = dict(config.to_librdkafka())
        self._settings["error_cb"] = self._on_error
        self._settings["logger"] = _LibrdkafkaLog(config.scrub)
        self._error_lines = RepeatLimit()
        #: ``None`` unless an OpenTelemetry SDK records (decided once, here).
        self.telemetry = telemetry = instrumentation_for(config)
        if telemetry is not None and telemetry.statistics_interval_ms > 0:
            self._settings["stats_cb"] = telemetry.on_statistics
            self._settings.setdefault("statistics.interval.ms", telemetry.statistics_interval_ms)
        self.health_probe = HealthProbe()
        self._producer = self._new_producer()
        self._generation = 0
        self._retired: list[tuple[Any, float]] = []
        self._recreate_reason: str | None = None
        #: Closed from a producer's replacement until the reports of what the replaced one
        #: held are settled; events accepted meanwhile wait in ``_gated`` (see _recreate).
        self._gate_closed = False
        self._gated: deque[Pending] = deque()
        #: The batch whose settling opens the gate, once handed over (identity, not content).
        self._gate_batch: list[Pending] | None = None
        self._reports: list[Pending] = []
        self._append = self._reports.append
        self._handoff: Handoff = self.settle
        self._on_room: Callable[[], None] = _noop
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: Clear while a caller produces a batch: the poll thread then waits, so the two threads
        #: do not trade the GIL for every delivery callback (confluent-kafka takes and drops
        #: it per callback); the reports are served in one burst when the batch is in.
        self._batches = 0
        self._no_batch = threading.Event()
        self._no_batch.set()
        self._lock = threading.Lock()
        self._room, self._room_generation = threading.Condition(threading.Lock()), 0
        self.retry, self.dead_letter = config.retry, config.dead_letter
        self.breaker = (
            CircuitBreaker(config.breaker, on_change=_log_breaker_change)
            if config.breaker is not None
            else None
        )
        self._holds: dict[object, _KeyHold] = {}
        self._due: list[tuple[float, int, object]] = []
        self._sequence, self._orders = itertools.count(), itertools.count()
        self._releases: deque[object] = deque()
        self._dead_letters: deque[tuple[Pending, PublishError, int]] = deque()
        self._abandoning = False
        #: Counters (``outstanding`` is what was accepted and not settled yet).
        self.outstanding = self.delivered = self.failed = 0
        self.retries = self.dead_lettered = self.recreations = 0
        self.closed = False
        #: The process that built this core. ``forked``: set in a child forked from it
        #: (``_lifecycle``), where librdkafka's threads are gone: the core is closed there.
        #: ``loop_lost``: the async publisher's event loop closed before the publisher did,
        #: so the reports of what is in flight can no longer be settled (``loop_closed``).
        #: ``orphaned``: the publisher was garbage-collected unclosed (``_orphan_step``).
        self.pid, self.forked, self.loop_lost, self.orphaned = os.getpid(), False, False, False
        self._closing_failures: list[str] | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        #: error_cb reports so far (connection failures, request timeouts...): a message
        #: produced before the latest of them may have been sent and put back in the queue.
        self.connection_errors = 0
        #: Whether the cluster ever answered this publisher (a probe or a delivery). Until it
        #: does, an open breaker also fails what is queued: see `_fail_queued_if_unreached`.
        self.reached = self._purged_unreached = False
        #: Set by the durable spool (``_spool.Spool``) when the publisher has one.
        self.spool_status_source: Callable[[], tuple[int, float | None]] | None = None
        self.max_message_bytes, self.max_queue_bytes = _size_limits(self._settings)
        if telemetry is not None:
            telemetry.bind(self)
        track(self)

    def _new_producer(self) -> Any:
        try:
            return Producer(self._settings)
        except KafkaException as exc:
            reason = self.config.scrub(exc.args[0].str())
            raise ConfigError(f"librdkafka refused the configuration: {reason}") from None

    # -- lifecycle -------------------------------------------------------------------------

    def start(
        self, handoff: Handoff | None = None, on_room: Callable[[], None] | None = None
    ) -> None:
        """Start the poll thread. ``handoff`` receives each batch of reports (default: settle
        them on the poll thread); ``on_room`` runs after each settled batch."""
        if self._thread is not None:
            return
        if handoff is not None:
            self._handoff = handoff
        if on_room is not None:
            self._on_room = on_room
        self._thread = threading.Thread(
            target=self._poll_loop, name=f"eventwire-poll-{self.config.client_id}", daemon=True
        )
        self._thread.start()
        _log.info(
            "eventwire.publisher_started",
            preset=self.config.preset,
            bootstrap_servers=self.config.bootstrap_servers,
            client_id=self.config.client_id,
            encoding=self.config.encoding,
            validate=self.config.validate,
        )

    @property
    def polling(self) -> bool:
        """Whether the poll thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def closed_message(self) -> str:
        """What ``PublisherClosedError`` says once this core is closed."""
        return forked_message(self.pid) if self.forked else CLOSED_MESSAGE

    def idle(self) -> bool:
        """Whether nothing accepted waits for its outcome (with the loop lost: nothing waits
        in librdkafka's queue)."""
        if self.loop_lost:
            return not len(self._producer)
        return self.outstanding <= 0

    def loop_closed(self, reports: int) -> None:
        """The async publisher's event loop closed while it was open: its futures can never be
        settled. librdkafka still delivers what it holds (flushed at exit by ``_lifecycle``);
        said once, not per batch."""
        if not self.loop_lost:
            self.loop_lost = True
            _log.warning(
                "eventwire.loop_closed",
                client_id=self.config.client_id,
                reports=reports,
                in_flight=len(self._producer),
                hint="await publisher.aclose() before the event loop ends",
            )

    def _poll_loop(self) -> None:
        # Each step is guarded on its own: whatever one of them raises, the thread goes on (a
        # dead poll thread would leave every later publish waiting forever), and the other
        # steps still run (a failing probe must not stop deliveries).
        steps = (
            self._poll_step,
            self._reports_step,
            self._recreate_step,
            self._internal_step,
            self._retired_step,
            self._probe_step,
            self._orphan_step,
        )
        errors = _LoopErrors()
        stop = self._stop
        while not stop.is_set():
            if not self._no_batch.is_set():
                self._no_batch.wait(_POLL_INTERVAL)
                continue
            for step in steps:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - logged; the thread must survive
                    errors.record(step.__name__, exc)
            delay = errors.end_iteration()
            if delay:
                stop.wait(delay)  # the same failure again: do not spin on it
        self._shut_down(errors)
        if self.orphaned and self.spool_stop is not None:
            try:
                self.spool_stop()
            except Exception as exc:  # noqa: BLE001 - logged like the loop's own failures
                errors.record("spool_stop", exc)

    def _poll_step(self) -> None:
        producer = self._producer
        try:
            if self.closed and len(producer):
                # While flush() runs librdkafka sends at once, ignoring linger.ms: a close
                # shorter than the linger time would otherwise purge events it could deliver.
                producer.flush(min(self._poll_timeout(), _CLOSE_FLUSH_SLICE))
            else:
                producer.poll(self._poll_timeout())
        except KafkaException as exc:  # fatal errors are raised from poll()
            self._on_error(exc.args[0])

    def _reports_step(self) -> None:
        if self._reports:
            self._hand_over()

    def _recreate_step(self) -> None:
        if self._recreate_reason is not None:
            self._recreate()

    def _internal_step(self) -> None:
        if (self._due or self._releases or self._dead_letters) and not self._gate_closed:
            self._produce_internal()

    def _retired_step(self) -> None:
        if self._retired:
            self._poll_retired()
        if self._gate_closed and self._gate_batch is None and not self._retired:
            # Every replaced producer reported all it held: settling one last batch
            # (maybe empty) opens the gate; batches are settled in hand-over order, so the
            # purge reports handed over before it are settled by then.
            self._hand_over(gate=True)

    def _probe_step(self) -> None:
        if self._abandoning:  # a close gave up: a probe would only hold up its last reports
            return
        breaker = self.breaker
        if breaker is not None and breaker.confirmation_due():
            # _ALL_BROKERS_DOWN is also what one connection reset looks like with a single
            # broker; only a failed metadata request right after it opens the breaker.
            breaker.confirm(self._probe(breaker.policy.probe_timeout))
            self._fail_queued_if_unreached(breaker)
        elif breaker is not None and breaker.state != "closed" and breaker.probe_due():
            breaker.probe_result(self._probe(breaker.policy.probe_timeout))
            self._fail_queued_if_unreached(breaker)
        health = self.health_probe
        if health.wanted and health.due():
            health.record(self._probe(health.timeout), self.delivered)

    def _orphan_step(self) -> None:
        # Nobody holds the publisher any more, so nobody can publish or close: once what it
        # accepted is settled, the thread stops and the producer's threads and sockets go.
        if self.orphaned and self.idle():
            self.closed = True
            self._stop.set()

    def _shut_down(self, errors: _LoopErrors) -> None:
        """Stopping: whatever is still queued is abandoned (close() drained or purged first);
        its reports are handed over, then the producers are destroyed (connections closed)."""
        for producer in [self._producer, *(old for old, _ in self._retired)]:
            try:
                producer.purge(True, True, True)
                with contextlib.suppress(KafkaException):
                    producer.poll(0)
                    producer.close()
            except Exception as exc:  # noqa: BLE001 - the purge reports must still go out
                errors.record("shut_down", exc)
        self._hand_over()

    def _poll_timeout(self) -> float:
        if self._due:
            return max(0.0, min(_POLL_INTERVAL, self._due[0][0] - time.time()))
        return _POLL_INTERVAL

    def _hand_over(self, *, gate: bool = False) -> None:
        reports = self._reports
        if reports or gate:
            batches = [reports[at : at + HANDOFF_MAX] for at in range(0, len(reports), HANDOFF_MAX)]
            reports.clear()
            if not batches:
                batches.append([])
            if gate:
                self._gate_batch = batches[-1]
            for batch in batches:
                try:
                    self._handoff(batch)
                except Exception:  # noqa: BLE001 - the poll thread must outlive a bad batch
                    _log.exception("eventwire.settle_failed", reports=len(batch))
        with self._room:
            self._room_generation += 1
            self._room.notify_all()

    def _on_error(self, err: Any) -> None:
        # error_cb runs on the poll thread; it only records, logs, and feeds the breaker (which
        # opens on _ALL_BROKERS_DOWN only once the poll loop's probe confirms it).
        self.last_error = f"{err.name()}: {err.str()}"
        self.last_error_at = time.time()
        if err.code() != KafkaError._ALL_BROKERS_DOWN:
            self._last_cause = self.last_error
        self.connection_errors += 1
        # An unreachable cluster reports every failed connect attempt (several a second): one
        # line per error code, then at most one per interval with how many were left out.
        repeated = 0 if err.fatal() else self._error_lines.admit(err.code())
        if repeated is not None:
            _log.warning(
                "eventwire.kafka_error",
                code=err.name(),
                reason=err.str(),
                fatal=bool(err.fatal()),
                repeated=repeated,
            )
        if err.fatal():
            self._recreate_reason = f"fatal error {err.name()}: {err.str()}"
        elif err.code() == KafkaError._ALL_BROKERS_DOWN and self.breaker is not None:
            self.breaker.record_unreachable(err.name())

    def _probe(self, timeout: float) -> bool:
        """Whether the cluster answers a metadata request within ``timeout``. Any failure
        counts as unreachable (a closed handle raises ``RuntimeError``, not KafkaException)."""
        try:
            self.metadata(timeout)
        except Exception:  # noqa: BLE001 - a probe answers a question, it never fails
            return False
        self.reached = True
        return True

    def _fail_queued_if_unreached(self, breaker: CircuitBreaker) -> None:
        """The breaker opened (or stayed open) and the cluster never answered: a mistyped
        address, or a cluster down since start. Fail what waits in librdkafka's queue now,
        as the breaker fails new events, instead of after ``delivery_timeout`` (minutes).

        Only then: nothing was ever sent, so no producer id or sequence is at stake and every
        purged event is certainly not delivered. Once the cluster answered, queued events may
        sit behind sent ones of their partition and keep waiting for their delivery report.
        A spool keeps its events in any case (they are replayed, not failed).
        """
        if breaker.state != "open" or self.reached or self.config.spool_path is not None:
            return
        self._purged_unreached = True
        self._producer.purge(True, False, True)  # queued only; reports arrive on the next poll

    # -- producing -------------------------------------------------------------------------

    def produce(self, pending: Pending) -> None:
        """Hand one event to librdkafka (or hold it behind a retry of the same key).

        Raises:
            BufferError: the local queue is full; the caller waits for room and calls again.
            PublishError: librdkafka refused the event (e.g. too large); it was not accepted.
            PublisherClosedError: the publisher closed meanwhile; it was not accepted.
        """
        # Read before the gate: if a replacement swaps producers in between, the gate is seen
        # closed; an event that still reaches the old one is purged by _poll_retired.
        producer = self._producer
        if self.telemetry is not None:
            self.telemetry.start(pending)
        pending._append = self._append
        pending.failures = 0
        pending.unsent = True
        pending.order = next(self._orders)
        self._hand_to(producer, pending)

    def _hand_to(self, producer: Any, pending: Pending) -> None:
        enc = pending.encoded
        if self._gate_closed and self._hold_at_gate(pending):
            return
        if self._holds and enc.key is not None and self._hold_if_retrying(pending):
            return
        pending.generation = self._generation
        pending.connection_errors = self.connection_errors
        try:
            producer.produce(
                enc.topic, enc.value, enc.key, on_delivery=pending, headers=enc.headers
            )
        except KafkaException as exc:
            raise self._refused(exc.args[0], enc) from None
        except BufferError:
            # librdkafka counts the value against queue.buffering.max.kbytes: one larger than
            # the whole queue never fits, and waiting for room would wait for ever.
            if len(enc.value) > self.max_queue_bytes:
                raise too_large_for_queue_error(enc, self.max_queue_bytes) from None
            raise
        except RuntimeError:  # "Producer has been closed"
            if producer is self._producer:
                raise PublisherClosedError(CLOSED_MESSAGE) from None
            # A replacement retired the producer read before the gate, and closed it: go
            # through the gate again (it holds the event until the old reports are settled).
            self._hand_to(self._producer, pending)

    def _hold_at_gate(self, pending: Pending) -> bool:
        with self._lock:
            if not self._gate_closed:
                return False
            self._gated.append(pending)
            return True

    def _open_gate(self) -> None:
        """The replaced producers' reports are settled (their keys on hold where retried):
        the events accepted meanwhile join their key's hold, or a new one, in order, and are
        released by the poll thread like any hold."""
        with self._lock:
            self._gate_closed = False
            self._gate_batch = None
            gated, self._gated = self._gated, deque()
            for pending in gated:
                key = pending.encoded.key if pending.encoded.key is not None else pending
                hold = self._holds.get(key)
                if hold is None:
                    hold = self._holds[key] = _KeyHold()
                    self._releases.append(key)
                hold.held.append(pending)

    def _hold_if_retrying(self, pending: Pending) -> bool:
        with self._lock:
            hold = self._holds.get(pending.encoded.key)
            if hold is None:
                return False
            hold.held.append(pending)
            return True

    def _refused(self, err: KafkaError, enc: EncodedEvent) -> PublishError:
        if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return too_large_error(enc, self.max_message_bytes, err)
        return to_publish_error(
            err, topic=enc.topic, event_id=enc.event_id, attempts=0, context="produce refused"
        )

    def refuse(self, pending: Pending, error: PublishError) -> PublishError | None:
        """An event librdkafka refused in ``produce()``: dead-letter it if the policy says so
        (then ``None`` is returned and its outcome arrives later), else return the error."""
        if self.dead_letter is not None and error.category == "permanent":
            pending._append = self._append
            pending.failures = 0
            pending.first_failure = time.time()
            self._dead_letters.append((pending, error, 0))
            return None
        _log_failed(error, pending.encoded.event_type)
        if self.telemetry is not None:
            self.telemetry.finish(pending, error)
        return error

    def batch_started(self) -> None:
        """A caller starts producing a batch: the poll thread waits until it ends."""
        with self._lock:
            self._batches += 1
            self._no_batch.clear()

    def batch_ended(self) -> None:
        """Undo ``batch_started`` (also while the caller waits for room the thread frees)."""
        with self._lock:
            self._batches -= 1
            if self._batches == 0:
                self._no_batch.set()

    def batches_ended(self, timeout: float) -> bool:
        """Block until no caller is inside ``batch_started``/``batch_ended`` (a sync close:
        a batch producing in another thread sees the close and stops first)."""
        return self._no_batch.wait(timeout)

    def track(self, count: int) -> None:
        """Count ``count`` events as outstanding (call before producing them)."""
        with self._lock:
            self.outstanding += count

    def untrack(self, count: int) -> None:
        """Undo ``track`` for events that were not accepted."""
        with self._lock:
            self.outstanding -= count

    @property
    def room_generation(self) -> int:
        return self._room_generation

    def wait_for_room(self, generation: int, timeout: float) -> bool:
        """Block until a batch of reports was handled after ``generation`` (sync callers)."""
        with self._room:
            return self._room.wait_for(lambda: self._room_generation != generation, timeout)

    # -- outcomes --------------------------------------------------------------------------

    def settle(self, batch: list[Pending]) -> None:
        """Turn delivery reports into outcomes (on the loop thread for the async publisher)."""
        ok = 0
        bad = 0
        dead = 0
        kept = 0
        failing = self._closing_failures
        given_up: list[str] = []
        holds = self._holds
        telemetry = self.telemetry
        last_ok: Pending | None = None
        for pending in batch:
            err = pending.err
            if err is None:
                if holds and pending.failures:
                    self._retry_succeeded(pending)
                last_ok = pending
                receipt = pending.receipt
                if type(pending) is _DeadLetterDelivery:
                    dead += 1
                    bad += 1
                else:
                    ok += 1
                if telemetry is not None:
                    telemetry.finish(pending, receipt)
                pending.settle(receipt)
                continue
            if type(pending) is _DeadLetterDelivery:
                bad += self._dead_letter_failed(pending, err)
                continue
            if last_ok is not None:
                self._acknowledged(last_ok)
            error = self._on_failure(pending, err)
            if error is None:  # taken over: retried, parked or dead-lettered, settled later
                continue
            if pending.durable and self._abandoning:
                kept += 1  # left in the spool at close: not a failure, replayed next start
            else:
                bad += 1
            if failing is not None:
                given_up.append(error.event_id)
            if telemetry is not None:
                telemetry.finish(pending, error)
            pending.settle(error)
        self._count(ok, bad, kept, dead, given_up)
        if last_ok is not None:
            self._acknowledged(last_ok)
            self._record_success()
        if batch is self._gate_batch:
            self._open_gate()
        self._on_room()

    def _count(self, ok: int, bad: int, kept: int, dead: int, given_up: list[str]) -> None:
        with self._lock:
            # The ids given up at close go with the counters, under the lock: a close report
            # read meanwhile (the poll thread may still settle when a sync close stops waiting)
            # counted a batch twice (undelivered 53,960 of a 50,000 backlog).
            if given_up and self._closing_failures is not None:
                self._closing_failures.extend(given_up)
            self.outstanding -= ok + bad + kept
            self.delivered += ok
            self.failed += bad
            self.dead_lettered += dead

    def _dead_letter_failed(self, pending: _DeadLetterDelivery, err: Any) -> int:
        """A dead-letter write failed: tried again (0), or its original is settled (1)."""
        if self._retry_dead_letter(pending, err):
            return 0
        if self._missing_topic(pending, err):
            pending.settle(self._delivery_error(pending, err, current=True))
        else:
            pending.settle(_as_error(err, pending))
        return 1

    def _acknowledged(self, pending: Pending) -> None:
        self._acknowledged_order = max(self._acknowledged_order, pending.order)

    def _record_success(self) -> None:
        self.reached = True
        if self.breaker is not None:
            self.breaker.record_success()

    def _on_failure(self, pending: Pending, err: Any) -> PublishError | None:
        """Decide what a failed delivery becomes (see the module docstring for the order).

        Returns the error to settle the event with now, or ``None`` when the event was taken
        over by a retry or by the dead-letter topic.
        """
        enc = pending.encoded
        now = time.time()
        pending.failures += 1
        if pending.failures == 1:
            pending.first_failure = now
        error, failure = self._classified(pending, err)
        if (
            failure in ("retriable", "ambiguous")
            and self.breaker is not None
            and not self._abandoning
            # once the cluster has answered, a message that never had a partition says its
            # topic is missing: the cluster is up, and other topics must not fail fast
            and not (self.reached and getattr(pending, "unsent", False))
            # a fatal error is the producer's state (e.g. a deleted, re-created topic put its
            # idempotence sequence out of sync): the cluster answered, and the producer is
            # recreated; one per message of a batch opened the breaker for every topic
            and error.category != "fatal"
            # the cluster took a write handed over after this event (see _acknowledged_order)
            and pending.order > self._acknowledged_order
            # a replaced producer's reports are purges of our own doing; what led to the
            # replacement (a timeout) counted already
            and pending.generation == self._generation
        ):
            # A purge at close is the publisher's own doing, not a sign of the cluster.
            self.breaker.record_failure()
        key: object = enc.key if enc.key is not None else pending  # no key: a lane of its own
        delay, parked = self._resend_delay(pending, failure, now)
        with self._lock:
            hold = self._holds.get(key)
            is_head = hold is not None and bool(hold.failed) and hold.failed[0] is pending
            if delay is not None:
                if hold is None:
                    hold = self._holds[key] = _KeyHold()
                    hold.failed.append(pending)
                    heapq.heappush(self._due, (now + delay, next(self._sequence), key))
                elif is_head:
                    hold.head_in_flight = False
                    heapq.heappush(self._due, (now + delay, next(self._sequence), key))
                else:
                    _insert_failed(hold, pending)
                self.retries += 1
            elif is_head and hold is not None:
                hold.failed.popleft()
                hold.head_in_flight = False
                self._advance(key, hold)
        if delay is not None:
            self._announce_resend(pending, error, delay, parked=parked)
            return None
        if (
            self.dead_letter is not None
            and not self._abandoning
            and failure not in ("fatal", "circuit_open")
        ):
            # Its one log line comes with the dead-letter outcome (dead_lettered, or
            # dead_letter_failed when the caller gets this error after all).
            self._dead_letters.append((pending, error, 0))
            return None
        if not self._abandoning:
            # Given up at close: the close's one summary line counts them (a line each would
            # slow a shutdown by tens of us per event once rendered), and its
            # CloseReport names them all.
            _log_failed(error, enc.event_type)
        return error

    def _classified(self, pending: Pending, err: Any) -> tuple[PublishError, str]:
        """The error a failed attempt settles with, and the class that decides what follows
        (a fatal error counts as ambiguous; a class once ambiguous stays so)."""
        if isinstance(err, PublishError):  # refused by an internal produce()
            error, failure = err, err.category
            error.attempts = pending.failures
        elif (
            self._purged_unreached
            and err.code() == KafkaError._PURGE_QUEUE
            and not self._abandoning
            and not self.reached
        ):
            error = self._unreached_error(pending, err)
            failure = error.category  # before retry and dead letter, like any breaker refusal
        else:
            current = pending.generation == self._generation
            error = self._delivery_error(pending, err, current=current)
            failure = error.category
            if failure == "fatal":
                if current and self._recreate_reason is None:
                    self._recreate_reason = f"{err.name()} on a delivery report"
                failure = "ambiguous"
            elif (
                err.code() == KafkaError._MSG_TIMED_OUT
                and failure == "ambiguous"  # else never sent: the sequence state is sound
                and current
                and self._recreate_reason is None
            ):
                # After a timeout the idempotent producer's sequence state is in doubt: Kafka
                # bumps the epoch, Tansu fences it, a broker that lost its state no longer
                # knows the producer id (it stalls). A fresh producer starts clean; the price
                # is re-sending what it had in flight (ambiguous: same ce_id, consumers
                # de-duplicate).
                self._recreate_reason = "a message timed out (idempotence state in doubt)"
        if failure == "ambiguous":
            pending.maybe_written = True
        elif failure == "retriable" and getattr(pending, "maybe_written", False):
            # This attempt was not written, but an earlier one may have been: what the caller
            # learns is what can be true of the event, not of its last attempt.
            error, failure = still_ambiguous(error), "ambiguous"
        return error, failure

    def _delivery_error(self, pending: Pending, err: Any, *, current: bool) -> PublishError:
        enc = pending.encoded
        if err.code() == KafkaError._MSG_TIMED_OUT and getattr(pending, "unsent", False):
            # Timed out before it had a partition, so never sent: no metadata for its topic.
            # While the cluster does not answer, that says nothing about the topic; else it
            # does not exist (and the cluster does not create it), or it has no leader.
            breaker = self.breaker
            unreachable = (
                not self.reached
                or pending.connection_errors != self.connection_errors
                or (breaker is not None and breaker.state != "closed")
            )
            if not unreachable:
                context = f"topic {enc.topic!r} has no known partition (does it exist?)"
            else:
                since = (
                    "did not answer while the event waited (unreachable)"
                    if self.reached
                    else "has not answered since the publisher started"
                )
                context = (
                    f"no partition of topic {enc.topic!r} is known: the cluster at"
                    f" {self.config.bootstrap_servers} {since}{self._client_error_hint()}"
                )
            return to_publish_error(
                err,
                topic=enc.topic,
                event_id=enc.event_id,
                attempts=pending.failures,
                context=context,
                failure="retriable",
            )
        return to_publish_error(
            err,
            topic=enc.topic,
            event_id=enc.event_id,
            attempts=pending.failures,
            failure=_known_ambiguous(
                err,
                current_producer=current,
                maybe_sent=self._abandoning and pending.connection_errors != self.connection_errors,
            ),
        )

    def _unreached_error(self, pending: Pending, err: Any) -> CircuitOpenError:
        enc = pending.encoded
        breaker = self.breaker
        error = CircuitOpenError(
            f"event {enc.event_id} ({enc.event_type}) was not sent: the cluster at"
            f" {self.config.bootstrap_servers} has not answered since the publisher started"
            f" (circuit breaker open: {breaker.last_reason if breaker else 'unreachable'}"
            f"{self._client_error_hint()})",
            topic=enc.topic,
            event_id=enc.event_id,
            attempts=0,
            code=err.name(),
        )
        error.__cause__ = KafkaException(err)
        return error

    def _client_error_hint(self) -> str:
        """The client error that may explain why the cluster never answered, for messages."""
        cause = self._last_cause or self.last_error
        return "" if cause is None else f"; last client error: {self.config.scrub(cause)}"

    def _resend_delay(
        self, pending: Pending, failure: str, now: float
    ) -> tuple[float | None, bool]:
        """``(delay before the re-send or None, whether the event is parked)``."""
        if self._abandoning:
            return None, False
        if self.retry.should_retry(failure):
            delay = self.retry.next_delay(
                failures=pending.failures, first_failure=pending.first_failure, now=now
            )
            if delay is not None:
                return delay, False
        if pending.durable and failure != "permanent":
            # Like a retry: the event stays the head of its key's hold, so nothing later of
            # that key overtakes it while it waits in the spool.
            return PARK_DELAY, True
        return None, False

    def _announce_resend(
        self, pending: Pending, error: PublishError, delay: float, *, parked: bool
    ) -> None:
        """The one log line (and span event) of a scheduled re-send."""
        enc = pending.encoded
        telemetry = self.telemetry
        if parked:
            _log.warning(
                "eventwire.spooled_for_retry",
                topic=enc.topic,
                event_id=enc.event_id,
                error_class=error.category,
                code=error.code,
                attempts=pending.failures,
                delay_s=delay,
            )
            if telemetry is not None:
                telemetry.parked(pending, error, delay)
            return
        _log.info(
            "eventwire.retry_scheduled",
            topic=enc.topic,
            event_id=enc.event_id,
            error_class=error.category,
            code=error.code,
            attempt=pending.failures + 1,
            delay_s=round(delay, 3),
        )
        if telemetry is not None:
            telemetry.retry_scheduled(pending, error, delay)

    def _retry_dead_letter(self, letter: _DeadLetterDelivery, err: Any) -> bool:
        """Queue a failed dead-letter write again unless it is hopeless; True if queued."""
        letter.failures += 1
        if self._abandoning or letter.failures >= letter.ATTEMPTS:
            return False
        failure = err.category if isinstance(err, PublishError) else classify(err)
        if failure == "permanent" or self._missing_topic(letter, err):
            return False
        if failure == "fatal" and letter.generation == self._generation:
            self._recreate_reason = f"{_code(err)} on a dead-letter write"
        self._dead_letters.append((letter.original, letter.error, letter.failures))
        return True

    def _missing_topic(self, pending: Pending, err: Any) -> bool:
        """Whether a failed write timed out without a partition once the cluster had answered:
        its topic does not exist (and is not created), so sending it again only waits another
        ``delivery_timeout``."""
        return (
            self.reached
            and pending.unsent
            and not isinstance(err, PublishError)
            and err.code() == KafkaError._MSG_TIMED_OUT
        )

    def _retry_succeeded(self, pending: Pending) -> None:
        key = pending.encoded.key if pending.encoded.key is not None else pending
        with self._lock:
            hold = self._holds.get(key)
            if hold is not None and hold.failed and hold.failed[0] is pending:
                hold.failed.popleft()
                hold.head_in_flight = False
                self._advance(key, hold)

    def _advance(self, key: object, hold: _KeyHold) -> None:
        """After the head of a hold is settled: release the rest, or end the hold.
        Called with the lock held."""
        if hold.failed or hold.held:
            self._releases.append(key)
        else:
            del self._holds[key]

    # -- the poll thread's own producing ---------------------------------------------------

    def _produce_internal(self) -> None:
        now = time.time()
        with self._lock:
            while self._due and self._due[0][0] <= now:
                key = heapq.heappop(self._due)[2]
                hold = self._holds.get(key)
                if hold is None or not hold.failed or hold.head_in_flight:
                    continue
                try:
                    sent = self._send(hold.failed[0], key)
                except BaseException:
                    # Unexpected (the poll loop logs it): the key must stay due, or its
                    # events would wait for ever.
                    heapq.heappush(self._due, (now + 0.01, next(self._sequence), key))
                    raise
                if sent:
                    hold.head_in_flight = True
            releases = len(self._releases)
            for _ in range(releases):
                key = self._releases.popleft()
                hold = self._holds.get(key)
                try:
                    released = hold is None or self._release(key, hold)
                except BaseException:
                    self._releases.append(key)  # as above: released on a later step
                    raise
                if not released:
                    self._releases.append(key)  # queue full: go on next time
        while self._dead_letters:
            pending, error, tries = self._dead_letters.popleft()
            assert self.dead_letter is not None  # noqa: S101 - only queued when set
            try:
                record = dead_letter_record(
                    self.dead_letter,
                    pending.encoded,
                    error,
                    first_failure=pending.first_failure,
                    last_failure=time.time(),
                )
            except Exception as exc:  # noqa: BLE001 - a user's topic callable may raise anything
                # The event is out of every queue: it must settle (with its original error,
                # like a failed write) or its caller would wait for ever.
                letter = self._dead_letter_of(pending, error, tries, pending.encoded)
                letter.refused(_no_dead_letter_topic(pending.encoded, error, exc))
                continue
            letter = self._dead_letter_of(pending, error, tries, record)
            try:
                self._producer.produce(
                    record.topic,
                    record.value,
                    record.key,
                    on_delivery=letter,
                    headers=record.headers,
                )
            except BufferError:
                self._dead_letters.appendleft((pending, error, tries))
                break
            except KafkaException as exc:
                letter.refused(self._refused(exc.args[0], record))

    def _dead_letter_of(
        self, pending: Pending, error: PublishError, tries: int, record: EncodedEvent
    ) -> _DeadLetterDelivery:
        letter = _DeadLetterDelivery(record, pending, error)
        letter.telemetry = self.telemetry
        letter._append = self._append
        letter.generation = self._generation
        letter.failures = tries
        return letter

    def _send(self, pending: Pending, key: object) -> bool:
        """Re-produce one failed event (lock held). False when the queue is full (retried
        shortly); a refusal becomes a synthetic failure report."""
        enc = pending.encoded
        pending.generation = self._generation
        pending.connection_errors = self.connection_errors
        try:
            self._producer.produce(
                enc.topic, enc.value, enc.key, on_delivery=pending, headers=enc.headers
            )
        except BufferError:
            heapq.heappush(self._due, (time.time() + 0.01, next(self._sequence), key))
            return False
        except KafkaException as exc:
            pending.refused(self._refused(exc.args[0], enc))
        return True

    def _release(self, key: object, hold: _KeyHold) -> bool:
        """Produce every failed then held event of ``key`` in order and end the hold (lock
        held). False if the queue filled up first (the rest stays held)."""
        for queue in (hold.failed, hold.held):
            while queue:
                pending = queue[0]
                enc = pending.encoded
                pending.generation = self._generation
                pending.connection_errors = self.connection_errors
                try:
                    self._producer.produce(
                        enc.topic, enc.value, enc.key, on_delivery=pending, headers=enc.headers
                    )
                except BufferError:
                    return False
                except KafkaException as exc:
                    pending.refused(self._refused(exc.args[0], enc))
                queue.popleft()
        del self._holds[key]
        return True

    def _recreate(self) -> None:
        """Replace a producer that hit a fatal error; what it still held comes back as failed
        reports (purged) and is re-sent by the retry policy, in order per key.

        Those reports reach ``settle`` (which puts their keys on hold) only after the new
        producer is in place: an event accepted meanwhile would go straight to the new producer
        and overtake the purged older events of its key. So the gate closes first, and stays
        closed until the old producer reported everything and that last batch was settled
        (see ``_poll_loop``). Meanwhile ``produce()`` accepts events into one queue, in order
        (not ``BufferError``: waiting callers woken later could be overtaken by new ones), and
        the core's own re-sends and releases wait; ``_open_gate`` then puts them on hold.
        """
        reason, self._recreate_reason = self._recreate_reason, None
        self._gate_closed = True
        self._gate_batch = None
        old = self._producer
        with contextlib.suppress(KafkaException):
            old.purge(True, True, True)
        self._producer = self._new_producer()
        self._generation += 1
        self.recreations += 1
        self._retired.append((old, time.monotonic() + _RETIRE_GRACE))
        _log.error("eventwire.producer_recreated", reason=reason, generation=self._generation)

    def _poll_retired(self) -> None:
        now = time.monotonic()
        keep = []
        for old, until in self._retired:
            with contextlib.suppress(KafkaException):
                if self._gate_closed:
                    # A caller that passed the gate just before it closed may have produced
                    # into the old producer after its purge.
                    old.purge(True, True, True)
                old.poll(0)
            if len(old) and now < until:
                keep.append((old, until))
                continue
            with contextlib.suppress(KafkaException):
                old.purge(True, True, True)
                old.poll(0)
                old.close()
        self._retired = keep
        if self._reports:
            self._hand_over()

    # -- closing ---------------------------------------------------------------------------

    def begin_close(self) -> int:
        """Stop intake; returns how many events are still outstanding."""
        self.closed = True
        self._closing_failures = []
        return self.outstanding

    def abandon(self) -> None:
        """Give up on everything not yet acknowledged: purge librdkafka's queues (each purged
        event gets a failed report) and fail the events waiting in retry holds. Must run where
        outcomes may be settled (the loop thread for the async publisher)."""
        self._abandoning = True
        with contextlib.suppress(KafkaException):
            self._producer.purge(True, True, True)
        with self._lock:
            waiting: list[Pending] = []
            for hold in self._holds.values():
                # A head being re-sent is in librdkafka: its purge report settles it.
                failed = list(hold.failed)[1:] if hold.head_in_flight else hold.failed
                waiting.extend((*failed, *hold.held))
            waiting.extend(self._gated)
            self._gated.clear()
            self._holds.clear()
            self._due.clear()
            self._releases.clear()
        for pending in waiting:
            enc = pending.encoded
            pending.err = PermanentPublishError(
                f"event {enc.event_id} to topic {enc.topic!r} was not delivered: the "
                "publisher closed before its retry succeeded",
                topic=enc.topic,
                event_id=enc.event_id,
                attempts=getattr(pending, "failures", 0),
                code="CLOSED",
            )
        if waiting:
            self.settle(waiting)

    def stop_polling(self, timeout: float) -> None:
        """Stop the poll thread (after its last batch) and release the producer's threads."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:  # never started: nothing was produced
            self._producer.close()

    def closing_state(self) -> tuple[tuple[str, ...], int, int]:
        """``(ids given up since the close began, outstanding, failed)``, read together."""
        with self._lock:
            return tuple(self._closing_failures or ()), self.outstanding, self.failed

    def queue_depth(self) -> int:
        """Messages in librdkafka's queue (waiting, or in flight to a broker)."""
        return len(self._producer)

    def spool_status(self) -> tuple[int, float | None] | None:
        """``(backlog, age in seconds of the oldest entry)`` of the durable spool; ``None``
        while the publisher has no spool."""
        source = self.spool_status_source
        return None if source is None else source()

    def metadata(self, timeout: float) -> Any:
        """Fetch cluster metadata (used by health and breaker probes)."""
        return self._producer.list_topics(timeout=timeout)


class RepeatLimit:
    """Lets the first line of each kind through, then at most one per ``interval`` seconds."""

    __slots__ = ("_clock", "_interval", "_seen")

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._seen: dict[object, tuple[float, int]] = {}  # kind -> (logged at, left out since)

    def admit(self, kind: object) -> int | None:
        """``None``: leave this line out; else log it, with how many were left out before."""
        now = self._clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self._interval:
            self._seen[kind] = (seen[0], seen[1] + 1)
            return None
        self._seen[kind] = (now, 0)
        return 0 if seen is None else seen[1]


class _LoopErrors:
    """Failures of the poll loop's steps: each distinct one is logged once
    (``eventwire.poll_loop_error``, with the traceback); a failure that repeats in the next
    iteration makes the loop back off, doubling up to ``_BACKOFF_MAX``."""

    __slots__ = ("_current", "_previous", "_seen", "_streak")

    #: Distinct failures remembered (the oldest is forgotten first, then logged again).
    _REMEMBERED: Final = 64

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], None] = {}
        self._current: set[tuple[str, str, str]] = set()
        self._previous: set[tuple[str, str, str]] = set()
        self._streak = 0

    def record(self, step: str, exc: BaseException) -> None:
        signature = (step.lstrip("_"), type(exc).__qualname__, str(exc))
        self._current.add(signature)
        if signature in self._seen:
            return
        self._seen[signature] = None
        if len(self._seen) > self._REMEMBERED:
            del self._seen[next(iter(self._seen))]
        _log.error(
            "eventwire.poll_loop_error",
            step=signature[0],
            error_type=signature[1],
            exc_info=exc,
        )

    def end_iteration(self) -> float:
        """Seconds to wait before the next iteration (0 unless a failure repeats)."""
        current = self._current
        if not current and not self._streak:
            return 0.0
        if current & self._previous:
            self._streak += 1
        else:
            self._streak = 0
        self._previous, self._current = current, set()
        return min(_BACKOFF_BASE * 2 ** (self._streak - 1), _BACKOFF_MAX) if self._streak else 0.0


class _LibrdkafkaLog:
    """librdkafka's own log lines as ``eventwire.librdkafka`` events (logger
    ``eventwire.librdkafka``), so they reach the application's log pipeline instead of raw
    stderr (served by ``poll()``); a line of the same level and facility repeats at most once
    per ``RepeatLimit`` interval."""

    __slots__ = ("_lines", "_scrub")

    def __init__(self, scrub: Callable[[str], str]) -> None:
        self._scrub = scrub
        self._lines = RepeatLimit()

    def log(self, level: int, fmt: str, *args: object) -> None:
        # confluent-kafka calls log(level, "%s [%s] %s", facility, client name, message).
        facility, client, message = (*args, "", "", "")[:3]
        repeated = self._lines.admit((level, facility))
        if repeated is None:
            return
        librdkafka_log.log(
            level,
            "eventwire.librdkafka",
            facility=str(facility),
            client=str(client),
            text=self._scrub(str(message)),
            repeated=repeated,
        )


def _log_failed(error: PublishError, event_type: str) -> None:
    _log.warning(
        "eventwire.publish_failed",
        topic=error.topic,
        event_id=error.event_id,
        event_type=event_type,
        error_class=error.category,
        code=error.code,
        attempts=error.attempts,
    )


def _no_dead_letter_topic(
    enc: EncodedEvent, error: PublishError, exc: Exception
) -> PermanentPublishError:
    """The failure of a dead-letter write that never started: the policy gave no valid
    topic (its callable raised, or returned a bad name)."""
    detail = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
    return PermanentPublishError(
        f"no dead-letter topic for event {enc.event_id} of topic {enc.topic!r}: {detail}",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=error.attempts,
        code="_INVALID_DEAD_LETTER_TOPIC",
    )


def _as_error(err: Any, pending: Pending) -> PublishError:
    if isinstance(err, PublishError):
        return err
    enc = pending.encoded
    return to_publish_error(err, topic=enc.topic, event_id=enc.event_id)


def _known_ambiguous(
    err: Any, *, current_producer: bool, maybe_sent: bool = False
) -> FailureClass | None:
    """``"ambiguous"`` where the code alone says less than what happened, else ``None``.

    A ``_PURGE_QUEUE`` report: librdkafka puts a message whose request failed (connection
    reset, request timed out) back in its queue, so a purged message may have been written
    (seen in tests/faults: such events were read back). That is assumed for every purge of a
    replaced producer, and for a purge at close (``maybe_sent``) of a message produced before
    the producer's latest connection error; librdkafka does not tell whether it was sent.
    """
    if err.code() == KafkaError._PURGE_QUEUE and (not current_producer or maybe_sent):
        return "ambiguous"
    return None


def _code(err: Any) -> str:
    if isinstance(err, PublishError):
        return err.code or err.category
    return str(err.name())


def _log_breaker_change(old: str, new: str, reason: str) -> None:
    event = {
        "open": "eventwire.circuit_opened",
        "half_open": "eventwire.circuit_half_open",
        "closed": "eventwire.circuit_closed",
    }.get(new, "eventwire.circuit_changed")
    _log.warning(event, previous=old, reason=reason)


def _noop() -> None:
    return None
