"""Error messages point at the user's own types and at what to change."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from confluent_kafka import KafkaError

import eventwire
import eventwire.codec
from eventwire._classify import to_publish_error


@eventwire.event(topic="amounts", key="id", type="test.amount.given", version=1)
class AmountGiven(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    amount: Decimal | int
    tip: Decimal | None = None
    parts: list[Decimal] = []


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"amount": 1.5}, "$.amount", "Expected `Decimal | int`, got `float`"),
        ({"tip": 0.5}, "$.tip", "Expected `Decimal | None`, got `float`"),
        ({"parts": [0.5]}, "$.parts[0]", "Expected a finite `Decimal`, got `float`"),
    ],
)
def test_a_decimal_union_is_named_as_declared(
    changes: dict[str, object], path: str, reason: str
) -> None:
    # Was "Expected `int | str`": the validating type stands a string in for each Decimal.
    event = AmountGiven(**{"id": "a-1", "amount": 1, **changes})  # type: ignore[arg-type]
    with pytest.raises(eventwire.EventValidationError) as refused:
        eventwire.codec.EventCodec().encode(event)
    assert (refused.value.path, refused.value.reason) == (path, reason)
    # The same words for the bytes a consumer (or `eventwire produce`) checks.
    with pytest.raises(eventwire.EventValidationError) as refused_bytes:
        eventwire.codec.EventCodec().validate_bytes(AmountGiven, msgspec.json.encode(event))
    assert (refused_bytes.value.path, refused_bytes.value.reason) == (path, reason)


def test_a_broker_size_refusal_names_the_setting_to_raise() -> None:
    error = to_publish_error(
        KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), topic="orders", event_id="e-1"
    )
    assert isinstance(error, eventwire.PermanentPublishError)
    assert str(error) == (
        "event e-1 to topic 'orders' failed (permanent, MSG_SIZE_TOO_LARGE): Broker: Message"
        " size too large after 1 attempt (the broker refused the record as larger than the"
        " topic's max.message.bytes (default: the broker's message.max.bytes, about 1 MB):"
        " raise that topic setting, or publish smaller events)"
    )
