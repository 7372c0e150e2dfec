"""What a failed attempt becomes, decided from data alone (``eventwire._core.decisions``).

These tests import nothing of librdkafka: ``test_pure_modules`` runs them with confluent-kafka
made unimportable.
"""

from __future__ import annotations

import dataclasses

import pytest

from eventwire._core.decisions import PARK_DELAY, Attempt, Situation, decide
from eventwire._options import RetryPolicy

RETRY = RetryPolicy(attempts=3, deadline=60.0, base=1.0, cap=1.0, jitter=0.0)
NO_RETRY = RetryPolicy.never()


def _situation(**changes: object) -> Situation:
    fields: dict[str, object] = {"retry": RETRY, "now": 100.0}
    fields.update(changes)
    return Situation(**fields)  # type: ignore[arg-type]


def _attempt(**changes: object) -> Attempt:
    fields: dict[str, object] = {
        "code": "NETWORK_EXCEPTION",
        "failure": "retriable",
        "first_failure": 100.0,
    }
    fields.update(changes)
    return Attempt(**fields)  # type: ignore[arg-type]


# -- the action -------------------------------------------------------------------------------


def test_a_retriable_failure_is_retried_after_the_backoff() -> None:
    decision = decide(_attempt(), _situation())
    assert (decision.action, decision.delay, decision.failure) == ("retry", 1.0, "retriable")


def test_retries_stop_at_the_attempts() -> None:
    decision = decide(_attempt(failures=3), _situation())
    assert (decision.action, decision.delay) == ("fail", None)


def test_retries_stop_at_the_deadline() -> None:
    decision = decide(_attempt(failures=1, first_failure=40.0), _situation(now=99.5))
    assert decision.action == "fail"


def test_an_ambiguous_failure_is_retried_only_if_the_policy_says_so() -> None:
    timed_out = _attempt(code="REQUEST_TIMED_OUT", failure="ambiguous")
    assert decide(timed_out, _situation()).action == "retry"
    strict = RetryPolicy(attempts=3, retry_ambiguous=False)
    assert decide(timed_out, _situation(retry=strict)).action == "fail"


def test_a_permanent_failure_is_dead_lettered_when_there_is_a_policy() -> None:
    too_large = _attempt(code="MSG_SIZE_TOO_LARGE", failure="permanent")
    assert decide(too_large, _situation()).action == "fail"
    assert decide(too_large, _situation(dead_letter=True)).action == "dead_letter"


def test_exhausted_retries_are_dead_lettered_when_there_is_a_policy() -> None:
    decision = decide(_attempt(failures=3), _situation(dead_letter=True))
    assert decision.action == "dead_letter"


def test_a_durable_event_is_parked_not_failed_when_retries_run_out() -> None:
    decision = decide(_attempt(failures=3, durable=True), _situation(dead_letter=True))
    assert (decision.action, decision.delay) == ("park", PARK_DELAY)


def test_a_durable_event_that_can_never_be_delivered_is_not_parked() -> None:
    too_large = _attempt(code="MSG_SIZE_TOO_LARGE", failure="permanent", durable=True)
    assert decide(too_large, _situation()).action == "fail"


def test_nothing_is_retried_parked_or_dead_lettered_while_a_close_gives_up() -> None:
    for attempt in (_attempt(), _attempt(durable=True), _attempt(failure="permanent")):
        decision = decide(attempt, _situation(closing=True, dead_letter=True))
        assert decision.action == "fail"


# -- never into an open breaker ---------------------------------------------------------------


def test_a_retry_is_never_sent_into_an_open_breaker() -> None:
    decision = decide(_attempt(), _situation(breaker_open=True, dead_letter=True))
    assert (decision.action, decision.breaker_stopped) == ("fail", True)


def test_a_durable_event_waits_in_the_spool_while_the_breaker_is_open() -> None:
    decision = decide(_attempt(durable=True), _situation(breaker_open=True))
    assert (decision.action, decision.delay, decision.breaker_stopped) == (
        "park",
        PARK_DELAY,
        True,
    )


