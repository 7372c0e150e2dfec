"""Fields ``convert`` cannot check (a ``float`` or ``Decimal`` in a union with another type,
tagged struct unions, fields that may be ``msgspec.UNSET``) are validated by the reference
check: valid events are published and decode back, invalid ones are refused naming the field,
in either encoding (qa5a finding: every publish of such an event raised a bare ``TypeError``
or refused a valid event)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

import msgspec
import pytest

import eventwire
from tests.integration.conftest import Topics


class Cat(msgspec.Struct, frozen=True, tag=True):
    name: str


class Dog(msgspec.Struct, frozen=True, tag=True):
    name: str
    born: dt.datetime | None = None


@eventwire.event(topic="orders", key="order_id", type="order.measured")
class Measured(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    weight: float | int
    label: float | str = ""
    prices: dict[str, Decimal | int] = {}
    pet: Cat | Dog | None = None
    pets: list[Cat | Dog] = []


@eventwire.event(topic="orders", key="order_id", type="order.noted")
class Noted(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    note: str | msgspec.UnsetType = msgspec.UNSET  # left out of the payload while unset


VALID = [
    Measured(order_id="m-1", weight=1.5, label=2.0, prices={"eur": Decimal("1.10"), "n": 3}),
    Measured(order_id="m-2", weight=7, label="big", pet=Dog("rex"), pets=[Cat("tom"), Dog("x")]),
]
NAIVE = dt.datetime(2026, 1, 1)  # noqa: DTZ001 - naive on purpose
INVALID = [
    (Measured(order_id="m-3", weight=float("nan")), "$.weight"),
    (Measured(order_id="m-4", weight=1, prices={"eur": 1.5}), "$.prices[...]"),  # type: ignore[dict-item]
    (Measured(order_id="m-5", weight=1, pet=Dog("rex", born=NAIVE)), "$.pet.born"),
    (Measured(order_id="m-6", weight=1, pets=[Cat(3)]), "$.pets[0].name"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_union_fields_round_trip_and_invalid_ones_name_the_field(
    topics: Topics, encoding: Literal["json", "msgpack"]
) -> None:
    async with eventwire.AsyncPublisher(topics.config(encoding=encoding)) as publisher:
        for event, path in INVALID:
            with pytest.raises(eventwire.EventValidationError) as caught:
                await publisher.publish(event)
            assert caught.value.path == path, caught.value
        outcomes = await publisher.publish_many(VALID)
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes), outcomes
    records = topics.broker.consume(topics.name("orders"), count=len(VALID))
    decode = msgspec.json.decode if encoding == "json" else msgspec.msgpack.decode
    back = [decode(r.value or b"", type=Measured) for r in records]
    back.sort(key=lambda e: e.order_id)
    assert back == VALID


async def test_unset_fields_are_published_and_checked(topics: Topics) -> None:
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        with pytest.raises(eventwire.EventValidationError) as caught:
            await publisher.publish(Noted(order_id="n-0", note=5))  # type: ignore[arg-type]
        assert caught.value.path == "$.note"
        events = [Noted(order_id="n-1"), Noted(order_id="n-2", note="x")]
        outcomes = await publisher.publish_many(events)
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes), outcomes
    records = topics.broker.consume(topics.name("orders"), count=2)
    assert sorted(r.value or b"" for r in records) == [
        b'{"order_id":"n-1"}',
        b'{"order_id":"n-2","note":"x"}',
    ]
