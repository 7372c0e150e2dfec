"""CloudEvents headers as the codec builds them (no broker: what goes into ``produce()``)."""

from __future__ import annotations

import datetime as dt
import re

import eventwire
from tests.events import order

_CE_TIME = re.compile(rb"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def test_ce_time_is_rfc3339_utc_milliseconds_of_now() -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=1)
    encoded = eventwire.EventCodec().encode(order(1))
    after = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=1)
    (value,) = [v for name, v in encoded.headers if name == "ce_time"]
    assert isinstance(value, bytes)
    assert _CE_TIME.match(value)
    assert before <= dt.datetime.fromisoformat(value.decode()) <= after


def test_ce_id_is_the_event_id_and_unique() -> None:
    codec = eventwire.EventCodec()
    ids = []
    for n in range(1000):
        encoded = codec.encode(order(n))
        (value,) = [v for name, v in encoded.headers if name == "ce_id"]
        assert value == encoded.event_id
        ids.append(encoded.event_id)
    assert len(set(ids)) == len(ids)
