"""Every example takes the command line docs/index.md promises: ``python -m examples.NAME
--bootstrap-servers HOST:PORT --topic-prefix P`` (monitored_publisher took a positional address,
unit_testing_with_fake_publisher refused ``--topic-prefix``)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import uuid
from pathlib import Path

import msgspec
import pytest

from eventwire.testing import LocalBroker

EXAMPLES = sorted(
    path.stem
    for path in (Path(__file__).resolve().parents[2] / "examples").glob("*.py")
    if not path.stem.startswith("_")
)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_takes_the_shared_command_line(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main = importlib.import_module(f"examples.{name}").main

    def run_help() -> None:
        outcome = main(["--help"])
        if inspect.iscoroutine(outcome):  # the fake-publisher example's main is async
            asyncio.run(outcome)

    with pytest.raises(SystemExit) as exited:
        run_help()
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    assert "--bootstrap-servers" in usage
    assert "--topic-prefix" in usage
    # The description is the docstring's whole first paragraph, not its first line cut off
    # mid-sentence (throughput_tuning's read "... in large chunks, and what").
    doc = importlib.import_module(f"examples.{name}").__doc__ or ""
    first_paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    assert first_paragraph in " ".join(usage.split())


def test_monitored_publisher_runs_from_its_command_line(
    eventwire_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    from examples import monitored_publisher

    prefix = f"ex{uuid.uuid4().hex[:8]}."
    topic = eventwire_broker.create_topic(prefix + "orders", 3)
    argv = ["--bootstrap-servers", eventwire_broker.bootstrap_servers, "--topic-prefix", prefix]
    assert monitored_publisher.main(argv) == 0
    assert "delivered 100 orders" in capsys.readouterr().out
    records = eventwire_broker.consume(topic, count=100)
    orders = sorted(msgspec.json.decode(r.value or b"")["order_id"] for r in records)
    assert orders == [f"ord-{n:05d}" for n in range(100)]
