from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from examples import basic_order_publisher as example
from tests.examples.conftest import ExampleTopics

ROOT = Path(__file__).resolve().parents[2]


def test_the_orders_arrive_as_published(
    example_topics: ExampleTopics, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main(example_topics.argv)
    out = capsys.readouterr().out
    assert "refused before Kafka: invalid shop.order.placed event at $.currency" in out

    records = example_topics.consume("orders", count=3)
    assert len(records) == 3
    got = sorted(
        (msgspec.json.decode(r.value or b"", type=example.OrderPlaced) for r in records),
        key=lambda o: o.order_id,
    )
    assert got == example.sample_orders()
    assert all(r.key == msgspec.json.decode(r.value or b"")["order_id"].encode() for r in records)
    assert {r.header("ce_type") for r in records} == {b"shop.order.placed"}
    assert all(b'"unit_price":"12.50"' in (r.value or b"") for r in records)  # exact money
    for record in records:
        assert f"-> {record.topic}[{record.partition}]@{record.offset}" in out


def test_it_runs_as_a_module(example_topics: ExampleTopics) -> None:
    done = subprocess.run(  # noqa: S603 - our interpreter, our module
        [sys.executable, "-m", "examples.basic_order_publisher", *example_topics.argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" -> ") == 3
    assert len(example_topics.consume("orders", count=3)) == 3
