"""Declaration mistakes are refused by ``@eventwire.event`` with the field named, not at the
first publish."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

import msgspec
import pytest

import eventwire
import eventwire.inspect
from eventwire.testing import FakePublisher


class _Opaque:
    """A class msgspec has no JSON or MessagePack form for."""


class _Nested(msgspec.Struct, frozen=True):
    label: str
    blob: _Opaque


@pytest.mark.parametrize(
    ("annotation", "path", "shown"),
    [
        (object, "$.value", "object"),
        (complex, "$.value", "complex"),
        (_Opaque, "$.value", "_Opaque"),
        (list[_Opaque], "$.value[]", "_Opaque"),
        (dict[str, _Opaque | None], "$.value[][]", "_Opaque"),
        (_Nested, "$.value.blob", "_Opaque"),
    ],
)
def test_a_field_type_without_a_wire_form_is_refused_at_declaration(
    annotation: Any, path: str, shown: str
) -> None:
    cls = msgspec.defstruct("Odd", [("key", str), ("value", annotation)], frozen=True)
    with pytest.raises(eventwire.EventDefinitionError) as refused:
        eventwire.event(topic="odd", key="key", type="test.odd.field")(cls)
    assert f"field {path} has type {shown}," in str(refused.value)
    assert not eventwire.inspect.is_event(cls)


def test_an_unresolvable_annotation_is_a_definition_error() -> None:
    cls = msgspec.defstruct("Dangling", [("key", str), ("value", "Missing")], frozen=True)
    with pytest.raises(eventwire.EventDefinitionError, match="cannot read its field types"):
        eventwire.event(topic="odd", key="key", type="test.odd.dangling")(cls)


class _Tree(msgspec.Struct, frozen=True):
    name: str
    children: list[_Tree] = []


def test_a_recursive_struct_is_refused_at_declaration() -> None:
    cls = msgspec.defstruct("Planted", [("key", str), ("tree", _Tree)], frozen=True)
    with pytest.raises(eventwire.EventDefinitionError) as refused:
        eventwire.event(topic="trees", key="key", type="test.tree.planted")(cls)
    assert "field $.tree.children[] holds a _Tree inside a _Tree" in str(refused.value)


class _Money(msgspec.Struct, frozen=True):
    amount: Decimal
    currency: str


def test_supported_and_shared_field_types_are_accepted() -> None:
    @eventwire.event(topic="transfers", key="key", type="test.transfer.made")
    class TransferMade(msgspec.Struct, frozen=True):
        key: str
        sent: _Money
        received: _Money
        fees: list[_Money] = []
        tags: set[str] = set()
        extra: dict[str, Any] = {}

    euros = _Money(Decimal("1.50"), "EUR")
    event = TransferMade(key="k", sent=euros, received=euros, fees=[euros], extra={"n": 1})
    with FakePublisher() as publisher:
        publisher.publish(event)
    assert publisher.events(TransferMade) == [event]


def test_a_class_is_declared_once() -> None:
    cls = msgspec.defstruct("Twice", [("key", str)], frozen=True)
    eventwire.event(topic="twice", key="key", type="test.twice", version=1)(cls)
    with pytest.raises(eventwire.EventDefinitionError, match="already declared as an event"):
        eventwire.event(topic="twice", key="key", type="test.twice", version=2)(cls)
    assert eventwire.inspect.spec_of(cls).version == 1


class _Colour(enum.Enum):
    RED = "red"


class _Tier(enum.StrEnum):
    GOLD = "gold"


def test_a_plain_enum_key_is_refused_and_a_str_enum_key_is_sent_by_its_value() -> None:
    """docs/keys-topics.md: a member of a ``str``/``int`` enum is sent by its value, a plain
    ``Enum`` key field is refused when the class is declared."""
    with pytest.raises(eventwire.EventDefinitionError, match="key field 'colour' must be str"):

        @eventwire.event(topic="t", key="colour", type="t.colour", version=1)
        class ByColour(msgspec.Struct, frozen=True):
            colour: _Colour

    @eventwire.event(topic="t", key="tier", type="t.tier", version=1)
    class ByTier(msgspec.Struct, frozen=True):
        tier: _Tier

    with FakePublisher() as fake:
        fake.publish(ByTier(tier=_Tier.GOLD))
        [record] = fake.published(ByTier)
    assert record.key == b"gold"


RULE = "(a topic name has 1 to 249 characters from [a-zA-Z0-9._-] and is not '.' or '..')"


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        (".", f"'.' is reserved {RULE}"),
        ("..", f"'..' is reserved {RULE}"),
        ("", f"it is empty {RULE}"),
        ("o" * 250, f"it has 250 characters {RULE}"),
        ("my orders", f"' ' is not allowed {RULE}"),
    ],
)
def test_a_topic_kafka_refuses_is_refused_at_declaration(topic: str, problem: str) -> None:
    # "." and ".." were accepted, and every publish to them then failed.
    with pytest.raises(eventwire.EventDefinitionError) as refused:

        @eventwire.event(topic=topic, key=None, type="t.topic.checked")
        class Checked(msgspec.Struct, frozen=True):
            n: int

    assert str(refused.value).endswith(
        f".Checked: topic {topic!r} is not a legal Kafka topic name: {problem}"
    )


def test_the_longest_legal_topic_is_accepted() -> None:
    @eventwire.event(topic="o" * 249, key=None, type="t.topic.longest")
    class Longest(msgspec.Struct, frozen=True):
        n: int

    assert eventwire.inspect.spec_of(Longest).topic == "o" * 249


def test_a_plain_enum_key_is_refused_naming_strenum_and_intenum() -> None:
    with pytest.raises(eventwire.EventDefinitionError) as refused:

        @eventwire.event(topic="t", key="colour", type="t.colour.named", version=1)
        class ByColour(msgspec.Struct, frozen=True):
            colour: _Colour

    assert str(refused.value).endswith(
        ".ByColour: key field 'colour' must be str, int, UUID or bytes; _Colour is a plain Enum,"
        " whose members are neither: declare it as `class _Colour(enum.StrEnum)` or"
        " `(enum.IntEnum)` so that the member's value is the key"
    )


def test_another_schema_under_a_declared_type_and_version_is_warned_of() -> None:
    @eventwire.event(topic="t", key=None, type="t.twin", version=1)
    class First(msgspec.Struct, frozen=True):
        amount: int

    # The same wire shape under another name, or the same class again, is no mistake.
    @eventwire.event(topic="t", key=None, type="t.twin", version=1)
    class Same(msgspec.Struct, frozen=True):
        """Documented differently."""

        amount: int

    with pytest.warns(eventwire.EventDefinitionWarning) as warned:

        @eventwire.event(topic="t", key=None, type="t.twin", version=1)
        class Other(msgspec.Struct, frozen=True):
            amount: str

    [warning] = warned.list
    assert str(warning.message) == (
        f"{Other.__qualname__}: type 't.twin' version 1 is already declared by "
        f"{__name__}.{Same.__qualname__} with another schema; consumers tell events apart by "
        "type and version, so give this class a new version (or type)"
    )
    assert warning.filename == __file__  # points at the declaration

    @eventwire.event(topic="t", key=None, type="t.twin", version=2)
    class NextVersion(msgspec.Struct, frozen=True):
        amount: str
