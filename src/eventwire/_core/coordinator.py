"""ProducerCore: takes records, settles their reports, and applies the decisions.

It wires the pieces that each own one concern: the producer handle (``handle``), the poll
thread and the hand-over (``poll``), order per key (``ordering``), what a failed attempt
becomes (``decisions``), the dead-letter writer, the probes and the counters. What happens
to a failed delivery is decided in ``decisions``; this module only carries it out.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException

from eventwire._codec import EncodedEvent
from eventwire._config import PublisherConfig
from eventwire._core.access import construction_hint
from eventwire._core.breaker import CircuitBreaker
from eventwire._core.client_log import ClientErrors, LibrdkafkaLog
from eventwire._core.dead_letter import DeadLetterWriter
from eventwire._core.deadlines import Deadlines
from eventwire._core.denials import Denials, connection_of
from eventwire._core.handle import ProducerHandle
from eventwire._core.intake import Intake
from eventwire._core.ordering import KeyOrdering
from eventwire._core.poll import POLL_INTERVAL, Handoff, Handover, LoopErrors, PollThread
from eventwire._core.probes import Probes
from eventwire._core.record import InFlight, Sink
from eventwire._core.settlement import Settlement
from eventwire._core.state import Lifecycle, State
from eventwire._core.stats import Counters
from eventwire._core.tokens import TokenSource
from eventwire._core.transport import TransportFactory, librdkafka_transport
from eventwire._errors import ConfigError
from eventwire._lifecycle import track
from eventwire._logs import log as _log
from eventwire._messages import (
    CLOSED_MESSAGE,
    abandoned_error,
    forked_message,
)
from eventwire._security import OAuthBearer
from eventwire._telemetry import Instrumentation

#: How long one ``flush()`` of a closing publisher blocks: short, so the reports it served
#: are handed over about as soon as by ``poll()``.
_CLOSE_FLUSH_SLICE: Final = 0.01
#: Seconds before a producer the cluster refused (CLUSTER_AUTHORIZATION_FAILED) is replaced.
_DENIED_REPLACE_DELAY: Final = 5.0
#: librdkafka's default queue.buffering.max.kbytes (1 GB).
_DEFAULT_QUEUE_KBYTES: Final = 1_048_576
_TIMED_OUT: Final = KafkaError._MSG_TIMED_OUT


class ProducerCore:
    """Owns the records between ``produce`` and their settled outcome."""

    def __init__(
        self,
        config: PublisherConfig,
        *,
        telemetry: Instrumentation | None = None,
        transport: TransportFactory = librdkafka_transport,
        warn_at_exit: bool = True,
    ) -> None:
        self.config = config
        self._warn_at_exit = warn_at_exit
        self.telemetry = telemetry
        self.lifecycle = Lifecycle()
        self.counters = Counters()
        self.handover = Handover(self._settle)
        settings: dict[str, object] = dict(config._to_librdkafka())
        self.client_errors = ClientErrors(
            on_fatal=self._request_replacement,
            on_unreachable=self._suspect_unreachable,
            denials=Denials(connection_of(settings), settings, config._scrub),
            on_denied_fatal=self._replace_later,
            reached=lambda: self.probes.reached,
        )
        settings["error_cb"] = self.client_errors
        settings["logger"] = LibrdkafkaLog(config._scrub)
        #: The OAUTHBEARER token source (``security=OAuthBearer(...)``), or ``None``.
        self.tokens = (
            TokenSource(config.security.token_provider, config._scrub)
            if isinstance(config.security, OAuthBearer)
            else None
        )
        if self.tokens is not None:
            settings["oauth_cb"] = self.tokens
        if telemetry is not None and telemetry.statistics_interval_ms > 0:
            settings["stats_cb"] = telemetry.on_statistics
            settings.setdefault("statistics.interval.ms", telemetry.statistics_interval_ms)
        self.max_message_bytes, self.max_queue_bytes = _size_limits(settings)
        try:
            self.handle = ProducerHandle(transport, settings, config._scrub)
        except ConfigError as exc:
            if self.tokens is not None:
                self.tokens.close()
                if self.tokens.last_failure is not None:
                    # librdkafka only says no token came within 10 s: the provider's error is
                    # the cause.
                    raise ConfigError(
                        f"the OAUTHBEARER token provider gave no token while the publisher was "
                        f"built ({self.tokens.last_failure}); check the provider: {exc}"
                    ) from None
            hint = construction_hint(str(exc))
            if hint is not None:  # librdkafka's words ("PEM lib") do not say what to check
                raise ConfigError(f"{exc} ({hint})") from None
            raise
        self.breaker = (
            CircuitBreaker(config.breaker, on_change=_log_breaker_change)
            if config.breaker is not None
            else None
        )
        self.ordering = KeyOrdering()
        self.probes = Probes(
            breaker=self.breaker,
            denials=self.client_errors.denials,
            metadata=self.metadata,
            purge_queued=self._purge_queued,
            delivered=lambda: self.counters.delivered,
            spooled=config.spool_path is not None,
        )
        self.dead_letters = (
            DeadLetterWriter(config.dead_letter, telemetry, self.handover.append)
            if config.dead_letter is not None
            else None
        )
        self.poll = PollThread(
            (
                self._poll_step,
                self._reports_step,
                self._deadline_step,
                self._replace_step,
                self._resend_step,
                self._retired_step,
                self._probe_step,
                self._orphan_step,
            ),
            self._shut_down,
        )
        self.settlement = Settlement(
            config=config,
            lifecycle=self.lifecycle,
            counters=self.counters,
            handle=self.handle,
            handover=self.handover,
            ordering=self.ordering,
            probes=self.probes,
            client_errors=self.client_errors,
            breaker=self.breaker,
            dead_letters=self.dead_letters,
            telemetry=telemetry,
        )
        self.deadlines = Deadlines(config.delivery_timeout)
        self.intake = Intake(
            handle=self.handle,
            ordering=self.ordering,
            counters=self.counters,
            client_errors=self.client_errors,
            deadlines=self.deadlines,
            append=self.handover.append,
            breaker=self.breaker,
            dead_letters=self.dead_letters,
            telemetry=telemetry,
            limits=(self.max_message_bytes, self.max_queue_bytes),
            denied=self.settlement.denied_error,
        )
        #: Takes one record (see ``Intake.produce``); ``fail_unsent`` and
        #: ``refuse_open_breaker`` word and count what is refused before it is sent.
        self.produce = self.intake.produce
        self.fail_unsent = self.intake.fail_unsent
        self.refuse_open_breaker = self.intake.refuse_open_breaker
        self._on_orphan_stopped: Callable[[], object] | None = None
        self._stopped_orphaned = False
        #: The process that built this core (a forked child refuses everything).
        self.pid = os.getpid()
        #: The async publisher's event loop closed before the publisher did: the reports of
        #: what is in flight can no longer be settled there (``loop_closed``).
        self.loop_lost = False
        track(self)

    def record(self, encoded: EncodedEvent, sink: Sink, slot: int = 0) -> InFlight:
        """A new record of ``encoded`` whose outcome goes to ``sink``."""
        return InFlight(encoded, sink, slot)

    # -- lifecycle -------------------------------------------------------------------------

    def start(
        self,
        handoff: Handoff | None = None,
        on_room: Callable[[], object] | None = None,
        on_orphan_stopped: Callable[[], object] | None = None,
    ) -> None:
        """Start the poll thread. ``handoff`` receives each batch of reports (default: settle
        them on the poll thread); ``on_room`` runs after each settled batch;
        ``on_orphan_stopped`` when the thread stops after the publisher was dropped unclosed."""
        if self.poll.started:
            return
        if handoff is not None:
            self.handover.handoff = handoff
        if on_room is not None:
            self.settlement.on_room = on_room
        self._on_orphan_stopped = on_orphan_stopped
        self.poll.start(f"eventwire-poll-{self.config.client_id}")
        _log.info(
            "eventwire.publisher_started",
            preset=self.config.preset,
            bootstrap_servers=self.config.bootstrap_servers,
            client_id=self.config.client_id,
            encoding=self.config.encoding,
            validate=self.config.validate,
        )

    @property
    def closed_message(self) -> str:
        """What ``PublisherClosedError`` says once this core refuses events."""
        return forked_message(self.pid) if self.lifecycle.forked else CLOSED_MESSAGE

    def idle(self) -> bool:
        """Whether nothing accepted waits for its outcome (with the loop lost: nothing waits
        in librdkafka's queue)."""
        if self.loop_lost:
            return not len(self.handle.transport)
        return self.counters.outstanding <= 0

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
                in_flight=len(self.handle.transport),
                hint="await publisher.aclose() before the event loop ends",
            )

    def forked_in_child(self) -> None:
        self.lifecycle.move(State.FORKED)

    def flush_at_exit(self, timeout: float) -> None:
        if self.lifecycle.closed or not self.poll.running:
            return
        deadline = time.monotonic() + timeout
        while not self.idle():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.handover.wait_for_room(self.handover.room_generation, min(remaining, 0.1))
        if self._warn_at_exit:
            _log.warning(
                "eventwire.closed_at_exit",
                client_id=self.config.client_id,
                undelivered=self.queue_depth() if self.loop_lost else self.counters.outstanding,
                hint="close the publisher before the process exits",
            )
        self.begin_close()
        self.stop_polling(1.0)  # what is left is purged: its callers get an error

    def begin_close(self) -> None:
        """Stop intake: the close waits for what is outstanding."""
        self.lifecycle.move(State.CLOSING)
        self.counters.begin_close()

    def abandon(self) -> None:
        """Give up on everything not yet acknowledged: purge librdkafka's queues (each purged
        event gets a failed report) and fail the events waiting in retry holds. Must run where
        outcomes may be settled (the loop thread for the async publisher)."""
        self.lifecycle.move(State.ABANDONING)
        with contextlib.suppress(KafkaException):
            self.handle.transport.purge(True, True, True)
        waiting = self.ordering.abandon()
        for record in waiting:
            record.err = abandoned_error(record.encoded, record.failures)
        if waiting:
            self.settlement.settle(waiting)

    def stop_polling(self, timeout: float) -> None:
        """Stop the poll thread (after its last batch) and release the producer's threads."""
        if self.poll.started:
            self.poll.stop(timeout)
        else:  # never started: nothing was produced
            self.handle.transport.close()
            if self.tokens is not None:
                self.tokens.close()
        self.lifecycle.move(State.CLOSED)

    # -- the poll thread's steps ---------------------------------------------------------------

    def _poll_step(self) -> None:
        transport = self.handle.transport
        due = self.ordering.next_due()
        timeout = POLL_INTERVAL if due is None else max(0.0, min(POLL_INTERVAL, due - time.time()))
        try:
            if self.lifecycle.closed and len(transport):
                # While flush() runs librdkafka sends at once, ignoring linger.ms: a close
                # shorter than the linger time would otherwise purge events it could deliver.
                transport.flush(min(timeout, _CLOSE_FLUSH_SLICE))
            else:
                transport.poll(timeout)
        except KafkaException as exc:  # fatal errors are raised from poll()
            self.client_errors(exc.args[0])

    def _reports_step(self) -> None:
        if self.handover.reports:
            self.handover.hand_over()

    def _deadline_step(self) -> None:
        if self.lifecycle.abandoning:  # a close purges everything anyway
            return
        handle = self.handle
        expired = self.deadlines.expired(handle.generation)
        if not expired:
            return
        # Everything queued fails now, in order, so that nothing newer of an expired event's
        # key is sent before its re-send.
        handle.sweep(self.handover.reports)
        if any(record.pending for record in expired):
            # In flight: the broker holds it. Only a new producer lets go of it (purged too);
            # never a transactional one mid-transaction: the record fails at librdkafka's
            # backstop (capped at transaction.timeout.ms) and its transaction aborts.
            self._request_replacement("a message timed out (idempotence state in doubt)")
        if self.handover.reports:
            self.handover.hand_over()

    def _replace_step(self) -> None:
        if self.handle.replacement_due():
            self._replace()

    def _resend_step(self) -> None:
        if self.ordering.gate_closed:
            return
        if self.ordering.has_work():
            self.ordering.send_due(time.time(), self.intake.send)
        if self.dead_letters:
            self.dead_letters.write(
                self.handle.transport, self.handle.generation, self.intake.refused
            )

    def _retired_step(self) -> None:
        handle = self.handle
        if handle.retiring:
            handle.poll_retired(purge=self.ordering.gate_closed)
            if self.handover.reports:
                self.handover.hand_over()
        if self.ordering.gate_closed and self.handover.gate_batch is None and not handle.retiring:
            # Every replaced producer reported all it held: settling one last batch (maybe
            # empty) opens the gate; batches are settled in hand-over order, so the purge
            # reports handed over before it are settled by then.
            self.handover.hand_over(gate=True)

    def _probe_step(self) -> None:
        if not self.lifecycle.abandoning:  # a probe would only hold up a close's last reports
            self.probes.step()

    def _orphan_step(self) -> None:
        # Nobody holds the publisher any more, so nobody can publish or close: once what it
        # accepted is settled, the thread stops and the producer's threads and sockets go.
        if self.lifecycle.orphaned and self.idle():
            self.lifecycle.move(State.CLOSED)
            self._stopped_orphaned = True
            self.poll.request_stop()

    def _shut_down(self, errors: LoopErrors) -> None:
        """Stopping: whatever is still queued is abandoned (close() drained or purged first);
        its reports are handed over, then the producers are destroyed (connections closed)."""
        for transport in self.handle.all_transports():
            try:
                transport.purge(True, True, True)
                with contextlib.suppress(KafkaException), _quiet_close(self.config):
                    transport.poll(0)
                    transport.close()
            except Exception as exc:  # noqa: BLE001 - the purge reports must still go out
                errors.record("shut_down", exc)
        self.handover.hand_over()
        if self.tokens is not None:
            self.tokens.close()
        if self._stopped_orphaned and self._on_orphan_stopped is not None:
            try:
                self._on_orphan_stopped()
            except Exception as exc:  # noqa: BLE001 - logged like the loop's own failures
                errors.record("orphan_stopped", exc)

    def _replace(self) -> None:
        """Replace a producer that hit a fatal error; what it still held comes back as failed
        reports (purged) and is re-sent by the retry policy, in order per key.

        Those reports reach ``settle`` (which puts their keys on hold) only after the new
        producer is in place: an event accepted meanwhile would go straight to the new producer
        and overtake the purged older events of its key. So the gate closes first, and stays
        closed until the old producer reported everything and that last batch was settled.
        """
        self.ordering.close_gate()
        self.handover.gate_batch = None
        reason = self.handle.replace()
        self.counters.recreated()
        _log.error("eventwire.producer_recreated", reason=reason, generation=self.handle.generation)

    def _request_replacement(self, reason: str) -> None:
        # A transactional producer is never replaced: after a fatal error (fenced, mostly) a
        # new one would fence its successor, and mid-transaction a new one could neither
        # commit nor abort the open transaction; the transaction fails instead.
        if self.config.transactional_id is None:
            self.handle.request_replacement(reason)

    def _replace_later(self, reason: str) -> None:
        # The cluster refused the producer (its id): a new one would be refused the same at
        # once. It is replaced after a pause, so the publisher recovers once the ACL is given.
        self.handle.request_replacement(reason, _DENIED_REPLACE_DELAY)

    def _settle(self, batch: list[InFlight]) -> None:
        self.settlement.settle(batch)

    @property
    def settle(self) -> Callable[[list[InFlight]], None]:
        """Settles a batch of reports (what a hand-off calls where outcomes may be settled)."""
        return self.settlement.settle

    def _suspect_unreachable(self, reason: str) -> None:
        if self.breaker is not None:
            self.breaker.record_unreachable(reason)

    def _purge_queued(self) -> None:
        self.handle.transport.purge(True, False, True)

    def serve_reports(self) -> None:
        """Serve, on the caller's thread, the delivery reports librdkafka holds now and hand
        them over, when the caller alone produces a batch and the poll thread stands aside.

        A large batch then settles as it goes, as a hand-written loop calling ``poll(0)``
        would: its records die young instead of all outliving the batch (which promoted
        them to the collector's oldest generation: a full collection per ~150,000 events),
        and the poll thread does not wake to serve a burst of reports afterwards.
        """
        if not self.poll.alone_in_batch() or self.ordering.gate_closed or self.handle.retiring:
            return
        try:
            self.handle.transport.poll(0)
        except KafkaException as exc:  # fatal errors are raised from poll()
            self.client_errors(exc.args[0])
        if self.handover.reports:
            self.handover.hand_over()

    # -- what others read ------------------------------------------------------------------

    def allows(self) -> bool:
        """Whether the breaker lets events through now (always, without one)."""
        return self.breaker is None or self.breaker.allows()

    def room_generation(self) -> int:
        """Bumped at each hand-over of reports (which may have freed queue room)."""
        return self.handover.room_generation

    def wait_for_room(self, generation: int, timeout: float) -> bool:
        """Block until a hand-over happened after ``generation``, at most ``timeout`` s."""
        return self.handover.wait_for_room(generation, timeout)

    def queue_depth(self) -> int:
        """Messages in librdkafka's queue (waiting, or in flight to a broker)."""
        return self.handle.depth()

    def metadata(self, timeout: float) -> Any:
        """Fetch cluster metadata (used by health and breaker probes)."""
        return self.handle.transport.list_topics(timeout=timeout)


def _size_limits(settings: Mapping[str, object]) -> tuple[int, int]:
    """``(message.max.bytes, queue.buffering.max.kbytes in bytes)`` of librdkafka settings."""
    kbytes = settings.get("queue.buffering.max.kbytes", _DEFAULT_QUEUE_KBYTES)
    return int(str(settings.get("message.max.bytes", 1_000_000))), int(str(kbytes)) * 1024


def _log_breaker_change(old: str, new: str, reason: str) -> None:
    event = {
        "open": "eventwire.circuit_opened",
        "half_open": "eventwire.circuit_half_open",
        "closed": "eventwire.circuit_closed",
    }.get(new, "eventwire.circuit_changed")
    _log.warning(event, previous=old, reason=reason)


@contextlib.contextmanager
def _quiet_close(config: PublisherConfig) -> Iterator[None]:
    """confluent-kafka's ``close()`` of a transactional producer aborts a transaction in
    progress and warns (``RuntimeWarning``) when that fails, as it always does once the
    producer was fenced; the transaction's own error said it already. The filter change is
    process-wide: only for transactional producers."""
    if config.transactional_id is None:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _noop() -> None:
    return None
