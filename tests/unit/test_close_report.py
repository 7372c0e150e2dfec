"""A CloseReport stays readable when printed or logged, whatever the backlog."""

from __future__ import annotations

import eventwire


def test_a_large_backlog_is_summarised_in_the_repr() -> None:
    ids = tuple(f"id-{index}" for index in range(100_000))
    report = eventwire.CloseReport(
        delivered=7, failed=1, undelivered=100_000, undelivered_event_ids=ids, timed_out=True
    )

    assert (
        repr(report)
        == str(report)
        == (
            "CloseReport(delivered=7, failed=1, undelivered=100000, undelivered_event_ids=("
            "'id-0', 'id-1', 'id-2', 'id-3', 'id-4', ... 99,995 more), timed_out=True, spooled=0)"
        )
    )
    assert report.undelivered_event_ids == ids  # the data itself is whole


def test_a_small_backlog_is_shown_whole() -> None:
    report = eventwire.CloseReport(
        delivered=1, failed=0, undelivered=1, undelivered_event_ids=("a",), timed_out=False
    )

    assert repr(report) == (
        "CloseReport(delivered=1, failed=0, undelivered=1, undelivered_event_ids=('a',), "
        "timed_out=False, spooled=0)"
    )
    assert eval(repr(report), {"CloseReport": eventwire.CloseReport}) == report  # noqa: S307
