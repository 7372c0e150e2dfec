"""What a failed delivery attempt becomes: a pure function of data.

Given the facts of one failed attempt (``Attempt``) and of the publisher at that moment
(``Situation``), ``decide`` returns a ``Decision``: how to word the error, which class decides
what follows, whether the producer must be replaced, whether the failure counts toward the
circuit breaker, and the action, in this order of precedence:

1. **retry** — retriable (and, if the policy says so, ambiguous) failures are re-sent after an
   exponential, jittered backoff, within the policy's attempts and deadline; never while the
   circuit breaker is open (the event is then parked if durable, else failed at once); a
   record the core purged from the queue behind an expired one (``swept``) *resumes*: it is
   re-sent at once whatever the policy, its attempt going on with the time it had left;
2. **park** — a *durable* event (in the spool) whose retries ran out stays in the spool and is
   re-sent every ``PARK_DELAY`` seconds until delivered (never dead-lettered, never failed);
3. **dead-letter** — permanent failures and exhausted retries go to the dead-letter topic when a
   ``DeadLetterPolicy`` is set;
4. **fail** — the caller gets the classified ``PublishError``.

No librdkafka here: codes are compared by name, so the module and its tests run without
confluent-kafka installed (an import-linter contract keeps it so).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from eventwire._errors import FailureClass
from eventwire._options import RetryPolicy

#: Seconds before a durable (spooled) event whose retries ran out is sent again.
PARK_DELAY: Final = 1.0

#: The class that decides what follows a failed attempt: a ``FailureClass``,
#: ``"circuit_open"`` for an event purged because the cluster never answered, or ``"denied"``
#: for one never sent because the cluster refuses this client (authentication or
#: authorization): neither is retried nor dead-lettered (the dead-letter topic is on the same
#: cluster).
Failure = FailureClass | Literal["circuit_open", "denied"]
#: How the caller's error is worded:
#: ``"reported"`` from the delivery report (``override`` gives its class when the code alone
#: says less than what happened); ``"no_partition"``: timed out before its topic had a known
#: partition (never sent); ``"unreached"``: purged because the cluster never answered;
#: ``"denied"``: never sent because the cluster refuses this client; ``"refused"``: a
#: re-send librdkafka refused (the error exists already).
Wording = Literal["reported", "no_partition", "unreached", "denied", "refused"]
Action = Literal["retry", "park", "dead_letter", "fail"]

_TIMED_OUT: Final = "_MSG_TIMED_OUT"
_PURGED: Final = "_PURGE_QUEUE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """The facts of one failed attempt of one event.

    Attributes:
        code: the librdkafka code name (``"_MSG_TIMED_OUT"``), or the refused error's code.
        failure: the class of the code from the classification table (the ``fatal()`` flag
            wins), or the category of a refused re-send's error.
        refused: librdkafka refused a re-send in ``produce()`` (no report came).
        current_producer: the attempt went to the producer in use (not a replaced one).
        expired: the core timed it out at its delivery deadline (``_core.deadlines``); if it
            was still in flight, the producer it went to was replaced for it.
        swept: purged from the queue because an older record passed its deadline: not its
            own failure.
        unsent: every failed report of the event so far came without a partition.
        maybe_written: an earlier attempt failed ambiguously.
        sent_before_connection_error: it was handed to librdkafka before the client's
            latest connection error (a purge at close may then have been sent).
        failures: failed attempts so far, this one included.
        first_failure: when the first attempt failed (epoch seconds).
        durable: the event is in the spool.
        acknowledged_after: the cluster acknowledged an event handed over after this one.
    """

    code: str
    failure: Failure
    refused: bool = False
    current_producer: bool = True
    expired: bool = False
    swept: bool = False
    unsent: bool = False
    maybe_written: bool = False
    sent_before_connection_error: bool = False
    failures: int = 1
    first_failure: float = 0.0
    durable: bool = False
    acknowledged_after: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Situation:
    """The publisher's state when the attempt's report is settled.

    Attributes:
        retry: the retry policy.
        closing: a close gave up and purges everything (nothing is retried or dead-lettered).
        reached: the cluster answered this publisher at least once.
        purged_unreached: queued events were purged because the cluster never answered.
        replacing: a producer replacement is already scheduled.
        breaker: the publisher has a circuit breaker.
        breaker_open: the breaker refuses events now.
        dead_letter: the publisher has a dead-letter policy.
        transactional: the event is in a Kafka transaction, which is the unit that fails:
            the event is failed at once (never re-sent, parked or dead-lettered) and the
            producer is never replaced (a new one would fence its own successor).
        now: the current time (epoch seconds).
        denied: the cluster refuses this client (a confirmed refusal is in force).
        producer_wrote: the producer in use had a write acknowledged.
    """

    retry: RetryPolicy
    closing: bool = False
    reached: bool = True
    purged_unreached: bool = False
    replacing: bool = False
    breaker: bool = True
    breaker_open: bool = False
    dead_letter: bool = False
    transactional: bool = False
    now: float = 0.0
    denied: bool = False
    producer_wrote: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """What a failed attempt becomes (see the module docstring)."""

    action: Action
    #: The class that decided (after a fatal error counts as ambiguous, and an event once
    #: ambiguous stays so).
    failure: Failure
    wording: Wording
    #: The class the error is reported with, when the code's own class says less.
    override: FailureClass | None = None
    #: Reword a retriable error as ambiguous: an earlier attempt may have been written.
    still_ambiguous: bool = False
    #: Why the producer must be replaced, or ``None``.
    replace: str | None = None
    counts_for_breaker: bool = False
    #: Seconds before the re-send (``retry`` and ``park`` only).
    delay: float | None = None
    #: A retry was due but the breaker is open: never re-sent into it (parked or failed).
    breaker_stopped: bool = False
    #: A swept record's re-send: the same attempt going on, with the same deadline (the
    #: purge took no time from it, nor gave it any; so a queue swept over and over can not
    #: keep an event waiting for ever), not counted as a failure.
    resumes: bool = False

    @property
    def maybe_written(self) -> bool:
        """Whether the event may be in Kafka from now on."""
        return self.failure == "ambiguous"


def decide(
    attempt: Attempt, situation: Situation, rand: Callable[[], float] | None = None
) -> Decision:
    """Decide what one failed attempt becomes. ``rand`` draws the retry jitter (the policy's
    default generator when ``None``)."""
    wording, override, failure, replace = _classified(attempt, situation)
    still = False
    if failure in ("retriable", "circuit_open") and attempt.maybe_written:
        # This attempt was not written, but an earlier one may have been: what the caller
        # learns is what can be true of the event, not of its last attempt.
        failure, still = "ambiguous", True
    counts = _counts_for_breaker(attempt, situation, failure)
    action: Action
    if situation.transactional:
        action, delay, stopped, replace = "fail", None, False, None
    else:
        action, delay, stopped = _next_step(attempt, situation, failure, rand)
    resumes = attempt.swept and failure == "retriable" and action == "retry"
    return Decision(
        action, failure, wording, override, still, replace, counts, delay, stopped, resumes
    )


def _classified(
    attempt: Attempt, situation: Situation
) -> tuple[Wording, FailureClass | None, Failure, str | None]:
    """``(wording, override, deciding class, replacement reason)``."""
    if attempt.refused:
        return "refused", None, attempt.failure, None
    code = attempt.code
    if (
        situation.purged_unreached
        and code == _PURGED
        and not situation.closing
        and not situation.reached
    ):
        # Refused like any event the breaker refuses: before retry and dead letter.
        if situation.denied:
            return "denied", None, "denied", None
        return "unreached", None, "circuit_open", None
    current = attempt.current_producer
    if (
        situation.denied
        and code == _PURGED
        and current
        and not situation.producer_wrote
        and not attempt.maybe_written
        and not situation.closing
    ):
        # librdkafka purged its queue when the cluster refused the producer (its id): one that
        # never had a write acknowledged sent nothing, and a new one is refused the same.
        return "denied", None, "denied", None
    if code == _TIMED_OUT and attempt.unsent:
        # Timed out before it had a partition: never sent (its topic does not exist and the
        # cluster does not create it, or it has no leader).
        return "no_partition", "retriable", "retriable", None
    override: FailureClass | None = None
    if code == _PURGED and attempt.swept:
        # The core's own purge (whichever producer is current by now): written only if
        # librdkafka had sent it and put it back in its queue after a connection error.
        override = "ambiguous" if attempt.sent_before_connection_error else None
        return "reported", override, override or attempt.failure, None
    if code == _PURGED and (not current or attempt.sent_before_connection_error):
        # librdkafka puts a message whose request failed (connection reset, request timed
        # out) back in its queue, so a purged message may have been written: assumed for every
        # purge of a replaced producer, and for a purge (at close, or at a delivery deadline)
        # of a message produced before the latest connection error. librdkafka does not tell
        # whether it was sent.
        override = "ambiguous"
    failure: Failure = override or attempt.failure
    replace = None
    if failure == "fatal":
        if current and not situation.replacing:
            replace = f"{code} on a delivery report"
        failure = "ambiguous"  # the event may have been written before the producer broke
    elif code == _TIMED_OUT and failure == "ambiguous" and current and not situation.replacing:
        # After a timeout the idempotent producer's sequence state is in doubt: Kafka bumps the
        # epoch, Tansu fences it, a broker that lost its state no longer knows the producer id
        # (it stalls). A fresh producer starts clean; the price is re-sending what it had in
        # flight (ambiguous: same ce_id, consumers de-duplicate).
        replace = "a message timed out (idempotence state in doubt)"
    return "reported", override, failure, replace


def _counts_for_breaker(attempt: Attempt, situation: Situation, failure: Failure) -> bool:
    """Whether the failure says the cluster is down. Not when:

    * the publisher has no breaker, or a close purges everything (its own doing);
    * the cluster has answered and the event never had a partition: its topic is missing,
      and other topics must not fail fast;
    * the code is fatal: the producer's state, not the cluster's (a deleted, re-created topic
      put its idempotence sequence out of sync; one per message of a batch opened the breaker
      for every topic);
    * the cluster took a write handed over after this event;
    * a replaced producer reported it, or the core swept it from the queue: those are purges
      of the core's own doing, and what led to them (a timeout) counted already; but an
      attempt the core timed out counts, whichever producer reports it (it *is* the timeout).
    """
    return (
        failure in ("retriable", "ambiguous")
        and situation.breaker
        and not situation.closing
        and not (situation.reached and attempt.unsent)
        and attempt.failure != "fatal"
        and not attempt.acknowledged_after
        and not attempt.swept
        and (attempt.current_producer or attempt.expired)
    )


def _next_step(
    attempt: Attempt, situation: Situation, failure: Failure, rand: Callable[[], float] | None
) -> tuple[Action, float | None, bool]:
    """``(action, delay, whether the open breaker stopped a retry)``."""
    if situation.closing:
        return "fail", None, False
    retry = situation.retry
    if attempt.swept and failure == "retriable":
        # Never sent, and purged only to keep an older event of its key ahead of it: re-sent
        # at once, behind that event, whatever the policy (its attempt was cut short).
        return _stopped(attempt) if situation.breaker_open else ("retry", 0.0, False)
    if retry.should_retry(failure):
        if situation.breaker_open:
            return _stopped(attempt)
        delay = retry.next_delay(
            failures=attempt.failures,
            first_failure=attempt.first_failure,
            now=situation.now,
            rand=rand or random.random,
        )
        if delay is not None:
            return "retry", delay, False
    if attempt.durable and failure != "permanent":
        # Like a retry: the event stays the head of its key's hold, so nothing later of that
        # key overtakes it while it waits in the spool.
        return "park", PARK_DELAY, False
    if situation.dead_letter and failure not in ("fatal", "circuit_open", "denied"):
        return "dead_letter", None, False
    return "fail", None, False


def _stopped(attempt: Attempt) -> tuple[Action, float | None, bool]:
    """A re-send due while the breaker is open. Never re-sent into it: the cluster is
    considered down, and a re-send would only wait out another delivery_timeout. A spooled
    event waits in the spool (drained when the breaker closes); the caller of any other gets
    the error now. Nor dead-lettered: the dead-letter topic is on the same cluster."""
    return ("park", PARK_DELAY, True) if attempt.durable else ("fail", None, True)