def test_a_permanent_failure_is_still_dead_lettered_while_the_breaker_is_open() -> None:
    permanent = _attempt(code="TOPIC_AUTHORIZATION_FAILED", failure="permanent")
    decision = decide(permanent, _situation(breaker_open=True, dead_letter=True))
    assert (decision.action, decision.breaker_stopped) == ("dead_letter", False)


def test_a_re_send_refused_by_the_open_breaker_is_failed_not_retried() -> None:
    refused = _attempt(code="circuit_open", failure="circuit_open", refused=True)
    decision = decide(refused, _situation(breaker_open=True, dead_letter=True))
    assert (decision.action, decision.wording) == ("fail", "refused")


def test_a_refused_re_send_of_an_event_that_may_be_written_stays_ambiguous() -> None:
    refused = _attempt(failure="circuit_open", refused=True, maybe_written=True)
    decision = decide(refused, _situation(breaker_open=True))
    assert (decision.failure, decision.still_ambiguous) == ("ambiguous", True)


# -- the class, and what the caller is told ---------------------------------------------------


def test_ambiguous_is_sticky_a_later_retriable_attempt_is_reported_ambiguous() -> None:
    decision = decide(_attempt(maybe_written=True, failures=3), _situation())
    assert (decision.failure, decision.still_ambiguous, decision.action) == (
        "ambiguous",
        True,
        "fail",
    )


def test_an_ambiguous_attempt_marks_the_event_maybe_written() -> None:
    assert decide(_attempt(code="_MSG_TIMED_OUT", failure="ambiguous"), _situation()).maybe_written
    assert not decide(_attempt(), _situation()).maybe_written


@pytest.mark.parametrize(
    ("current", "closing", "sent_before_error", "override"),
    [
        (False, False, False, "ambiguous"),  # purged from a replaced producer: may be written
        (True, False, False, None),  # purged from the current one: never sent
        (True, False, True, "ambiguous"),  # purged at a deadline after a connection error
        (True, True, True, "ambiguous"),  # purged at close after a connection error
        (True, True, False, None),  # purged at close, no connection error since it was sent
    ],
)
def test_a_purge_is_ambiguous_when_it_may_have_been_written(
    current: bool, closing: bool, sent_before_error: bool, override: str | None
) -> None:
    purged = _attempt(
        code="_PURGE_QUEUE",
        current_producer=current,
        sent_before_connection_error=sent_before_error,
    )
    decision = decide(purged, _situation(closing=closing))
    assert decision.override == override
    assert decision.failure == (override or "retriable")


def test_a_timeout_without_a_partition_was_never_sent() -> None:
    decision = decide(
        _attempt(code="_MSG_TIMED_OUT", failure="ambiguous", unsent=True), _situation()
    )
    assert (decision.wording, decision.failure, decision.replace) == (
        "no_partition",
        "retriable",
        None,
    )
    assert not decision.maybe_written


def test_a_purge_of_a_cluster_never_reached_is_refused_like_an_open_breaker() -> None:
    purged = _attempt(code="_PURGE_QUEUE")
    decision = decide(purged, _situation(reached=False, purged_unreached=True, dead_letter=True))
    assert (decision.wording, decision.failure, decision.action) == (
        "unreached",
        "circuit_open",
        "fail",
    )


# -- replacing the producer --------------------------------------------------------------------


def test_a_fatal_error_replaces_the_producer_and_counts_as_ambiguous() -> None:
    decision = decide(_attempt(code="_FATAL", failure="fatal"), _situation())
    assert decision.replace == "_FATAL on a delivery report"
    assert (decision.failure, decision.action) == ("ambiguous", "retry")


def test_a_message_timeout_replaces_the_producer() -> None:
    decision = decide(_attempt(code="_MSG_TIMED_OUT", failure="ambiguous"), _situation())
    assert decision.replace == "a message timed out (idempotence state in doubt)"


