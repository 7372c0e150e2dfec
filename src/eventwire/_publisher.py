"""What both publishers share: state, checks, health and reports; no waiting lives here.

``AsyncPublisher`` (``_async_publisher``) and ``Publisher`` (``_sync_publisher``) run the
flows of ``_flows`` over this base; they differ only in how they wait and in the sinks their
callers wait on.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, Protocol

from eventwire._backpressure import AsyncRoomLine, RoomLine
from eventwire._codec import EncodedEvent, EventCodec, UserHeaders
from eventwire._config import PublisherConfig
from eventwire._core.coordinator import ProducerCore
from eventwire._core.record import InFlight
from eventwire._core.state import State
from eventwire._core.transport import TransportFactory, librdkafka_transport
from eventwire._durable.relay import Callback, Relay
from eventwire._durable.sqlite import SqliteStore
from eventwire._durable.store import Store
from eventwire._errors import ConfigError, PublisherClosedError, TransactionStateError
from eventwire._health import HealthStatus, Stats
from eventwire._logs import log as _log
from eventwire._messages import (
    SPOOL_NEEDED_MESSAGE,
    TRANSACTIONS_NEED_ID_MESSAGE,
    outside_transaction_message,
)
from eventwire._outcome import CloseReport, PublishOutcome
from eventwire._telemetry import instrumentation_for
from eventwire._transactions import TransactionalProducer

# Events given up at close get no line each: the close's line names this many of them.
_LOGGED_IDS = 5


class Batch(Protocol):
    """The sink of one ``publish_many`` call: one outcome per event, done once every hold is
    released (the producing caller holds it too, until it produced the last event)."""

    outcomes: list[PublishOutcome | None]

    @property
    def waitable(self) -> Any:
        """What the driver waits on until the batch is done."""

    def hold(self, count: int) -> None: ...

    def release(self, count: int = 1) -> None: ...

    def settle(self, record: InFlight, outcome: Any) -> None: ...


class PublisherBase:
    """State and logic shared by both twins."""

    _line: AsyncRoomLine | RoomLine
    #: Whether dropping the publisher unclosed warns (the test kit's fakes need no close).
    _warn_unclosed = True

    def __init__(self, config: PublisherConfig, *, transport: TransportFactory | None) -> None:
        self._config = config
        # The spool file first: a file that is not a spool (or is in use) is refused before
        # librdkafka starts, connects and logs.
        store = self._open_store(config)
        telemetry = instrumentation_for(config)
        try:
            self._core = ProducerCore(
                config,
                telemetry=telemetry,
                transport=transport or librdkafka_transport,
                warn_at_exit=self._warn_unclosed,
            )
        except BaseException:
            if store is not None:
                store.close()
            raise
        try:
            self._relay: Relay | None = (
                Relay(store, self._core, config.spool_max_events) if store is not None else None
            )
        except BaseException:
            if store is not None:
                store.close()
            self._core.stop_polling(1.0)
            raise
        #: The transactional producer's state (``None`` without a ``transactional_id``).
        self._transactions = (
            TransactionalProducer(self._core) if config.transactional_id is not None else None
        )
        if telemetry is not None:
            # A function of the core and the spool, not a method: the telemetry lives as long
            # as the core, and must not keep the publisher alive (an orphan is never dropped).
            telemetry.observe(functools.partial(stats_of, self._core, self._relay))
        #: Set when the first close has finished; a second close waits for it.
        self._close_done = threading.Event()
        self._codec = EventCodec(
            encoding=config.encoding,
            validate=config.validate,
            source=config.ce_source,
            resolve_topic=config._resolve_topic,
        )

    def _open_store(self, config: PublisherConfig) -> Store | None:
        """The durable store of the relay: the spool file if configured (the outbox relay's
        publisher gives its table)."""
        return SqliteStore(config.spool_path) if config.spool_path is not None else None

    def __del__(self) -> None:
        # Dropped unclosed: what it holds is still delivered (the poll thread keeps the core
        # alive), then its threads stop; the warning points at the missing close().
        core: ProducerCore | None = getattr(self, "_core", None)
        if core is None or core.lifecycle.closed or not core.poll.running:
            return
        if not core.lifecycle.move(State.ORPHANED, only_from=_ORPHANABLE):
            return
        if not self._warn_unclosed:
            return
        warnings.warn(
            f"unclosed {type(self).__name__} ({core.counters.outstanding} events outstanding):"
            " call close()/aclose() or use it as a context manager",
            ResourceWarning,
            source=self,
            stacklevel=2,
        )

    def _orphan_stopped(self) -> Callable[[], object] | None:
        """What stops the spool's writer and closes its file when the poll thread stops after
        the publisher was dropped unclosed, as a close would (it holds no publisher)."""
        relay = self._relay
        return None if relay is None else functools.partial(relay.stop, _ORPHAN_STOP_TIMEOUT)

    @property
    def config(self) -> PublisherConfig:
        """The configuration this publisher was built with."""
        return self._config

    @property
    def closed(self) -> bool:
        """Whether ``close``/``aclose`` was called."""
        return self._core.lifecycle.closed

    @property
    def breaker_state(self) -> str:
        """``"closed"`` (sending), ``"open"`` (failing fast) or ``"half_open"`` (probing);
        ``"disabled"`` without a breaker."""
        breaker = self._core.breaker
        return "disabled" if breaker is None else breaker.state

    @property
    def outstanding(self) -> int:
        """Events accepted whose outcome is not settled yet (with a spool: the spool's
        backlog, replayed events included)."""
        relay = self._relay
        return self._core.counters.outstanding if relay is None else relay.backlog

    def _stop_intake(self) -> None:
        """Refuse new events from now on (``PublisherClosedError``); what was accepted goes
        on. Non-blocking: the shutdown helper calls it from a signal callback."""
        self._core.lifecycle.move(State.INTAKE_STOPPED, only_from=_OPEN)

    def _check_open(self) -> None:
        if self._core.lifecycle.state is not State.OPEN:
            raise PublisherClosedError(self._core.closed_message)

    def _produce_unless_closing(self, record: InFlight) -> None:
        """``core.produce`` for a caller that waited for room: a close may have begun since
        (the event is then not accepted: ``PublisherClosedError``)."""
        self._check_open()
        self._core.produce(record)

    def _need_transactions(self) -> None:
        if self._transactions is None:
            raise ConfigError(TRANSACTIONS_NEED_ID_MESSAGE)

    def _refuse_outside_transaction(self) -> None:
        transactions = self._transactions
        if transactions is not None:
            raise TransactionStateError(outside_transaction_message(transactions.transactional_id))

    def _need_spool(self) -> Relay:
        if self._relay is None:
            raise ConfigError(SPOOL_NEEDED_MESSAGE)
        return self._relay

    def _commit_waiter(self) -> tuple[Callback, Any]:
        """A spool commit's callback, and what the driver waits on until it ran."""
        raise NotImplementedError

    def _settle_left(self, relay: Relay) -> None:
        """After the writer stopped: callers of events still parked get the 'left in the
        spool' error (must run where outcomes may be settled)."""
        telemetry = self._core.telemetry
        for record in relay.take_parked():
            error = relay.left_error(record)
            if telemetry is not None:
                telemetry.finish(record, error)
            target = record.sink.target  # type: ignore[attr-defined]  # a StoredSink
            if target is not None:
                target.settle(record, error)

    def health(self) -> HealthStatus:
        """A snapshot of this publisher's health; cheap, never blocks (see ``HealthStatus``).

        The broker's reachability comes from a cached metadata probe that the poll thread
        runs at most every 0.5 s (1 s timeout) while ``health()`` is being called; the first
        call starts the probes and reports ``broker_reachable=None`` (not ready).
        """
        core = self._core
        probe = core.probes.health
        probe.want()
        stats = stats_of(core, self._relay)
        reasons = []
        if core.lifecycle.closed:
            reasons.append("publisher is closed")
        denial = core.client_errors.denials.current
        if denial is not None:
            # The cluster answered, with a refusal: "unreachable" would send the reader to
            # the network instead of the credentials or ACLs.
            reasons.append(denial.summary)
        elif probe.reachable is None:
            reasons.append("broker not probed yet")
        elif not probe.reachable:
            reasons.append("broker unreachable (metadata probe failed)")
        if stats.breaker_state in ("open", "half_open"):
            reasons.append(f"circuit breaker is {stats.breaker_state}")
        if self._relay is not None and self._relay.failure is not None:
            reasons.append(f"spool failed ({self._relay.failure}): events are refused")
        transactions = self._transactions
        if transactions is not None and transactions.failure is not None:
            reasons.append(f"transactional producer failed ({transactions.failure.code})")
        last_error = core.client_errors.last_error
        return HealthStatus(
            ready=not reasons,
            reasons=tuple(reasons),
            broker_reachable=probe.reachable,
            probed_at=probe.probed_at,
            breaker_state=stats.breaker_state,
            queue_depth=stats.queue_depth,
            outstanding=stats.outstanding,
            spool_backlog=stats.spool_backlog,
            spool_oldest_age=stats.spool_oldest_age,
            delivered=stats.delivered,
            failed=stats.failed,
            last_error=None if last_error is None else self._config._scrub(last_error),
            last_error_at=core.client_errors.last_error_at,
            closed=core.lifecycle.closed,
            checked_at=time.time(),
        )

    def _encode(
        self,
        event: Any,
        topic: str | None,
        key: str | bytes | None,
        headers: UserHeaders | None,
    ) -> EncodedEvent:
        """Codec, then breaker (with a spool, an open breaker spools)."""
        self._check_open()
        if self._transactions is not None:
            self._refuse_outside_transaction()
        encoded = self._codec.encode(event, topic, key, headers)
        breaker = self._core.breaker
        if breaker is not None and self._relay is None and not breaker.allows():
            raise self._core.refuse_open_breaker(encoded)
        return encoded

    def _batch_encoder(self) -> Callable[[Any, str | None], EncodedEvent]:
        """``encode(event, topic)`` for a batch: codec, then breaker."""
        self._refuse_outside_transaction()
        encode = self._codec.encode
        core = self._core
        breaker = core.breaker
        if breaker is None or self._relay is not None:
            return encode

        def encode_checked(event: Any, topic: str | None) -> EncodedEvent:
            encoded = encode(event, topic)
            if not breaker.allows():
                raise core.refuse_open_breaker(encoded)
            return encoded

        return encode_checked

    def _report(self, timed_out: bool, *, log: bool = True) -> CloseReport:
        core = self._core
        if core.lifecycle.forked:  # the parent's publisher, copied by os.fork(): nothing here
            return CloseReport(
                delivered=0, failed=0, undelivered=0, undelivered_event_ids=(), timed_out=False
            )
        failures, outstanding, failed = core.counters.closing_state()
        relay = self._relay
        if relay is None:
            spooled = 0
            undelivered = len(failures) + outstanding
        else:
            # Failures the spool absorbed (parked, left) are not failures for the caller.
            spooled = undelivered = relay.backlog
            failed = relay.given_up
        report = CloseReport(
            delivered=core.counters.delivered,
            failed=failed,
            undelivered=undelivered,
            undelivered_event_ids=failures,
            timed_out=timed_out,
            spooled=spooled,
        )
        if log:
            _log.info(
                "eventwire.publisher_closed",
                delivered=report.delivered,
                failed=report.failed,
                undelivered=report.undelivered,
                spooled=report.spooled,
                timed_out=timed_out,
                first_undelivered_event_ids=report.undelivered_event_ids[:_LOGGED_IDS],
            )
        return report


def check_call_timeout(timeout: float | None) -> None:
    """Refuse a ``timeout=`` that is not ``None`` or a finite number of seconds above 0."""
    if timeout is None:
        return
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(f"timeout must be None or a finite number of seconds > 0, got {timeout!r}")


def stats_of(core: ProducerCore, relay: Relay | None) -> Stats:
    """The figures of a publisher's core and spool, read now."""
    counters = core.counters
    breaker = core.breaker
    backlog, age = (None, None) if relay is None else relay.status()
    return Stats(
        outstanding=counters.outstanding,
        delivered=counters.delivered,
        failed=counters.failed,
        retries=counters.retries,
        dead_lettered=counters.dead_lettered,
        recreations=counters.recreations,
        queue_depth=core.queue_depth(),
        breaker_state="disabled" if breaker is None else breaker.state,
        spool_backlog=backlog,
        spool_oldest_age=age,
    )


_OPEN = frozenset({State.OPEN})
_ORPHANABLE = frozenset({State.OPEN, State.INTAKE_STOPPED})
#: Seconds the spool writer of a publisher dropped unclosed gets to write its last acks.
_ORPHAN_STOP_TIMEOUT = 10.0
