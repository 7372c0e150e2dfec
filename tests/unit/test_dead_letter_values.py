"""What a dead-letter record carries of an event the broker refused as too large: the whole
value (the dead-letter topic may allow more than the event's topic), or, if the dead-letter
topic refuses the copy as too large too, the key and headers with the value identified."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

import eventwire
from eventwire.testing import FakePublisher, PublishedRecord
from eventwire.testing._fake import fake_config
from tests.events import order


def _dead_lettering() -> FakePublisher:
    return FakePublisher(
        fake_config().with_overrides(dead_letter=eventwire.DeadLetterPolicy(topic="dlq"))
    )


def _letter(publisher: FakePublisher) -> PublishedRecord:
    [letter] = publisher.published(topic="dlq")
    return letter


def test_an_event_the_broker_refused_as_too_large_is_dead_lettered_whole() -> None:
    event = order(1)
    with _dead_lettering() as publisher:
        publisher.fail_nth(1, code="MSG_SIZE_TOO_LARGE")  # a delivery report: the broker's
        with pytest.raises(eventwire.DeadLetteredError) as caught:
            publisher.publish(event)
        letter = _letter(publisher)
    assert caught.value.code == "MSG_SIZE_TOO_LARGE"
    assert letter.value == msgspec.json.encode(event)
    assert letter.header("eventwire_value_omitted") is None
    assert letter.header("eventwire_error_code") == b"MSG_SIZE_TOO_LARGE"


def test_a_copy_the_dead_letter_topic_refuses_as_too_large_is_written_without_the_value() -> None:
    event = order(1)
    value = msgspec.json.encode(event)
    with _dead_lettering() as publisher:
        publisher.fail_nth(1, code="MSG_SIZE_TOO_LARGE")
        publisher.fail_nth(2, code="MSG_SIZE_TOO_LARGE", times=1)  # the dead-letter copy
        with pytest.raises(eventwire.DeadLetteredError):
            publisher.publish(event)
        letter = _letter(publisher)
    assert letter.value == b""
    assert letter.header("ce_id") is not None
    assert letter.header("eventwire_value_omitted") == (
        b"too large for the dead-letter topic (max.message.bytes)"
    )
    assert letter.header("eventwire_value_size") == str(len(value)).encode()
    assert letter.header("eventwire_value_sha256") == hashlib.sha256(value).hexdigest().encode()
