"""CloudEvents headers as the codec builds them (no broker: what goes into ``produce()``)."""

from __future__ import annotations

import datetime as dt
import gc
import re

import pytest

import eventwire
import eventwire.codec
from eventwire._codec import header_items
from tests.events import order

_CE_TIME = re.compile(rb"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def test_ce_time_is_rfc3339_utc_milliseconds_of_now() -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=1)
    encoded = eventwire.codec.EventCodec().encode(order(1))
    after = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=1)
    (value,) = [v for name, v in header_items(encoded.headers) if name == "ce_time"]
    assert isinstance(value, bytes)
    assert _CE_TIME.match(value)
    assert before <= dt.datetime.fromisoformat(value.decode()) <= after


def test_ce_id_is_the_event_id_and_unique() -> None:
    codec = eventwire.codec.EventCodec()
    ids = []
    for n in range(1000):
        encoded = codec.encode(order(n))
        (value,) = [v for name, v in header_items(encoded.headers) if name == "ce_id"]
        assert value == encoded.event_id
        ids.append(encoded.event_id)
    assert len(set(ids)) == len(ids)


def test_headers_of_an_event_are_a_dict_the_collector_does_not_track() -> None:
    # A list of pairs per event is one more object per record for the cyclic collector to
    # track and promote while the record is in flight.
    encoded = eventwire.codec.EventCodec().encode(order(1))
    assert isinstance(encoded.headers, dict)
    assert not gc.is_tracked(encoded.headers)
    assert list(encoded.headers) == encoded_names()


def test_caller_headers_keep_repeated_names_in_order() -> None:
    encoded = eventwire.codec.EventCodec().encode(order(1), headers=[("dup", b"x"), ("dup", "y")])
    pairs = header_items(encoded.headers)
    assert pairs[-2:] == [("dup", b"x"), ("dup", b"y")]
    assert [name for name, _ in pairs[:7]] == list(encoded_names())


def encoded_names() -> list[str]:
    return [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_eventversion",
        "content-type",
        "ce_time",
    ]


@pytest.mark.parametrize("name", ["ce_id", "CE_ID", "Content-Type", "Ce_Type"])
def test_reserved_header_names_are_refused_in_any_case(name: str) -> None:
    with pytest.raises(eventwire.EventValidationError, match="is set by eventwire"):
        eventwire.codec.EventCodec().encode(order(1), headers={name: "mine"})
