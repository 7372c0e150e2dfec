"""The core's delivery deadlines (``eventwire._core.deadlines``): which records expire, which
were swept from the queue alongside them, and the deadline a swept record resumes with."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError

from eventwire._core.deadlines import Deadlines, mark_swept
from eventwire._core.record import InFlight

TIMEOUT = 5.0


def _record() -> InFlight:
    return InFlight(encoded=None, sink=None)  # type: ignore[arg-type]


def _hand_over(deadlines: Deadlines, record: InFlight) -> None:
    deadlines.append((deadlines.arm(record), record))


def _report(record: InFlight, err: Any) -> None:
    record.err = err
    record.pending = False


def test_only_the_records_purged_from_the_queue_with_an_expired_one_are_swept() -> None:
    expired, queued, in_flight, delivered = _record(), _record(), _record(), _record()
    expired.expired = True
    _report(expired, KafkaError(KafkaError._PURGE_QUEUE))
    _report(queued, KafkaError(KafkaError._PURGE_QUEUE))
    _report(in_flight, KafkaError(KafkaError._PURGE_INFLIGHT))
    _report(delivered, None)
    mark_swept([expired, queued, in_flight, delivered])
    assert [r.swept for r in (expired, queued, in_flight, delivered)] == [
        False,
        True,
        False,
        False,
    ]


def test_a_swept_record_resumes_with_its_deadline_and_a_re_send_gets_a_new_one() -> None:
    deadlines = Deadlines(TIMEOUT)
    record = _record()
    first = deadlines.arm(record)
    record.swept = True  # settled as resuming
    assert deadlines.arm(record) == first
    record.swept = False  # its next report settled: a retry is a new attempt
    assert deadlines.arm(record) > first


def test_a_resumed_record_behind_newer_ones_expires_once_at_their_deadline() -> None:
    deadlines = Deadlines(TIMEOUT)
    older, swept = _record(), _record()
    _hand_over(deadlines, older)
    _hand_over(deadlines, swept)
    start = swept.deadline
    assert start > older.deadline
    # The older one expires; the swept one is purged alongside it and resumes after a newer
    # record was handed over: its entry comes after the newer one's later deadline.
    assert deadlines.expired(0, now=older.deadline) == [older]
    _report(swept, KafkaError(KafkaError._PURGE_QUEUE))
    mark_swept([swept])
    newer = _record()
    _hand_over(deadlines, newer)
    _hand_over(deadlines, swept)
    assert swept.deadline == start
    assert deadlines.expired(0, now=start) == [swept]  # its first entry, still in place
    assert deadlines.expired(0, now=newer.deadline) == [newer]  # its second entry is stale
    assert not deadlines.entries


def test_a_resumed_record_whose_first_entry_went_is_found_behind_the_newer_ones() -> None:
    # Its first entry reached the front while it was reported and not yet re-sent (stale):
    # only the entry of its resumed attempt is left, after a newer record's.
    deadlines = Deadlines(TIMEOUT)
    older, swept = _record(), _record()
    _hand_over(deadlines, older)
    _hand_over(deadlines, swept)
    assert deadlines.expired(0, now=older.deadline) == [older]
    _report(swept, KafkaError(KafkaError._PURGE_QUEUE))
    mark_swept([swept])
    assert deadlines.expired(0, now=older.deadline) == []  # drops its stale first entry
    newer = _record()
    _hand_over(deadlines, newer)
    _hand_over(deadlines, swept)
    assert deadlines.expired(0, now=swept.deadline) == []
    assert deadlines.expired(0, now=newer.deadline) == [newer, swept]
