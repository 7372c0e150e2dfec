from __future__ import annotations

import msgspec
import pytest

from examples import throughput_tuning as example
from tests.examples.conftest import ExampleTopics

EVENTS = 2_000


def test_every_setting_delivers_all_its_events(
    example_topics: ExampleTopics, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main([*example_topics.argv, "--events", str(EVENTS)])
    out = capsys.readouterr().out
    assert out.count("events/s") == 3
    assert "throughput preset, chunks of 10,000" in out

    # Three settings, each with 100 warm-up events and EVENTS measured ones, all distinct.
    total = 3 * (EVENTS + 100)
    records = example_topics.consume("clicks", count=total)
    assert len(records) == total
    got = sorted(
        (msgspec.json.decode(r.value or b"", type=example.ClickRecorded) for r in records),
        key=lambda c: c.at,
    )
    assert got == example.clicks(total)
    assert {r.header("content-type") for r in records} == {b"application/json"}
