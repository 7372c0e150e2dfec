from __future__ import annotations

from collections import defaultdict

import msgspec
import pytest

from examples import async_batch_publisher as example
from tests.examples.conftest import ExampleTopics


def test_batches_deliver_every_valid_reading_in_order_per_sensor(
    example_topics: ExampleTopics, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main([*example_topics.argv, "--events", "3000", "--batch-size", "700"])
    out = capsys.readouterr().out
    assert "delivered 2,994, refused 6" in out
    assert "$.humidity_pct" in out

    records = example_topics.consume("readings", count=2_994)
    assert len(records) == 2_994
    sent = [r for r in example.readings(3000) if r.humidity_pct <= 100]
    per_partition: dict[int, list[example.ReadingTaken]] = defaultdict(list)
    for record in records:  # (partition, offset) order
        per_partition[record.partition].append(
            msgspec.json.decode(record.value or b"", type=example.ReadingTaken)
        )
    got = [reading for partition in per_partition.values() for reading in partition]
    assert sorted(got, key=lambda r: r.taken_at) == sent
    for partition in per_partition.values():  # each sensor's readings in the order taken
        by_sensor: dict[str, list[example.ReadingTaken]] = defaultdict(list)
        for reading in partition:
            by_sensor[reading.sensor_id].append(reading)
        for taken in by_sensor.values():
            assert taken == sorted(taken, key=lambda r: r.taken_at)
