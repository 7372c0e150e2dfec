"""Settling delivery reports: outcomes to their sinks, and failed attempts carried out as
``decisions`` says (retry, park, dead-letter, fail), with the counts kept as it goes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException

from eventwire._classify import classify, still_ambiguous, to_publish_error
from eventwire._codec import EncodedEvent
from eventwire._config import PublisherConfig
from eventwire._core.breaker import CircuitBreaker
from eventwire._core.client_log import ClientErrors
from eventwire._core.dead_letter import DeadLetterSink, DeadLetterWriter
from eventwire._core.decisions import Attempt, Decision, Situation, decide
from eventwire._core.handle import ProducerHandle
from eventwire._core.ordering import KeyOrdering
from eventwire._core.poll import Handover
from eventwire._core.probes import Probes
from eventwire._core.record import InFlight
from eventwire._core.state import Lifecycle
from eventwire._core.stats import Counters
from eventwire._errors import AuthenticationError, AuthorizationError, PublishError
from eventwire._logs import log as _log
from eventwire._messages import denied_error, not_retried_error, unreached_error
from eventwire._telemetry import Instrumentation

_TIMED_OUT: Final = KafkaError._MSG_TIMED_OUT
#: The report of an attempt the core timed out itself (``deadlines``).
_TIMED_OUT_REPORT: Final = KafkaError(_TIMED_OUT)
_DENIED: Final = (AuthenticationError, AuthorizationError)


class Settlement:
    """Settles batches of reports (where outcomes may be settled: the loop thread for the
    async publisher, the poll thread for the sync one)."""

    def __init__(
        self,
        *,
        config: PublisherConfig,
        lifecycle: Lifecycle,
        counters: Counters,
        handle: ProducerHandle,
        handover: Handover,
        ordering: KeyOrdering,
        probes: Probes,
        client_errors: ClientErrors,
        breaker: CircuitBreaker | None,
        dead_letters: DeadLetterWriter | None,
        telemetry: Instrumentation | None,
    ) -> None:
        self.config = config
        self.lifecycle = lifecycle
        self.counters = counters
        self.handle = handle
        self.handover = handover
        self.ordering = ordering
        self.probes = probes
        self.client_errors = client_errors
        self.breaker = breaker
        self.dead_letters = dead_letters
        self.telemetry = telemetry
        #: Runs after each settled batch (wakes callers waiting for room).
        self.on_room: Callable[[], object] = _noop
        #: The hand-over ``order`` of the latest acknowledged event seen: the cluster took a
        #: write after every event handed over before it, so a failure of such an event is
        #: about its partition, not the cluster (see ``decisions``).
        self._acknowledged_order = -1
        #: The producer generation that last had a write acknowledged (-1: none yet).
        self._wrote_generation = -1

    def settle(self, batch: list[InFlight]) -> None:
        """Turn delivery reports into outcomes (on the loop thread for the async publisher)."""
        ok = bad = dead = kept = 0
        closing = self.lifecycle.closed
        abandoning = self.lifecycle.abandoning
        given_up: list[str] = []
        ordering = self.ordering
        telemetry = self.telemetry
        last_ok: InFlight | None = None
        for record in batch:
            err = record.err
            if err is None:
                if ordering.holds and (record.failures or record.swept):  # maybe a head
                    ordering.succeeded(record)
                last_ok = record
                receipt: Any = record.receipt
                if type(record.sink) is DeadLetterSink:
                    dead += 1
                    bad += 1
                else:
                    ok += 1
                if telemetry is not None:
                    telemetry.finish(record, receipt)
                record.sink.settle(record, receipt)  # record.settle, one call less per event
                continue
            if type(record.sink) is DeadLetterSink:
                bad += self._dead_letter_failed(record, err)
                continue
            if last_ok is not None:
                self._acknowledged_order = max(self._acknowledged_order, last_ok.order)
            error = self._on_failure(record, err)
            if error is None:  # taken over: retried, parked or dead-lettered, settled later
                continue
            if record.durable and abandoning:
                kept += 1  # left in the spool at close: not a failure, replayed next start
            else:
                bad += 1
            if closing:
                given_up.append(error.event_id)
            if telemetry is not None:
                telemetry.finish(record, error)
            record.settle(error)
        self.counters.settled(ok, bad, kept, dead, given_up)
        if last_ok is not None:
            self._acknowledged(last_ok)
        if batch is self.handover.gate_batch:
            self.handover.gate_batch = None
            ordering.open_gate()
        self.on_room()

    def _acknowledged(self, last_ok: InFlight) -> None:
        """A batch held acknowledged writes, ``last_ok`` the latest: the cluster answers and
        lets this client write."""
        self._acknowledged_order = max(self._acknowledged_order, last_ok.order)
        self._wrote_generation = last_ok.generation
        self.probes.reached = True
        self.client_errors.denials.accepted()
        if self.breaker is not None:
            self.breaker.record_success()

    def _on_failure(self, record: InFlight, err: Any) -> PublishError | None:
        """Carry out what ``decisions`` says a failed attempt becomes: the error to settle
        the event with now, or ``None`` when a retry, the spool or the dead-letter topic took
        it over."""
        if record.expired and not isinstance(err, PublishError):
            # Purged by the core's deadline (``deadlines``): what librdkafka would report.
            err = record.err = _TIMED_OUT_REPORT
        now = time.time()
        attempt = self._attempt(record, err, now)
        decision = decide(attempt, self._situation(now))
        record.swept = decision.resumes
        if decision.resumes:
            # Its attempt goes on (``Deadlines.arm`` keeps its deadline): not a failure.
            self.ordering.failed(record, 0.0, now)
            return None
        record.failures = attempt.failures
        record.first_failure = attempt.first_failure
        if decision.replace is not None:
            self.handle.request_replacement(decision.replace)
        if decision.maybe_written:
            record.maybe_written = True
        error = self._error_of(record, err, decision)
        if decision.counts_for_breaker and self.breaker is not None:
            self.breaker.record_failure()
        if decision.action in ("retry", "park"):
            assert decision.delay is not None  # noqa: S101 - decide() gives one with these
            self.ordering.failed(record, decision.delay, now)
            self.counters.retried()
            _announce_resend(record, error, decision.delay, self.telemetry, decision.action)
            return None
        self.ordering.failed(record, None, now)
        if decision.action == "dead_letter":
            assert self.dead_letters is not None  # noqa: S101 - decided only with one
            # Its one log line comes with the dead-letter outcome.
            self.dead_letters.add(record, error)
            return None
        if not self.lifecycle.abandoning:
            # Given up at close: the close's one summary line counts them (a line each would
            # slow a shutdown by ~40 us per event), and its CloseReport names them all.
            log_failed(error, record.encoded.event_type)
        return error

    def _attempt(self, record: InFlight, err: Any, now: float) -> Attempt:
        """The facts of the attempt ``err`` reports, counted as a failure (the first one at
        ``now``)."""
        refused = isinstance(err, PublishError)
        failure: Any
        if refused:
            # A re-send refused because the cluster refuses this client is decided as such.
            failure = "denied" if isinstance(err, _DENIED) else err.category
        else:
            failure = classify(err)
        return Attempt(
            code=(err.code or err.category) if refused else err.name(),
            failure=failure,
            refused=refused,
            current_producer=record.generation == self.handle.generation,
            expired=record.expired,
            swept=record.swept,
            unsent=record.unsent,
            maybe_written=record.maybe_written,
            sent_before_connection_error=(
                record.connection_errors != self.client_errors.connection_errors
            ),
            failures=record.failures + 1,
            first_failure=record.first_failure if record.failures else now,
            durable=record.durable,
            acknowledged_after=record.order <= self._acknowledged_order,
        )

    def _situation(self, now: float) -> Situation:
        breaker = self.breaker
        return Situation(
            retry=self.config.retry,
            closing=self.lifecycle.abandoning,
            reached=self.probes.reached,
            purged_unreached=self.probes.purged_unreached,
            replacing=self.handle.replace_reason is not None,
            breaker=breaker is not None,
            breaker_open=breaker is not None and not breaker.allows(),
            dead_letter=self.dead_letters is not None,
            transactional=self.config.transactional_id is not None,
            now=now,
            denied=self.client_errors.denials.known is not None,
            producer_wrote=self._wrote_generation == self.handle.generation,
        )

    def _error_of(self, record: InFlight, err: Any, decision: Decision) -> PublishError:
        """The error a failed attempt settles with, worded as ``decision`` says."""
        enc = record.encoded
        wording = decision.wording
        error: PublishError
        if wording == "refused":
            error = err
            error.attempts = record.failures
        elif wording == "unreached":
            breaker = self.breaker
            error = unreached_error(
                enc,
                self.config.bootstrap_servers,
                breaker.last_reason if breaker is not None else None,
                self._client_error_hint(),
                err.name(),
            )
            error.__cause__ = KafkaException(err)
        elif wording == "denied":
            error = self.denied_error(enc, err.name(), record.failures)
            error.__cause__ = KafkaException(err)
        elif wording == "no_partition":
            error = self._no_partition_error(record, err)
        else:
            error = to_publish_error(
                err,
                topic=enc.topic,
                event_id=enc.event_id,
                attempts=record.failures,
                failure=decision.override,
            )
        if decision.still_ambiguous:
            error = still_ambiguous(error)
        if decision.breaker_stopped and decision.action == "fail":
            error = not_retried_error(error, self.breaker.last_reason if self.breaker else None)
        return error

    def denied_error(self, enc: EncodedEvent, code: str, attempts: int = 0) -> PublishError:
        """The error of an event not sent because the cluster refuses this client (the
        refusal in force; a generic one if it was dropped meanwhile)."""
        denial = self.client_errors.denials.known
        if denial is None:
            return unreached_error(
                enc, self.config.bootstrap_servers, None, self._client_error_hint(), code
            )
        return denied_error(
            enc,
            self.config.bootstrap_servers,
            kind=denial.kind,
            summary=denial.summary,
            code=denial.code,
            attempts=attempts,
        )

    def _no_partition_error(self, record: InFlight, err: Any) -> PublishError:
        """The error of an event that timed out before it had a partition: never sent, no
        metadata for its topic. While the cluster does not answer, that says nothing about
        the topic; else it does not exist (and the cluster does not create it), or it has no
        leader."""
        enc = record.encoded
        breaker = self.breaker
        reached = self.probes.reached
        unreachable = (
            not reached
            or record.connection_errors != self.client_errors.connection_errors
            or (breaker is not None and breaker.state != "closed")
        )
        if not unreachable:
            context = f"topic {enc.topic!r} has no known partition (does it exist?)"
        else:
            since = (
                "did not answer while the event waited (unreachable)"
                if reached
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
            attempts=record.failures,
            context=context,
            failure="retriable",
        )

    def _client_error_hint(self) -> str:
        """The client error that may explain why the cluster never answered, for messages."""
        cause = self.client_errors.cause
        return "" if cause is None else f"; last client error: {self.config._scrub(cause)}"

    def _dead_letter_failed(self, letter: InFlight, err: Any) -> int:
        """A dead-letter write failed: tried again (0), or its original is settled (1)."""
        assert self.dead_letters is not None  # noqa: S101 - only dead-letter records get here
        missing = self._missing_topic(letter, err)
        if self.dead_letters.retry(letter, err, give_up=self.lifecycle.abandoning or missing):
            if (
                not isinstance(err, PublishError)
                and classify(err) == "fatal"
                and letter.generation == self.handle.generation
            ):
                self.handle.request_replacement(f"{err.name()} on a dead-letter write")
            return 0
        if missing:
            letter.settle(self._no_partition_error(letter, err))
        else:
            letter.settle(
                err
                if isinstance(err, PublishError)
                else to_publish_error(
                    err, topic=letter.encoded.topic, event_id=letter.encoded.event_id
                )
            )
        return 1

    def _missing_topic(self, record: InFlight, err: Any) -> bool:
        """Whether a failed write timed out without a partition once the cluster had answered:
        its topic does not exist (and is not created), so sending it again only waits another
        ``delivery_timeout``."""
        return (
            self.probes.reached
            and record.unsent
            and not isinstance(err, PublishError)
            and err.code() == _TIMED_OUT
        )


def log_failed(error: PublishError, event_type: str) -> None:
    _log.warning(
        "eventwire.publish_failed",
        topic=error.topic,
        event_id=error.event_id,
        event_type=event_type,
        error_class=error.category,
        code=error.code,
        attempts=error.attempts,
    )


def _announce_resend(
    record: InFlight,
    error: PublishError,
    delay: float,
    telemetry: Instrumentation | None,
    action: str,
) -> None:
    """The one log line (and span event) of a scheduled re-send."""
    enc = record.encoded
    if action == "park":
        _log.warning(
            "eventwire.spooled_for_retry",
            topic=enc.topic,
            event_id=enc.event_id,
            error_class=error.category,
            code=error.code,
            attempts=record.failures,
            delay_s=delay,
        )
        if telemetry is not None:
            telemetry.parked(record, error, delay)
        return
    _log.info(
        "eventwire.retry_scheduled",
        topic=enc.topic,
        event_id=enc.event_id,
        error_class=error.category,
        code=error.code,
        attempt=record.failures + 1,
        delay_s=round(delay, 3),
    )
    if telemetry is not None:
        telemetry.retry_scheduled(record, error, delay)


def _noop() -> None:
    return None
