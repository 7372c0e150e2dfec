"""RetryPolicy and CircuitBreaker: pure logic, injected clock and randomness."""

from __future__ import annotations

import re
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventwire
from eventwire._core.breaker import CircuitBreaker

# -- RetryPolicy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attempts": 0}, "attempts must be >= 1"),
        ({"attempts": -3}, "attempts must be >= 1"),
        ({"attempts": True}, "attempts must be an int"),
        ({"deadline": 0}, "deadline must be a finite number > 0"),
        ({"deadline": float("inf")}, "deadline must be a finite number > 0"),
        ({"base": float("nan")}, "base must be a finite number > 0"),
        ({"base": 2.0, "cap": 1.0}, "cap (1.0) must be >= base (2.0)"),
        ({"jitter": 1.5}, "jitter must be in [0, 1]"),
        ({"jitter": -0.1}, "jitter must be in [0, 1]"),
    ],
)
def test_retry_policy_refuses(changes: dict[str, object], message: str) -> None:
    with pytest.raises(eventwire.ConfigError, match=re.escape(message)):
        eventwire.RetryPolicy(**changes)  # type: ignore[arg-type]


def test_retry_policy_is_frozen_and_keyword_only() -> None:
    policy = eventwire.RetryPolicy()
    with pytest.raises(AttributeError):
        policy.attempts = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        eventwire.RetryPolicy(3)  # type: ignore[misc]