@pytest.mark.parametrize(
    ("attempt", "situation"),
    [
        (_attempt(code="_FATAL", failure="fatal"), _situation(replacing=True)),
        (_attempt(code="_FATAL", failure="fatal", current_producer=False), _situation()),
        (
            _attempt(code="_MSG_TIMED_OUT", failure="ambiguous", current_producer=False),
            _situation(),
        ),
    ],
)
def test_no_second_replacement(attempt: Attempt, situation: Situation) -> None:
    assert decide(attempt, situation).replace is None


# -- inside a Kafka transaction ----------------------------------------------------------------


@pytest.mark.parametrize(
    "attempt",
    [
        _attempt(),  # retriable: retried outside a transaction
        _attempt(code="REQUEST_TIMED_OUT", failure="ambiguous"),
        _attempt(code="MSG_SIZE_TOO_LARGE", failure="permanent"),  # dead-lettered outside
        _attempt(code="INVALID_PRODUCER_EPOCH", failure="fatal"),  # replaced outside
        _attempt(code="_MSG_TIMED_OUT", failure="ambiguous"),  # replaced outside
    ],
    ids=["retriable", "ambiguous", "permanent", "fenced", "timed_out"],
)
def test_in_a_transaction_a_failure_fails_the_event_and_never_replaces(attempt: Attempt) -> None:
    outside = decide(attempt, _situation(dead_letter=True))
    assert (outside.action, outside.replace) != ("fail", None)
    decision = decide(attempt, _situation(dead_letter=True, transactional=True))
    assert (decision.action, decision.delay, decision.replace) == ("fail", None, None)
    assert decision.failure == outside.failure  # worded as it would be outside


# -- the breaker -------------------------------------------------------------------------------


def test_a_retriable_failure_counts_for_the_breaker() -> None:
    assert decide(_attempt(), _situation()).counts_for_breaker


def test_a_timeout_of_the_cores_deadline_counts_whichever_producer_reports_it() -> None:
    # Still in flight at its deadline: the core replaced the producer for it, so the report
    # comes from a replaced producer; it is the timeout all the same, and needs no second
    # replacement.
    timed_out = _attempt(
        code="_MSG_TIMED_OUT", failure="ambiguous", current_producer=False, expired=True
    )
    decision = decide(timed_out, _situation())
    assert decision.counts_for_breaker
    assert decision.replace is None
    assert decision.failure == "ambiguous"


# -- purged from the queue with an expired record (swept) ---------------------------------------

SWEPT = _attempt(code="_PURGE_QUEUE", failure="retriable", swept=True)


@pytest.mark.parametrize("current_producer", [True, False])
def test_a_swept_record_is_re_sent_at_once_whatever_the_policy(current_producer: bool) -> None:
    # The core purged it only to keep an older, expired event of its key ahead of it; it may
    # be settled after the producer was replaced for that event (not current): never sent.
    swept = _attempt(
        code="_PURGE_QUEUE", failure="retriable", swept=True, current_producer=current_producer
    )
    decision = decide(swept, _situation(retry=NO_RETRY))
    assert (decision.action, decision.delay, decision.failure) == ("retry", 0.0, "retriable")
    assert (decision.wording, decision.override, decision.replace) == ("reported", None, None)
    assert decision.resumes
    assert not decision.counts_for_breaker


def test_a_swept_record_is_never_re_sent_into_an_open_breaker() -> None:
    failed = decide(SWEPT, _situation(breaker_open=True))
    assert (failed.action, failed.breaker_stopped, failed.resumes) == ("fail", True, False)
    parked = decide(dataclasses.replace(SWEPT, durable=True), _situation(breaker_open=True))
    assert (parked.action, parked.delay) == ("park", PARK_DELAY)


def test_a_swept_record_fails_at_close() -> None:
    assert decide(SWEPT, _situation(closing=True)).action == "fail"


