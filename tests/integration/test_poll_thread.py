"""The poll thread survives anything a step of its loop raises: publishing goes on, the failure
is logged once, and a failure that repeats makes the loop back off instead of spinning.

These tests break the loop on purpose through the transport seam (a librdkafka transport whose
calls raise), or one internal step where the transport cannot reach, then check the public
outcome: events consumed back from the broker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import eventwire
import eventwire.transport
from eventwire.testing import ProxiedBroker, capture_logs
from tests.events import order
from tests.integration.conftest import Topics

#: Bounds a publish that would wait forever on a dead poll thread.
WAIT = 15.0


def _failing(calls: list[float], times: int, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original``, raising RuntimeError on its first ``times`` calls (call times recorded)."""
    lock = threading.Lock()

    def step(*args: Any, **kwargs: Any) -> Any:
        with lock:
            calls.append(time.monotonic())
            if len(calls) <= times:
                raise RuntimeError("injected poll-loop failure")
        return original(*args, **kwargs)

    return step


class _Breaking:
    """A librdkafka transport whose ``poll`` (or ``list_topics``) is wrapped by a test."""

    def __init__(self, settings: Any) -> None:
        self._inner = eventwire.transport.librdkafka_transport(settings)
        self.poll = self._inner.poll
        self.list_topics = self._inner.list_topics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __len__(self) -> int:
        return len(self._inner)


def _breaking(made: list[_Breaking]) -> Callable[[Any], _Breaking]:
    def factory(settings: Any) -> _Breaking:
        made.append(_Breaking(settings))
        return made[-1]

    return factory


