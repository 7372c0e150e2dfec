"""The limit on repeated log lines (librdkafka errors and log lines), with an injected clock."""

from __future__ import annotations

from eventwire._core.client_log import RepeatLimit


def test_first_line_of_each_kind_then_one_per_interval_with_the_count_left_out() -> None:
    now = [100.0]
    limit = RepeatLimit(interval=10.0, clock=lambda: now[0])
    assert limit.admit("a") == 0
    assert limit.admit("b") == 0  # another kind is not held back by "a"
    for _ in range(5):
        now[0] += 1.0
        assert limit.admit("a") is None
    now[0] = 109.999
    assert limit.admit("a") is None
    now[0] = 110.0
    assert limit.admit("a") == 6  # the six left out since the last line
    assert limit.admit("a") is None
    now[0] = 125.0
    assert limit.admit("a") == 1
    assert limit.admit("b") == 0
