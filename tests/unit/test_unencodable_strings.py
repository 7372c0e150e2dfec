"""A string msgspec cannot encode (a lone surrogate, e.g. from ``os.fsdecode`` or broken
input) passes the type check but fails encoding: the error still names the field path."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pytest

import eventwire
import eventwire.codec
from tests.events import LineItem, order


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"notes": "bad \ud800 here"}, "$.notes"),
        ({"order_id": "ord-\udc80"}, "$.order_id"),
        ("line_item_sku", "$.line_items[1].sku"),
    ],
)
def test_an_unencodable_string_is_refused_naming_its_path(
    encoding: Literal["json", "msgpack"], changes: Any, path: str
) -> None:
    event = order(1)
    if changes == "line_item_sku":
        items = list(event.line_items)
        items[1] = LineItem(sku="sku-\ud83d", quantity=1, unit_price=items[1].unit_price)
        changes = {"line_items": items}
    bad = msgspec.structs.replace(event, **changes)
    codec = eventwire.codec.EventCodec(encoding=encoding)
    with pytest.raises(eventwire.EventValidationError) as info:
        codec.encode(bad)
    assert info.value.path == path
    assert "surrogates not allowed" in str(info.value)
    assert codec.encode(event).value  # the codec goes on working
