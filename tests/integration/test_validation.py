"""Invalid events are refused with the field path and never reach Kafka; their valid
neighbours in the same batch are delivered."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventwire
import eventwire.codec
from eventwire.testing import LocalBroker
from tests.events import LineItem, OrderPlaced, order
from tests.integration.conftest import Topics

INVALID: list[tuple[OrderPlaced, str, str]] = [
    (order(1, order_id=123), "$.order_id", "Expected `str`, got `int`"),
    (
        order(2, created_at=dt.datetime(2026, 1, 1, 12, 0)),  # noqa: DTZ001 - naive on purpose
        "$.created_at",
        "Expected `datetime` with a timezone component",
    ),
    (order(3, currency="euro"), "$.currency", "Expected `str` matching regex"),
    (
        order(
            4,
            line_items=[
                LineItem(sku="a", quantity=1, unit_price=Decimal(1)),
                LineItem(sku="b", quantity=0, unit_price=Decimal(1)),
            ],
        ),
        "$.line_items[1].quantity",
        "Expected `int` >= 1",
    ),
    (order(5, total_price=12.5), "$.total_price", "Expected a finite `Decimal`, got `float`"),
    (order(6, line_items=["not an item"]), "$.line_items[0]", "Expected `object`, got `str`"),
    # An aware RFC 3339 string decodes as a datetime, but time is a datetime: it was sent as
    # given before `convert` got CHECK_BUILTIN_TYPES.
    (
        order(7, created_at="2026-01-01T12:00:00Z"),
        "$.created_at",
        "Expected `datetime`, got `str`",
    ),
]


@pytest.mark.parametrize(("event", "path", "reason"), INVALID)
async def test_invalid_event_is_refused_with_path(
    topics: Topics, event: OrderPlaced, path: str, reason: str
) -> None:
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        with pytest.raises(eventwire.EventValidationError) as caught:
            await publisher.publish(event)
        error = caught.value
        assert error.path == path
        assert error.event_type == "order.placed"
        assert reason in error.reason
        assert str(error).startswith(f"invalid order.placed event at {path}: ")
        await publisher.publish(order(100))  # the publisher is unharmed
    records = topics.broker.consume(topics.name("orders"))
    assert [r.key for r in records] == [b"ord-000100"]


async def test_invalid_events_in_a_batch_do_not_cost_their_neighbours(topics: Topics) -> None:
    batch: list[Any] = []
    for n, (bad, _, _) in enumerate(INVALID):
        batch += [order(1000 + n), bad]
    batch.append(object())  # not an event at all
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        outcomes = await publisher.publish_many(batch)

    for n, (_, path, _) in enumerate(INVALID):
        assert isinstance(outcomes[2 * n], eventwire.DeliveryReceipt)
        bad_outcome = outcomes[2 * n + 1]
        assert isinstance(bad_outcome, eventwire.EventValidationError)
        assert bad_outcome.path == path
    assert isinstance(outcomes[-1], eventwire.EventDefinitionError)
    records = topics.broker.consume(topics.name("orders"), count=len(INVALID))
    assert sorted(r.key for r in records) == [  # type: ignore[type-var]
        f"ord-{1000 + n:06d}".encode() for n in range(len(INVALID))
    ]


def _any_value() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(),
        st.floats(),
        st.binary(max_size=4),
        st.text(max_size=5),
        st.lists(st.integers(), max_size=2),
        st.none(),
        st.booleans(),
        st.uuids(),
        st.decimals(),
        st.datetimes(),
        st.datetimes(timezones=st.just(dt.UTC)),
    )


def _reference_accepts(event: OrderPlaced) -> bool:
    """The reference: the typed decode of the encoded bytes accepts the event."""
    try:
        payload = msgspec.json.encode(event)
        eventwire.codec.EventCodec(validate=False).validate_bytes(OrderPlaced, payload)
    except (eventwire.EventValidationError, TypeError, ValueError, OverflowError):
        return False
    return True


FIELD_TYPES: dict[str, type] = {
    "order_id": str,
    "customer_id": str,
    "created_at": dt.datetime,
    "currency": str,
    "total_price": Decimal,
    "line_items": list,
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(FIELD_TYPES)), value=_any_value())
def test_hypothesis_values_judged_like_the_typed_decode_reference(field: str, value: Any) -> None:
    """Whatever the reference (typed decode of the encoded bytes) refuses is refused, with the
    field's path; values of the wrong Python type are refused even when their JSON would pass
    (a ``bytes`` or ``UUID`` in a ``str`` field encodes to a valid string)."""
    codec = eventwire.codec.EventCodec()
    event = order(1, **{field: value})
    reference_ok = _reference_accepts(event)
    right_type = isinstance(value, FIELD_TYPES[field]) and not isinstance(value, bool)
    if not (reference_ok and right_type):
        with pytest.raises(eventwire.EventValidationError) as caught:
            codec.encode(event)
        assert caught.value.path.startswith(f"$.{field}")
        return
    assert codec.encode(event).event_type == "order.placed"  # valid both ways: accepted


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 10**6), quantity=st.integers(1, 10**6), cents=st.integers(0, 10**9))
def test_hypothesis_valid_orders_pass_both_checks(n: int, quantity: int, cents: int) -> None:
    event = order(
        n,
        total_price=Decimal(cents) / 100,
        line_items=[LineItem(sku="s", quantity=quantity, unit_price=Decimal(cents) / 100)],
    )
    encoded = eventwire.codec.EventCodec().encode(event)
    assert eventwire.codec.EventCodec().validate_bytes(OrderPlaced, encoded.value) is not None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(sorted(FIELD_TYPES)), _any_value()), min_size=1, max_size=6
    )
)
def test_hypothesis_invalid_events_in_a_batch_are_refused_and_neighbours_delivered(
    eventwire_broker: LocalBroker, changes: list[tuple[str, Any]]
) -> None:
    """Through the publisher to the broker: each generated event the reference refuses gets
    its own EventValidationError with the path; every valid one between them is consumed back
    with its bytes, and nothing else reaches the topic."""
    topic = eventwire_broker.unique_topic("hypothesis")
    batch: list[OrderPlaced] = []
    bad_fields: dict[int, str] = {}
    for n, (field, value) in enumerate(changes):
        batch.append(order(2 * n))
        event = order(2 * n + 1, **{field: value})
        right_type = isinstance(value, FIELD_TYPES[field]) and not isinstance(value, bool)
        if not (_reference_accepts(event) and right_type):
            bad_fields[len(batch)] = field
        batch.append(event)
    config = eventwire.PublisherConfig(
        bootstrap_servers=eventwire_broker.bootstrap_servers, topic_map={"orders": topic}
    )
    with eventwire.Publisher(config) as publisher:
        outcomes = publisher.publish_many(batch)
    delivered: dict[str, bytes] = {}
    for index, (event, outcome) in enumerate(zip(batch, outcomes, strict=True)):
        if index in bad_fields:
            assert isinstance(outcome, eventwire.EventValidationError), outcome
            assert outcome.path.startswith(f"$.{bad_fields[index]}")
        else:
            assert isinstance(outcome, eventwire.DeliveryReceipt), outcome
            delivered[outcome.event_id] = msgspec.json.encode(event)
    records = eventwire_broker.consume(topic)
    assert {(r.header("ce_id") or b"").decode(): r.value for r in records} == delivered
    assert len(records) == len(delivered)


ITEM_FIELD_TYPES: dict[str, type] = {"sku": str, "quantity": int, "unit_price": Decimal}


def _item_value(field: str) -> st.SearchStrategy[Any]:
    """Mostly values near the field's own type (valid and just-invalid), some of any type."""
    near: dict[str, st.SearchStrategy[Any]] = {
        "sku": st.text(max_size=3),
        "quantity": st.integers(-2, 3) | st.integers(),
        "unit_price": st.decimals(allow_nan=True, allow_infinity=True),
    }
    return near[field] | _any_value()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, 2),
    field_value=st.sampled_from(sorted(ITEM_FIELD_TYPES)).flatmap(
        lambda f: st.tuples(st.just(f), _item_value(f))
    ),
)
def test_hypothesis_nested_values_judged_like_the_typed_decode_reference(
    index: int, field_value: tuple[str, Any]
) -> None:
    """A value in a line item: the codec (compiled check, ``convert`` behind it) accepts exactly
    what the reference accepts when the Python type is right, and names the exact path."""
    field, value = field_value
    base = order(1)
    items = list(base.line_items)
    items[index] = msgspec.structs.replace(items[index], **{field: value})
    event = msgspec.structs.replace(base, line_items=items)
    reference_ok = _reference_accepts(event)
    right_type = isinstance(value, ITEM_FIELD_TYPES[field]) and not isinstance(value, bool)
    codec = eventwire.codec.EventCodec()
    if reference_ok and right_type:
        assert codec.encode(event).event_type == "order.placed"
        return
    with pytest.raises(eventwire.EventValidationError) as caught:
        codec.encode(event)
    assert caught.value.path == f"$.line_items[{index}].{field}"