def test_one_attempt_never_retries() -> None:
    policy = eventwire.RetryPolicy.never()
    assert policy.next_delay(failures=1, first_failure=0.0, now=0.0) is None


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = eventwire.RetryPolicy(base=0.1, cap=1.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert policy.backoff(10_000) == 1.0  # no overflow


def test_jitter_bounds() -> None:
    policy = eventwire.RetryPolicy(base=1.0, cap=8.0, jitter=0.25)
    assert policy.backoff(3, rand=lambda: 0.0) == 4.0  # upper bound: the full backoff
    assert policy.backoff(3, rand=lambda: 0.999999) == pytest.approx(3.0, rel=1e-5)


@given(
    failures=st.integers(1, 200),
    jitter=st.floats(0, 1),
    r=st.floats(0, 1, exclude_max=True),
)
def test_jittered_delay_stays_in_bounds(failures: int, jitter: float, r: float) -> None:
    policy = eventwire.RetryPolicy(base=0.05, cap=5.0, jitter=jitter)
    full = min(5.0, 0.05 * 2.0 ** (failures - 1))
    delay = policy.backoff(failures, rand=lambda: r)
    assert full * (1 - jitter) - 1e-12 <= delay <= full <= 5.0


def test_attempts_bound_the_retries() -> None:
    policy = eventwire.RetryPolicy(attempts=3, base=0.1, jitter=0.0)
    assert policy.next_delay(failures=1, first_failure=0.0, now=0.0) == pytest.approx(0.1)
    assert policy.next_delay(failures=2, first_failure=0.0, now=0.1) == pytest.approx(0.2)
    assert policy.next_delay(failures=3, first_failure=0.0, now=0.3) is None


def test_deadline_shorter_than_one_backoff_means_no_retry() -> None:
    policy = eventwire.RetryPolicy(deadline=0.5, base=1.0, cap=1.0, jitter=0.0)
    assert policy.next_delay(failures=1, first_failure=0.0, now=0.0) is None


def test_deadline_boundary_is_inclusive() -> None:
    policy = eventwire.RetryPolicy(deadline=1.0, base=0.5, cap=0.5, jitter=0.0)
    assert policy.next_delay(failures=1, first_failure=0.0, now=0.5) == 0.5  # ends at 1.0
    assert policy.next_delay(failures=2, first_failure=0.0, now=0.5001) is None


@pytest.mark.parametrize(
    ("failure", "ambiguous", "expected"),
    [
        ("retriable", True, True),
        ("retriable", False, True),
        ("ambiguous", True, True),
        ("ambiguous", False, False),
        ("permanent", True, False),
        ("fatal", True, False),
        ("circuit_open", True, False),
    ],
)
def test_what_is_retried(failure: str, ambiguous: bool, expected: bool) -> None:
    policy = eventwire.RetryPolicy(retry_ambiguous=ambiguous)
    assert policy.should_retry(failure) is expected


# -- CircuitBreaker -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, changes: list[tuple[str, str, str]] | None = None) -> CircuitBreaker:
    policy = eventwire.BreakerPolicy(failures=3, window=10.0, cooldown=5.0)
    sink = changes if changes is not None else []
    return CircuitBreaker(policy, clock=clock, on_change=lambda *c: sink.append(c))


def test_breaker_policy_refuses_bad_values() -> None:
    with pytest.raises(eventwire.ConfigError, match="failures must be an int >= 1"):
        eventwire.BreakerPolicy(failures=0)
    with pytest.raises(eventwire.ConfigError, match="cooldown must be a finite number > 0"):
        eventwire.BreakerPolicy(cooldown=-1)


def test_opens_at_the_threshold_within_the_window(clock: Clock) -> None:
    changes: list[tuple[str, str, str]] = []
    b = breaker(clock, changes)
    b.record_failure()
    b.record_failure()
    assert b.state == "closed"
    assert b.allows()
    b.record_failure()
    assert b.state == "closed"  # suspected: a probe decides
    assert b.confirmation_due()
    b.confirm(reachable=False)
    assert b.state == "open"
    assert not b.allows()
    reason = "3 delivery failures in 10 s (confirmed by a failed probe)"
    assert changes == [("closed", "open", reason)]
    assert b.last_reason == reason
    assert b.opened_at == 100.0


def test_failures_with_a_good_probe_keep_it_closed_and_start_the_count_over(
    clock: Clock,
) -> None:
    """A broker restarted without its producer state: every event in flight times out, yet
    the cluster answers and takes the re-sent ones."""
    changes: list[tuple[str, str, str]] = []
    b = breaker(clock, changes)
    for _ in range(3):
        b.record_failure()
    assert b.confirmation_due()
    b.confirm(reachable=True)
    assert not b.confirmation_due()
    b.record_failure()
    b.record_failure()
    assert not b.confirmation_due()  # counting started over
    assert b.state == "closed"
    assert changes == []


def test_failures_outside_the_window_do_not_count(clock: Clock) -> None:
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    clock.now += 10.0
    b.record_failure()
    assert b.state == "closed"


def test_success_clears_the_count(clock: Clock) -> None:
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state == "closed"


def unreachable_confirmed(b: CircuitBreaker, reason: str = "down") -> None:
    b.record_unreachable(reason)
    assert b.confirmation_due()
    b.confirm(reachable=False)


def test_unreachable_opens_only_when_a_probe_confirms_it(clock: Clock) -> None:
    changes: list[tuple[str, str, str]] = []
    b = breaker(clock, changes)
    b.record_unreachable("_ALL_BROKERS_DOWN")
    assert b.state == "closed"  # not confirmed yet: publishing goes on
    assert b.allows()
    assert b.confirmation_due()
    clock.now += 1.0
    b.confirm(reachable=False)
    assert b.state == "open"
    assert b.opened_at == 101.0
    assert not b.confirmation_due()
    b.record_unreachable("_ALL_BROKERS_DOWN")  # already open: nothing to confirm
    assert not b.confirmation_due()
    assert changes == [("closed", "open", "_ALL_BROKERS_DOWN (confirmed by a failed probe)")]


def test_unreachable_with_a_good_probe_changes_nothing(clock: Clock) -> None:
    """One connection reset with a single broker: reported, reconnected, probe ok."""
    changes: list[tuple[str, str, str]] = []
    b = breaker(clock, changes)
    for _ in range(3):
        b.record_unreachable("_ALL_BROKERS_DOWN")
        assert b.confirmation_due()
        b.confirm(reachable=True)
        assert not b.confirmation_due()
    assert b.state == "closed"
    assert changes == []
    b.confirm(reachable=False)  # a stray result without a report
    assert b.state == "closed"


def test_failures_while_a_confirmation_is_pending_need_one_probe(clock: Clock) -> None:
    changes: list[tuple[str, str, str]] = []
    b = breaker(clock, changes)
    b.record_unreachable("_ALL_BROKERS_DOWN")
    for _ in range(3):
        b.record_failure()
    assert b.state == "closed"
    assert b.confirmation_due()  # one probe for both
    b.confirm(reachable=False)
    assert b.state == "open"
    assert not b.confirmation_due()
    assert changes == [
        ("closed", "open", "3 delivery failures in 10 s (confirmed by a failed probe)")
    ]


def test_probe_only_after_cooldown_and_only_once(clock: Clock) -> None:
    b = breaker(clock)
    unreachable_confirmed(b)
    clock.now += 4.9
    assert not b.probe_due()
    clock.now += 0.1
    assert b.probe_due()
    assert b.state == "half_open"
    assert not b.allows()
    assert not b.probe_due()


def test_probe_ok_closes_and_failed_probe_restarts_cooldown(clock: Clock) -> None:
    changes: list[tuple[str, str, str]] = []
    b = breaker(clock, changes)
    unreachable_confirmed(b)
    clock.now += 5
    assert b.probe_due()
    b.probe_result(ok=False)
    assert b.state == "open"
    assert b.opened_at == clock.now
    clock.now += 4
    assert not b.probe_due()
    clock.now += 1
    assert b.probe_due()
    b.probe_result(ok=True)
    assert b.state == "closed"
    assert [c[1] for c in changes] == ["open", "half_open", "open", "half_open", "closed"]


def test_a_failing_listener_does_not_break_the_breaker(clock: Clock) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("listener bug")

    b = CircuitBreaker(eventwire.BreakerPolicy(failures=1), clock=clock, on_change=explode)
    b.record_failure()
    b.confirm(reachable=False)
    assert b.state == "open"


def test_threads_keep_a_valid_state() -> None:
    b = CircuitBreaker(eventwire.BreakerPolicy(failures=50, window=60))

    def hammer(n: int) -> None:
        for i in range(2000):
            if (i + n) % 7:
                b.record_failure()
            else:
                b.record_success()

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert b.state in ("closed", "open")