def test_a_swept_record_librdkafka_had_sent_follows_the_policy_for_ambiguous() -> None:
    # librdkafka puts a message whose request failed back in its queue: it may be written,
    # and a policy that never re-sends what may be written says so.
    sent = _attempt(
        code="_PURGE_QUEUE", failure="retriable", swept=True, sent_before_connection_error=True
    )
    decision = decide(sent, _situation(retry=NO_RETRY))
    assert (decision.action, decision.failure, decision.override) == (
        "fail",
        "ambiguous",
        "ambiguous",
    )
    retried = decide(sent, _situation())
    assert (retried.action, retried.delay, retried.resumes) == ("retry", 1.0, False)


@pytest.mark.parametrize(
    ("attempt", "situation", "why"),
    [
        (_attempt(), _situation(breaker=False), "no breaker"),
        (_attempt(), _situation(closing=True), "a close purges: its own doing"),
        (_attempt(unsent=True), _situation(), "its topic is missing, the cluster is up"),
        (_attempt(code="_FATAL", failure="fatal"), _situation(), "the producer's state"),
        (_attempt(acknowledged_after=True), _situation(), "a later write was taken"),
        (_attempt(current_producer=False), _situation(), "a replaced producer's purge"),
        (_attempt(failure="permanent"), _situation(), "not a sign of an unreachable cluster"),
    ],
)
def test_what_does_not_count_for_the_breaker(
    attempt: Attempt, situation: Situation, why: str
) -> None:
    assert not decide(attempt, situation).counts_for_breaker, why


def test_jitter_comes_from_the_given_source() -> None:
    policy = RetryPolicy(attempts=3, base=1.0, cap=1.0, jitter=0.5)
    decision = decide(_attempt(), _situation(retry=policy), rand=lambda: 1.0)
    assert decision.delay == 0.5
    assert decide(_attempt(), _situation(retry=NO_RETRY)).action == "fail"


# -- a cluster that refuses this client ---------------------------------------------------------


def test_a_purge_of_a_cluster_that_refuses_this_client_is_denied_not_retried() -> None:
    purged = _attempt(code="_PURGE_QUEUE", failure="retriable")
    situation = _situation(purged_unreached=True, reached=False, denied=True, dead_letter=True)
    decision = decide(purged, situation)
    assert (decision.action, decision.failure, decision.wording) == ("fail", "denied", "denied")
    assert not decision.counts_for_breaker


def test_a_producer_refused_its_id_fails_its_purged_events_as_denied() -> None:
    # CLUSTER_AUTHORIZATION_FAILED: librdkafka purges the queue of a producer that never
    # wrote; the cluster answered (reached), so this is not the unreached purge.
    purged = _attempt(code="_PURGE_QUEUE", failure="retriable", sent_before_connection_error=True)
    decision = decide(purged, _situation(denied=True, dead_letter=True))
    assert (decision.action, decision.wording, decision.replace) == ("fail", "denied", None)


def test_a_producer_that_wrote_before_the_refusal_may_have_sent_its_purged_events() -> None:
    purged = _attempt(code="_PURGE_QUEUE", failure="retriable", current_producer=False)
    decision = decide(purged, _situation(denied=True, producer_wrote=True))
    assert decision.wording == "reported"
    assert decision.failure == "ambiguous"


def test_a_durable_event_denied_waits_in_the_spool() -> None:
    purged = _attempt(code="_PURGE_QUEUE", failure="retriable", durable=True)
    decision = decide(purged, _situation(purged_unreached=True, reached=False, denied=True))
    assert (decision.action, decision.delay) == ("park", PARK_DELAY)


def test_a_re_send_refused_as_denied_is_neither_retried_nor_dead_lettered() -> None:
    refused = _attempt(code="CLUSTER_AUTHORIZATION_FAILED", failure="denied", refused=True)
    decision = decide(refused, _situation(denied=True, dead_letter=True))
    assert (decision.action, decision.wording) == ("fail", "refused")
