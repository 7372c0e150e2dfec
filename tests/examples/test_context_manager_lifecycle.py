from __future__ import annotations

import msgspec
import pytest

from examples import context_manager_lifecycle as example
from tests.examples.conftest import ExampleTopics


def test_every_lifecycle_delivers_what_it_accepted(
    example_topics: ExampleTopics, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main(example_topics.argv)
    out = capsys.readouterr().out
    assert "after the block: publisher is closed; create a new one" in out
    assert "the block raised; publisher closed: True" in out
    assert "closed: delivered=3 failed=0 undelivered=0 timed_out=False" in out
    assert "closed: delivered=2 failed=0 undelivered=0 timed_out=False" in out

    records = example_topics.consume("sessions", count=6)
    got = sorted(
        (msgspec.json.decode(r.value or b"", type=example.UserSignedIn) for r in records),
        key=lambda e: e.at,
    )
    assert [(e.user_id, e.method) for e in got] == [
        ("user-0", "sync-with"),
        ("user-1", "sync-with"),
        ("user-2", "sync-with"),
        ("user-10", "async-with"),
        ("user-20", "app-hook"),
        ("user-21", "app-hook"),
    ]