BAD_CALL_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"headers": {"tenant": 7}}, "header 'tenant'"),
    ({"headers": [(b"tenant", b"acme")]}, "header name"),
    ({"key": 12345}, "key"),
    ({"headers": [("tenant", b"acme", b"extra")]}, "(name, value) pair"),
    ({"headers": ["tenant"]}, "(name, value) pair"),
]


@pytest.mark.parametrize(("arguments", "named"), BAD_CALL_ARGUMENTS)
async def test_bad_header_or_key_is_refused_and_costs_nothing_in_flight(
    topics: Topics, arguments: dict[str, Any], named: str
) -> None:
    publisher = eventwire.AsyncPublisher(topics.config())
    with pytest.raises(eventwire.EventValidationError) as caught:
        await publisher.publish(order(1), **arguments)
    assert named in str(caught.value)
    await publisher.publish(order(2))
    assert publisher.outstanding == 0
    report = await publisher.aclose(timeout=5.0)
    assert (report.delivered, report.undelivered, report.timed_out) == (1, 0, False)
    records = topics.broker.consume(topics.name("orders"))
    assert [r.key for r in records] == [b"ord-000002"]


def test_bad_header_is_refused_by_the_sync_publisher_too(topics: Topics) -> None:
    with eventwire.Publisher(topics.config()) as publisher:
        with pytest.raises(eventwire.EventValidationError, match="header 'tenant'"):
            publisher.publish(order(1), headers={"tenant": 7})
        publisher.publish(order(2))
        assert publisher.outstanding == 0
        report = publisher.close(timeout=5.0)
    assert (report.delivered, report.undelivered, report.timed_out) == (1, 0, False)


async def test_a_class_or_non_event_passed_as_the_event_is_named(topics: Topics) -> None:
    async with eventwire.AsyncPublisher(topics.config()) as publisher:
        outcomes = await publisher.publish_many([order(1), OrderPlaced, None, order(2)])
    errors = [str(o) for o in outcomes if isinstance(o, eventwire.EventDefinitionError)]
    assert errors == [
        "OrderPlaced is a class, not an event: publish an instance, OrderPlaced(...)",
        "NoneType is not an event: decorate it with @eventwire.event(...)",
    ]
    records = topics.broker.consume(topics.name("orders"), count=2)
    assert sorted(r.key for r in records) == [b"ord-000001", b"ord-000002"]
