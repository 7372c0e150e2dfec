"""Order per key while events are retried, and the replacement gate (``_core.ordering``).

No producer here: ``send`` is a list that records what would be produced. These tests import
nothing of librdkafka (see ``test_pure_modules``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from eventwire._core.ordering import QUEUE_FULL_RETRY, KeyHold, KeyOrdering


@dataclass
class _Encoded:
    key: bytes | None


@dataclass(eq=False)
class _Record:
    """What ordering reads of a record: its key and its acceptance order."""

    key: bytes | None
    order: int
    encoded: _Encoded = field(init=False)

    def __post_init__(self) -> None:
        self.encoded = _Encoded(self.key)


class _Sender:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.full = False

    def __call__(self, record: _Record) -> None:
        if self.full:
            raise BufferError
        self.sent.append(record.order)


def _orders(hold: KeyHold) -> list[int]:
    return [p.order for p in hold.failed]


@pytest.mark.parametrize("reported", list(itertools.permutations([1, 2, 3, 4])))
def test_failed_events_are_kept_in_acceptance_order(reported: tuple[int, ...]) -> None:
    hold = KeyHold()
    for order in reported:
        hold.insert_failed(_Record(b"k", order))  # type: ignore[arg-type]
    assert _orders(hold) == [1, 2, 3, 4]


def test_a_head_already_re_sent_keeps_its_place() -> None:
    hold = KeyHold()
    hold.insert_failed(_Record(b"k", 5))  # type: ignore[arg-type]
    hold.head_in_flight = True  # 5 is being re-sent: an older failure cannot go before it
    for order in (7, 3, 6):
        hold.insert_failed(_Record(b"k", order))  # type: ignore[arg-type]
    assert _orders(hold) == [5, 3, 6, 7]


def test_later_events_of_a_key_wait_behind_its_retry_and_follow_in_order() -> None:
    ordering = KeyOrdering()
    send = _Sender()
    first = _Record(b"a", 1)
    ordering.failed(first, 1.0, now=10.0)  # type: ignore[arg-type]
    later = [_Record(b"a", n) for n in (2, 3)]
    other = _Record(b"b", 4)
    assert all(ordering.hold_if_retrying(r) for r in later)  # type: ignore[arg-type]
    assert not ordering.hold_if_retrying(other)  # type: ignore[arg-type]  # another key goes on
    ordering.send_due(10.5, send)  # type: ignore[arg-type]
    assert send.sent == []  # not due yet
    ordering.send_due(11.0, send)  # type: ignore[arg-type]
    assert send.sent == [1]  # the head alone, until it is acknowledged
    ordering.succeeded(first)  # type: ignore[arg-type]
    ordering.send_due(11.0, send)  # type: ignore[arg-type]
    assert send.sent == [1, 2, 3]
    assert not ordering.holds


def test_a_head_that_found_the_queue_full_is_tried_again_soon() -> None:
    ordering = KeyOrdering()
    send = _Sender()
    ordering.failed(_Record(b"a", 1), 0.0, now=5.0)  # type: ignore[arg-type]
    send.full = True
    ordering.send_due(5.0, send)  # type: ignore[arg-type]
    assert ordering.next_due() == 5.0 + QUEUE_FULL_RETRY
    send.full = False
    ordering.send_due(5.0 + QUEUE_FULL_RETRY, send)  # type: ignore[arg-type]
    assert send.sent == [1]


def test_a_release_that_fills_the_queue_goes_on_where_it_stopped() -> None:
    ordering = KeyOrdering()
    head = _Record(b"a", 1)
    ordering.failed(head, 0.0, now=0.0)  # type: ignore[arg-type]
    for n in (2, 3, 4):
        ordering.hold_if_retrying(_Record(b"a", n))  # type: ignore[arg-type]
    send = _Sender()
    ordering.send_due(0.0, send)  # type: ignore[arg-type]
    ordering.succeeded(head)  # type: ignore[arg-type]

    def fills_after_one(record: _Record) -> None:
        if len(send.sent) >= 2:
            raise BufferError
        send(record)

    ordering.send_due(0.0, fills_after_one)  # type: ignore[arg-type]
    assert send.sent == [1, 2]
    ordering.send_due(0.0, send)  # type: ignore[arg-type]
    assert send.sent == [1, 2, 3, 4]


def test_a_head_given_up_lets_the_rest_of_its_key_go() -> None:
    ordering = KeyOrdering()
    head = _Record(b"a", 1)
    ordering.failed(head, 0.0, now=0.0)  # type: ignore[arg-type]
    ordering.hold_if_retrying(_Record(b"a", 2))  # type: ignore[arg-type]
    send = _Sender()
    ordering.send_due(0.0, send)  # type: ignore[arg-type]
    ordering.failed(head, None, now=1.0)  # type: ignore[arg-type]  # its retries ran out
    ordering.send_due(1.0, send)  # type: ignore[arg-type]
    assert send.sent == [1, 2]


def test_events_behind_the_gate_join_their_keys_in_order() -> None:
    ordering = KeyOrdering()
    ordering.close_gate()
    gated = [_Record(b"a", 5), _Record(b"b", 6), _Record(b"a", 7)]
    assert all(ordering.hold_at_gate(r) for r in gated)  # type: ignore[arg-type]
    purged = _Record(b"a", 1)  # an older event of key a, purged by the replacement
    ordering.failed(purged, 0.5, now=0.0)  # type: ignore[arg-type]
    ordering.open_gate()
    assert not ordering.hold_at_gate(_Record(b"c", 8))  # type: ignore[arg-type]
    send = _Sender()
    ordering.send_due(0.0, send)  # type: ignore[arg-type]
    assert send.sent == [6]  # key b was free; key a waits behind its purged event
    ordering.send_due(0.5, send)  # type: ignore[arg-type]
    ordering.succeeded(purged)  # type: ignore[arg-type]
    ordering.send_due(0.5, send)  # type: ignore[arg-type]
    assert send.sent == [6, 1, 5, 7]


def test_abandon_returns_every_waiting_event_but_a_head_in_flight() -> None:
    ordering = KeyOrdering()
    head = _Record(b"a", 1)
    ordering.failed(head, 0.0, now=0.0)  # type: ignore[arg-type]
    ordering.hold_if_retrying(_Record(b"a", 2))  # type: ignore[arg-type]
    ordering.send_due(0.0, _Sender())  # type: ignore[arg-type]  # the head is in flight
    ordering.close_gate()
    ordering.hold_at_gate(_Record(b"b", 3))  # type: ignore[arg-type]
    waiting = ordering.abandon()
    assert sorted(r.order for r in waiting) == [2, 3]
    assert not ordering.holds
    assert not ordering.has_work()


def test_events_without_a_key_are_lanes_of_their_own() -> None:
    ordering = KeyOrdering()
    first, second = _Record(None, 1), _Record(None, 2)
    ordering.failed(first, 1.0, now=0.0)  # type: ignore[arg-type]
    assert not ordering.hold_if_retrying(second)  # type: ignore[arg-type]
    ordering.failed(second, 1.0, now=0.0)  # type: ignore[arg-type]
    send = _Sender()
    ordering.send_due(1.0, send)  # type: ignore[arg-type]
    assert sorted(send.sent) == [1, 2]
