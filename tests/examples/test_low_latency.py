from __future__ import annotations

import re

import msgspec
import pytest

from examples import low_latency as example
from tests.examples.conftest import ExampleTopics

REQUESTS = 60


def test_each_request_is_delivered_and_its_latency_printed(
    example_topics: ExampleTopics, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main([*example_topics.argv, "--requests", str(REQUESTS)])
    out = capsys.readouterr().out
    lines = {m.group(1): m for m in re.finditer(r"(\w+)\s+publish latency p50 +([\d.]+) ms", out)}
    assert set(lines) == {"low_latency", "durable"}
    assert all(float(m.group(2)) > 0 for m in lines.values())

    total = 2 * (REQUESTS + 20)
    records = example_topics.consume("payments.authorized", count=total)
    assert len(records) == total
    ids = sorted(
        msgspec.json.decode(r.value or b"", type=example.PaymentAuthorized).payment_id
        for r in records
    )
    expected = sorted(
        f"pay-{preset}-{n}" for preset in ("low_latency", "durable") for n in range(REQUESTS + 20)
    )
    assert ids == expected
