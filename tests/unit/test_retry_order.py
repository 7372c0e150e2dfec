"""Failed events of a key are re-sent in the order they were accepted, whatever order their
failures are reported in (after a producer replacement, purge reports of a partition can come
back newer first)."""

from __future__ import annotations

import itertools

import pytest

from eventwire._producer import Pending, _insert_failed, _KeyHold


def _pending(order: int) -> Pending:
    pending = Pending()
    pending.order = order
    return pending


def _orders(hold: _KeyHold) -> list[int]:
    return [p.order for p in hold.failed]


@pytest.mark.parametrize("reported", list(itertools.permutations([1, 2, 3, 4])))
def test_failed_events_are_kept_in_acceptance_order(reported: tuple[int, ...]) -> None:
    hold = _KeyHold()
    for order in reported:
        _insert_failed(hold, _pending(order))
    assert _orders(hold) == [1, 2, 3, 4]


def test_a_head_already_re_sent_keeps_its_place() -> None:
    hold = _KeyHold()
    _insert_failed(hold, _pending(5))
    hold.head_in_flight = True  # 5 is being re-sent: an older failure cannot go before it
    _insert_failed(hold, _pending(7))
    _insert_failed(hold, _pending(3))
    _insert_failed(hold, _pending(6))
    assert _orders(hold) == [5, 3, 6, 7]
