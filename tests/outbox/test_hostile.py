"""Hostile input at ``outbox.add``: the rule of ``publish``. A value ``publish`` refuses is that
event's error at ``add`` (the same ``EventValidationError``, or the documented error) before
anything is written; never a raw exception, and never a row the relay cannot publish.

Generated events and call arguments, valid and hostile (``tests/properties``), go through
``add``/``add_many`` and through ``FakePublisher.publish``; both must reach the same verdict.
What ``add`` wrote is then relayed and consumed back, byte for byte.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventwire
from eventwire import outbox
from eventwire.testing import FakePublisher
from tests.outbox.conftest import Database, Kafka, OrderPlaced
from tests.properties.settings import campaign
from tests.properties.strategies import Case, cases, hostile_values
from tests.properties.test_publishers_agree import verdict

Sent = dict[str, tuple[bytes, bytes | None, bytes]]  # ce_id -> (value, key, ce_type)


def fuzz_config(kafka: Kafka, **settings: Any) -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(
        bootstrap_servers=kafka.broker.bootstrap_servers,
        topic_map={"fuzz": kafka.topic, "orders": kafka.topic},
        **settings,
    )


def outcome_of(call: Any) -> Any:
    """What a call returned, or the error it raised (``EventwireError`` or ``TypeError``:
    anything else is a raw exception and fails the test)."""
    try:
        return call()
    except (eventwire.EventwireError, TypeError) as exc:
        return exc


def expected_record(event: Any, key: bytes | None) -> tuple[bytes, bytes | None, bytes]:
    spec = eventwire.inspect.spec_of(type(event))
    return msgspec.json.encode(event), key, spec.type.encode()


def relay_and_consume(database: Database, kafka: Kafka, sent: Sent) -> None:
    """Relay what ``add`` wrote; the topic then holds exactly ``sent``, and the table is empty."""
    report = outbox.OutboxRelay(database.url, fuzz_config(kafka)).run(once=True)
    assert (report.published, report.left) == (len(sent), 0)
    records = kafka.broker.consume(kafka.topic, count=len(sent)) if sent else []
    consumed = {
        (r.header("ce_id") or b"").decode(): (r.value, r.key, r.header("ce_type") or b"")
        for r in records
    }
    assert consumed == sent
    assert database.rows() == 0


def call_arguments() -> st.SearchStrategy[dict[str, Any]]:
    """``key=``, ``headers=`` and ``topic=`` of a call: valid, or hostile (a lone surrogate in
    a header name, a key of another type, a topic that is not a str...)."""
    return st.fixed_dictionaries(
        {},
        optional={
            "key": st.text(max_size=3) | hostile_values(),
            "headers": st.dictionaries(st.text(max_size=3), st.text(max_size=3) | hostile_values())
            | st.lists(st.tuples(st.text(max_size=3) | hostile_values(), st.binary(max_size=3)))
            | hostile_values(),
            "topic": st.just("fuzz") | hostile_values(),
        },
    )


def given_key(event: Any, arguments: dict[str, Any]) -> bytes | None:
    key = arguments.get("key")
    if key is None:  # the event's own key
        return eventwire.codec.EventCodec().encode(event).key
    return str.encode(key) if isinstance(key, str) else bytes(memoryview(key))


def test_add_refuses_what_publish_refuses_and_relays_the_rest(
    database: Database, kafka: Kafka
) -> None:
    config = fuzz_config(kafka)
    sent: Sent = {}
    refused: list[str] = []
    with FakePublisher(config) as fake:

        @campaign(40, share=0.01)
        @given(case=cases(), arguments=call_arguments())
        def add(case: Case, arguments: dict[str, Any]) -> None:
            published = outcome_of(lambda: fake.publish(case.event, **arguments))
            before = database.rows()
            with database.engine.begin() as conn:
                added = outcome_of(lambda: outbox.add(conn, case.event, config=config, **arguments))
            if isinstance(added, str):
                assert isinstance(published, eventwire.DeliveryReceipt), published
                assert database.rows() == before + 1
                sent[added] = expected_record(case.event, given_key(case.event, arguments))
            else:
                assert verdict(added) == verdict(published)
                assert database.rows() == before, "a refused event wrote a row"
                refused.append(type(added).__name__)

        add()
    print(f"add: {len(sent)} added, {len(refused)} refused ({sorted(set(refused))})")
    assert sent, "the campaign added no valid event"
    assert refused, "the campaign refused no event"
    relay_and_consume(database, kafka, sent)


def test_add_many_refuses_a_batch_with_one_hostile_event_and_writes_none(
    database: Database, kafka: Kafka
) -> None:
    config = fuzz_config(kafka)
    sent: Sent = {}
    with FakePublisher(config) as fake:

        @campaign(25, share=0.005)
        @given(batch=st.lists(cases(), min_size=1, max_size=5))
        def add_many(batch: list[Case]) -> None:
            events = [case.event for case in batch]
            outcomes = fake.publish_many(events)
            refused = [o for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt)]
            before = database.rows()
            with database.engine.begin() as conn:
                added = outcome_of(lambda: outbox.add_many(conn, events, config=config))
            if refused:  # the first event publish refuses is add_many's error
                assert verdict(added) == verdict(refused[0])
                assert database.rows() == before
            else:
                assert isinstance(added, list), added
                assert database.rows() == before + len(events)
                for event, event_id in zip(events, added, strict=True):
                    sent[event_id] = expected_record(event, given_key(event, {}))

        add_many()
    relay_and_consume(database, kafka, sent)


@eventwire.event(topic="orders", key="order_id", type="test.outbox.loose", version=1)
class Loose(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    amount: float = 1.0
    count: int = 1
    extra: Any = None


#: The hostile values the issue names, each with the path ``EventValidationError`` gives.
NAMED: list[tuple[Loose, dict[str, Any], str]] = [
    (Loose(order_id="o\ud800"), {}, "$.order_id"),
    (Loose(order_id="o", amount=float("nan")), {}, "$.amount"),
    (Loose(order_id="o", count=2**70), {}, "$.count"),
    (Loose(order_id="o", extra=object()), {}, "$.extra"),
    (Loose(order_id="o", extra={1j: 2}), {}, "$.extra[...]"),
    (Loose(order_id="o"), {"headers": {"h\udc80": "x"}}, "headers"),
    (Loose(order_id="o"), {"headers": {"h": 1.5}}, "headers"),
    (Loose(order_id="o"), {"key": 5}, "key"),
    (Loose(order_id="o"), {"topic": b"orders"}, "topic"),
]


def test_the_named_hostile_values_are_that_events_error_and_write_nothing(
    database: Database,
) -> None:
    with FakePublisher() as fake:
        for event, arguments, path in NAMED:
            published = outcome_of(lambda e=event, a=arguments: fake.publish(e, **a))  # type: ignore[misc]
            with database.engine.begin() as conn:
                added = outcome_of(lambda c=conn, e=event, a=arguments: outbox.add(c, e, **a))  # type: ignore[misc]
                kept = outbox.add(conn, Loose(order_id="after"))  # the transaction goes on
            assert isinstance(added, eventwire.EventValidationError), (path, added)
            assert added.path == path
            assert verdict(added) == verdict(published)
            assert isinstance(kept, str)
    assert database.rows() == len(NAMED)  # only the valid events that followed


@pytest.mark.parametrize("events", [5, None, "ab", b"ab", OrderPlaced(order_id="o", seq=1)])
def test_add_many_takes_an_iterable_of_events_as_publish_many(
    database: Database, events: Any
) -> None:
    with FakePublisher() as fake:
        published = outcome_of(lambda: fake.publish_many(events))
    with database.engine.begin() as conn:
        added = outcome_of(lambda: outbox.add_many(conn, events))
    assert isinstance(published, TypeError)
    assert isinstance(added, TypeError)
    assert str(added) == str(published).replace("publish", "outbox.add")
    assert database.rows() == 0


@eventwire.event(topic="orders", key="order_id", type="test.outbox.note", version=1)
class Note(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    text: str


def largest_note(config: eventwire.PublisherConfig, limit: int) -> int:
    """The longest ``text`` whose record fits ``message.max.bytes`` = ``limit``, by the
    arithmetic ``add`` uses (``_size.wire_size``; each character of ``text`` is a byte)."""
    from eventwire.outbox._size import wire_size

    codec = eventwire.codec.EventCodec(source=config.ce_source)
    base = wire_size(codec.encode(Note(order_id="o-1", text="")))
    return limit - base


def test_a_record_over_message_max_bytes_is_refused_at_add_as_publish_refuses_it(
    database: Database, kafka: Kafka
) -> None:
    """At the limit, ``add`` writes the row and the relay publishes it; one byte over, ``add``
    raises the ``PermanentPublishError`` a real ``publish`` raises (librdkafka's own check),
    and writes nothing. Near the limit the two agree byte for byte."""
    limit = 3000
    overrides = {"message.max.bytes": limit}
    config = fuzz_config(kafka, librdkafka_overrides=overrides)
    fits = largest_note(config, limit)
    lengths = [fits - 1, fits, fits + 1, fits + 2]
    sent: Sent = {}
    with eventwire.Publisher(config) as publisher, database.engine.begin() as conn:
        for length in lengths:
            note = Note(order_id="o-1", text="x" * length)
            published = outcome_of(lambda n=note: publisher.publish(n))
            added = outcome_of(lambda c=conn, n=note: outbox.add(c, n, config=config))  # type: ignore[misc]
            if isinstance(published, eventwire.DeliveryReceipt):
                assert isinstance(added, str), length
                sent[added] = expected_record(note, b"o-1")
            else:
                assert isinstance(published, eventwire.PermanentPublishError), published
                assert isinstance(added, eventwire.PermanentPublishError), length
                assert "message.max.bytes=3,000" in str(added)
    assert len(sent) == 2  # fits - 1 and fits; one and two bytes over were refused
    consumed_before = kafka.broker.consume(kafka.topic, count=2)  # what publish sent
    assert len(consumed_before) == 2
    relay = outbox.OutboxRelay(database.url, config)
    report = relay.run(once=True)
    assert (report.published, report.left) == (2, 0)
    records = kafka.broker.consume(kafka.topic, count=4)
    relayed = {
        (r.header("ce_id") or b"").decode(): (r.value, r.key, r.header("ce_type") or b"")
        for r in records
        if (r.header("ce_id") or b"").decode() in sent
    }
    assert relayed == sent
