"""Generated batches, valid and hostile, through the real publishers (the session's local
broker) and the fakes, through the public API only.

For every batch: ``publish_many`` (and ``accept_many`` with a spool) returns one outcome per
event and never raises; the real and the fake publisher reach the same verdict on every event
(delivered, or the same ``EventValidationError`` with the same path and reason); and every
delivered event is consumed back with exactly the bytes, key and type it was published with,
nothing else reaching the topic.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventwire
from eventwire.testing import AsyncFakePublisher, FakePublisher, LocalBroker
from tests.properties.settings import campaign
from tests.properties.strategies import Case, cases, hostile_values

Sent = dict[str, tuple[bytes, bytes | None, bytes]]  # ce_id -> (value, key, ce_type)


def _report(name: str, batches: int, events: int, sent: Sent) -> None:
    """The figures of one property (``pytest -rA`` shows them)."""
    print(f"{name}: {batches} batches, {events} events, {len(sent)} delivered and consumed back")


def verdict(outcome: Any) -> tuple[Any, ...]:
    """What a caller learns from an outcome, comparable across publishers."""
    if isinstance(outcome, eventwire.DeliveryReceipt | eventwire.SyncAccepted):
        return ("delivered",)
    if isinstance(outcome, eventwire.Accepted):
        return ("delivered",)
    if isinstance(outcome, eventwire.EventValidationError):
        return ("invalid", outcome.event_type, outcome.path, outcome.reason)
    return (type(outcome).__name__, str(outcome))


def _expected(event: Any, outcome: Any) -> tuple[bytes, bytes | None, bytes]:
    spec = eventwire.inspect.spec_of(type(event))
    key = None if spec.key is None else eventwire.codec.EventCodec().encode(event).key
    return msgspec.json.encode(event), key, spec.type.encode()


def _assert_consumed(broker: LocalBroker, topic: str, sent: Sent) -> None:
    records = broker.consume(topic, count=len(sent)) if sent else []
    consumed = {
        (r.header("ce_id") or b"").decode(): (r.value, r.key, r.header("ce_type") or b"")
        for r in records
    }
    assert consumed == sent
    assert len(records) == len(sent)


@pytest.fixture
def fuzz_topic(eventwire_broker: LocalBroker) -> tuple[LocalBroker, str]:
    return eventwire_broker, eventwire_broker.unique_topic("fuzz")


def _config(broker: LocalBroker, topic: str, **changes: Any) -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers,
        topic_map={"fuzz": topic},
        delivery_timeout=30.0,
        **changes,
    )


BATCHES = st.lists(cases(), min_size=1, max_size=8)


def test_sync_publish_many_agrees_with_the_fake_and_round_trips(
    fuzz_topic: tuple[LocalBroker, str],
) -> None:
    broker, topic = fuzz_topic
    sent: Sent = {}
    counts: list[int] = []
    config = _config(broker, topic)
    with eventwire.Publisher(config) as real, FakePublisher(config) as fake:

        @campaign(20, share=0.02)
        @given(batch=BATCHES)
        def publish(batch: list[Case]) -> None:
            events = [case.event for case in batch]
            counts.append(len(events))
            outcomes = real.publish_many(events)
            fakes = fake.publish_many(events)
            assert len(outcomes) == len(fakes) == len(events)
            for event, outcome, fake_outcome in zip(events, outcomes, fakes, strict=True):
                assert verdict(outcome) == verdict(fake_outcome)
                assert isinstance(outcome, eventwire.DeliveryReceipt | eventwire.EventwireError)
                if isinstance(outcome, eventwire.DeliveryReceipt):
                    sent[outcome.event_id] = _expected(event, outcome)

        publish()
    _report("sync publish_many", len(counts), sum(counts), sent)
    _assert_consumed(broker, topic, sent)


def test_async_publish_many_agrees_with_the_fake_and_round_trips(
    fuzz_topic: tuple[LocalBroker, str],
) -> None:
    broker, topic = fuzz_topic
    sent: Sent = {}
    counts: list[int] = []
    config = _config(broker, topic)
    loop = asyncio.new_event_loop()
    real = eventwire.AsyncPublisher(config)
    fake = AsyncFakePublisher(config)
    try:

        @campaign(15, share=0.02)
        @given(batch=BATCHES)
        def publish(batch: list[Case]) -> None:
            events = [case.event for case in batch]
            counts.append(len(events))
            outcomes = loop.run_until_complete(real.publish_many(events))
            fakes = loop.run_until_complete(fake.publish_many(events))
            assert len(outcomes) == len(fakes) == len(events)
            for event, outcome, fake_outcome in zip(events, outcomes, fakes, strict=True):
                assert verdict(outcome) == verdict(fake_outcome)
                if isinstance(outcome, eventwire.DeliveryReceipt):
                    sent[outcome.event_id] = _expected(event, outcome)

        publish()
    finally:
        loop.run_until_complete(real.aclose())
        loop.run_until_complete(fake.aclose())
        loop.close()
    _report("async publish_many", len(counts), sum(counts), sent)
    _assert_consumed(broker, topic, sent)


def test_accept_many_with_a_spool_agrees_with_the_fake_and_round_trips(
    fuzz_topic: tuple[LocalBroker, str], tmp_path: Path
) -> None:
    broker, topic = fuzz_topic
    sent: Sent = {}
    counts: list[int] = []
    config = _config(broker, topic, spool_path=str(tmp_path / "spool.db"))
    # The fake keeps a real spool file too: one of its own.
    fake_config = _config(broker, topic, spool_path=str(tmp_path / "fake-spool.db"))
    with eventwire.Publisher(config) as real, FakePublisher(fake_config) as fake:

        @campaign(10, share=0.01)
        @given(batch=BATCHES)
        def accept(batch: list[Case]) -> None:
            events = [case.event for case in batch]
            counts.append(len(events))
            results = real.accept_many(events)
            fakes = fake.accept_many(events)
            assert len(results) == len(fakes) == len(events)
            for event, result, fake_result in zip(events, results, fakes, strict=True):
                assert verdict(result) == verdict(fake_result)
                if isinstance(result, eventwire.SyncAccepted):
                    receipt = result.wait_delivered(timeout=30.0)
                    sent[receipt.event_id] = _expected(event, receipt)

        accept()
    _report("accept_many (spool)", len(counts), sum(counts), sent)
    _assert_consumed(broker, topic, sent)


def _call_arguments() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "key": st.text(max_size=3) | hostile_values(),
            "headers": st.dictionaries(st.text(max_size=3), st.text(max_size=3) | hostile_values())
            | st.lists(st.tuples(st.text(max_size=3) | hostile_values(), st.binary(max_size=3)))
            | hostile_values(),
        },
    )


def test_publish_with_hostile_arguments_raises_the_same_error_and_sends_nothing(
    fuzz_topic: tuple[LocalBroker, str],
) -> None:
    """``key=`` and ``headers=`` of a call: a value ``produce()`` cannot take (a lone
    surrogate in a header name, a key of another type) is refused before anything is sent,
    by the real and the fake publisher alike."""
    broker, topic = fuzz_topic
    sent: Sent = {}
    counts: list[int] = []
    config = _config(broker, topic)
    with eventwire.Publisher(config) as real, FakePublisher(config) as fake:

        @campaign(40, share=0.02)
        @given(case=cases(hostile=False), arguments=_call_arguments())
        def publish(case: Case, arguments: dict[str, Any]) -> None:
            counts.append(1)
            outcomes = []
            for publisher in (real, fake):
                try:
                    outcomes.append(publisher.publish(case.event, **arguments))
                except eventwire.EventwireError as exc:
                    outcomes.append(exc)
            assert verdict(outcomes[0]) == verdict(outcomes[1])
            receipt = outcomes[0]
            if isinstance(receipt, eventwire.DeliveryReceipt):
                value, key, ce_type = _expected(case.event, receipt)
                if arguments.get("key") is not None:  # key=None: the event's own key
                    given_key = arguments["key"]
                    if isinstance(given_key, str):
                        key = str.encode(given_key)
                    else:
                        key = bytes(memoryview(given_key))
                sent[receipt.event_id] = (value, key, ce_type)

        publish()
        assert real.outstanding == 0
    _report("publish(key=, headers=)", len(counts), sum(counts), sent)
    _assert_consumed(broker, topic, sent)
