"""What the fuzzing campaign found, through the publishers against the local broker: a hostile
value is that event's ``EventValidationError``; ``publish_many`` returns one outcome per event
and delivers the neighbours; nothing is produced for the refused ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

import eventwire
from eventwire.testing import FakePublisher
from tests.events import order
from tests.integration.conftest import Topics


class Boom(Exception):
    pass


class RaisingTz(dt.tzinfo):
    def utcoffset(self, moment: dt.datetime | None) -> dt.timedelta:
        raise Boom("utcoffset")

    def dst(self, moment: dt.datetime | None) -> dt.timedelta:
        raise Boom("dst")


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _hostile_batch() -> tuple[list[Any], dict[int, str]]:
    """Valid orders with hostile ones between them; index -> the path each bad one names."""
    bad = {
        1: (order(1, created_at=dt.datetime(2026, 1, 1, tzinfo=RaisingTz())), "$.created_at"),
        3: (order(3, notes=_nested(100_000)), "$.notes"),  # RecursionError, before the fix
        5: (order(5, currency="\ud800"), "$.currency"),
    }
    batch = [bad[n][0] if n in bad else order(n) for n in range(7)]
    return batch, {n: path for n, (_, path) in bad.items()}


def _check(
    outcomes: list[Any], paths: dict[int, str], records: list[Any], batch: list[Any]
) -> None:
    assert len(outcomes) == len(batch)
    for index, outcome in enumerate(outcomes):
        if index in paths:
            assert isinstance(outcome, eventwire.EventValidationError), outcome
            assert outcome.path == paths[index]
        else:
            assert isinstance(outcome, eventwire.DeliveryReceipt), outcome
    delivered = {
        o.event_id: msgspec.json.encode(batch[i])
        for i, o in enumerate(outcomes)
        if isinstance(o, eventwire.DeliveryReceipt)
    }
    assert {(r.header("ce_id") or b"").decode(): r.value for r in records} == delivered


def test_sync_publish_many_gives_each_hostile_event_its_outcome(topics: Topics) -> None:
    batch, paths = _hostile_batch()
    with eventwire.Publisher(topics.config()) as publisher:
        outcomes = publisher.publish_many(batch)
        assert publisher.outstanding == 0
    records = topics.broker.consume(topics.name("orders"), count=len(batch) - len(paths))
    _check(outcomes, paths, records, batch)
    with FakePublisher(topics.config()) as fake:  # the fake reaches the same verdicts
        fakes = fake.publish_many(batch)
    assert [type(o) for o in fakes] == [type(o) for o in outcomes]


async def test_async_publish_many_gives_each_hostile_event_its_outcome(topics: Topics) -> None:
    batch, paths = _hostile_batch()
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        outcomes = await publisher.publish_many(batch)
    records = topics.broker.consume(topics.name("orders"), count=len(batch) - len(paths))
    _check(outcomes, paths, records, batch)


@pytest.mark.parametrize(
    "headers",
    [{"tenant\udc80": b"acme"}, [("tenant\ud800", b"acme")]],
    ids=["dict", "pairs"],
)
async def test_a_header_name_librdkafka_cannot_encode_is_refused_before_produce(
    topics: Topics, headers: Any
) -> None:
    """librdkafka encodes header names itself: before the fix the codec passed a lone
    surrogate, and ``produce()`` raised ``UnicodeEncodeError`` from inside the publisher."""
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        with pytest.raises(eventwire.EventValidationError) as caught:
            await publisher.publish(order(1), headers=headers)
        assert caught.value.path == "headers"
        assert "is not valid UTF-8" in caught.value.reason
        await publisher.publish(order(2))
        assert publisher.outstanding == 0
    records = topics.broker.consume(topics.name("orders"), count=1)
    assert [r.key for r in records] == [b"ord-000002"]