def _poll_errors(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [log for log in logs if log["event"] == "eventwire.poll_loop_error"]


async def test_publishing_goes_on_after_a_poll_step_raised_once(
    topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[_Breaking] = []
    async with eventwire.AsyncPublisher(topics.config(), transport=_breaking(made)) as publisher:
        await publisher.publish(order(0, key="k"))
        transport = made[0]
        calls: list[float] = []
        with capture_logs() as logs:
            monkeypatch.setattr(transport, "poll", _failing(calls, 1, transport.poll))
            receipts = [
                await asyncio.wait_for(publisher.publish(order(n, key="k")), WAIT)
                for n in range(1, 21)
            ]
    assert len(calls) > 1  # it failed once, then was called again
    assert len(receipts) == 20
    records = topics.broker.consume(topics.name("orders"), count=21)
    assert [r.header("ce_id") for r in records[1:]] == [r.event_id.encode() for r in receipts]
    errors = _poll_errors(logs)
    assert len(errors) == 1
    assert errors[0]["step"] == "poll_step"
    assert errors[0]["error_type"] == "RuntimeError"
    assert isinstance(errors[0]["exc_info"], RuntimeError)


def test_a_repeating_failure_is_logged_once_and_backs_off(
    topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = 8
    made: list[_Breaking] = []
    with eventwire.Publisher(topics.config(), transport=_breaking(made)) as publisher:
        transport = made[0]
        calls: list[float] = []
        with capture_logs() as logs:
            monkeypatch.setattr(transport, "poll", _failing(calls, failures, transport.poll))
            receipt = publisher.publish(order(1))
    assert len(calls) > failures
    # Without the back-off the failing step would be called again at once (no poll() wait in
    # between): 8 failures in microseconds. With it the loop waits 5+10+20+40+80+100 ms
    # between the 2nd and the 8th; load on the machine can only make this longer.
    assert calls[failures - 1] - calls[0] >= 0.25
    assert len(_poll_errors(logs)) == 1
    records = topics.broker.consume(topics.name("orders"), count=1)
    assert records[0].header("ce_id") == receipt.event_id.encode()


async def test_a_probe_that_raises_counts_as_unreachable(
    topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A metadata request on a closed handle raises RuntimeError, not KafkaException."""

    def closed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Producer has been closed")

    made: list[_Breaking] = []
    async with eventwire.AsyncPublisher(topics.config(), transport=_breaking(made)) as publisher:
        await publisher.publish(order(0))
        monkeypatch.setattr(made[0], "list_topics", closed)
        deadline = time.monotonic() + WAIT
        while (status := publisher.health()).broker_reachable is None:
            assert time.monotonic() < deadline, "the health probe never ran"
            await asyncio.sleep(0.01)
        assert status.broker_reachable is False
        assert not status.ready
        receipt = await asyncio.wait_for(publisher.publish(order(1)), WAIT)
    records = topics.broker.consume(topics.name("orders"), count=2)
    assert receipt.event_id.encode() in {r.header("ce_id") for r in records}


async def test_a_retry_whose_resend_raised_is_sent_again(
    proxied: ProxiedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-send that raises something unexpected keeps its key due: the event is sent on a
    later step instead of its key waiting for ever."""
    proxied.create_topic("orders", 3)
    config = eventwire.PublisherConfig(
        bootstrap_servers=proxied.bootstrap_servers,
        delivery_timeout=1.0,
        retry=eventwire.RetryPolicy(attempts=5, deadline=60.0, base=0.05, cap=0.1),
        breaker=None,
    )
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(0, key="k"))
        intake = publisher._core.intake
        calls: list[float] = []
        resend_failed = threading.Event()
        failing = _failing(calls, 1, intake.send)

        def send(*args: Any) -> Any:
            try:
                return failing(*args)
            finally:
                resend_failed.set()

        monkeypatch.setattr(intake, "send", send)
        with capture_logs() as logs:
            proxied.proxy.cut()  # the first attempt times out (1 s): a retry is due
            task = asyncio.create_task(publisher.publish(order(1, key="k")))
            assert await asyncio.to_thread(resend_failed.wait, WAIT)
            proxied.proxy.restore()
            receipt = await asyncio.wait_for(task, WAIT)
    assert len(calls) >= 2  # raised once, then called again
    records = proxied.consume("orders", count=2)
    assert receipt.event_id.encode() in {r.header("ce_id") for r in records}
    errors = _poll_errors(logs)
    assert [e["step"] for e in errors] == ["resend_step"]


def test_an_event_that_meets_a_closed_producer_is_handed_on_or_refused(topics: Topics) -> None:
    """``produce()`` on a closed librdkafka producer raises RuntimeError. A replacement may
    retire and close the producer a caller read a moment before: the event goes to the
    current one. On the publisher's own closed producer: PublisherClosedError, not accepted."""
    from confluent_kafka import Producer

    retired = Producer({"bootstrap.servers": topics.broker.bootstrap_servers})
    retired.close()
    with eventwire.Publisher(topics.config()) as publisher:
        core = publisher._core
        handle = _FirstReadRetired(core.handle, retired)
        core.intake._handle = handle  # type: ignore[assignment]
        receipt = publisher.publish(order(1))
    current = core.handle.transport
    # The publish read the retired producer, met it closed, and went to the current one.
    assert handle.given[0] is retired
    assert handle.given[1:] == [current] * (len(handle.given) - 1) != []
    [record] = topics.broker.consume(topics.name("orders"), count=1)
    assert (record.partition, record.offset) == (receipt.partition, receipt.offset)

    closed = eventwire.Publisher(topics.config())
    closed.close()
    record = closed._core.record(closed._codec.encode(order(2)), _NoSink())
    with pytest.raises(eventwire.PublisherClosedError):
        closed._core.produce(record)


class _FirstReadRetired:
    """The core's producer handle, whose first read gives a producer a replacement retired
    and closed in between; every later read (and the rest) is the real handle's."""

    def __init__(self, handle: Any, retired: Any) -> None:
        self._handle = handle
        self._retired = retired
        self.given: list[object] = []

    @property
    def transport(self) -> Any:
        transport = self._retired if not self.given else self._handle.transport
        self.given.append(transport)
        return transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


class _NoSink:
    def settle(self, record: Any, outcome: Any) -> None:
        raise AssertionError("an event not accepted has no outcome")


async def test_outcomes_are_settled_on_the_loop_thread_only(topics: Topics) -> None:
    # The acceptance check without relying on PYTHONASYNCIODEBUG being set by the caller:
    # debug mode on here (call_soon from another thread raises), and every call_soon the
    # publisher's work makes is recorded with its thread. Futures wake their tasks through
    # call_soon, so a future resolved off the loop thread shows up as a foreign thread.
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    threads: set[int] = set()
    original = loop.call_soon

    def call_soon(*args: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return original(*args, **kwargs)

    loop.call_soon = call_soon  # type: ignore[method-assign]
    try:
        config = topics.config(librdkafka_overrides={"message.max.bytes": 100_000})
        async with eventwire.AsyncPublisher(config) as publisher:
            single = await asyncio.gather(*(publisher.publish(order(n)) for n in range(100)))
            outcomes = await publisher.publish_many(
                [order(100), order(101, notes="x" * 200_000), order(102, currency="bad")]
            )
    finally:
        del loop.call_soon
    assert threads == {threading.get_ident()}
    assert [type(o).__name__ for o in outcomes] == [
        "DeliveryReceipt",
        "PermanentPublishError",
        "EventValidationError",
    ]
    records = topics.broker.consume(topics.name("orders"), count=101)
    assert {(r.header("ce_id") or b"").decode() for r in records} == {
        r.event_id for r in [*single, outcomes[0]] if isinstance(r, eventwire.DeliveryReceipt)
    }
