"""The spool through an outage long enough to exhaust the retry policy: per-key order holds
(a parked event keeps its key: nothing later of that key overtakes it), nothing is lost, a
parked event is not a failure (logs, counters, close report), and its span starts in the
caller's context and ends only with its final outcome."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from opentelemetry.trace import StatusCode

import eventwire
from eventwire.testing import ConsumedRecord, ProxiedBroker, capture_logs
from tests.events import order
from tests.integration.test_observability import Otel, otel  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(120)

KEYS = ("k0", "k1", "k2", "k3")


def _config(broker: ProxiedBroker, path: Path, topic: str, **changes: Any) -> Any:
    """Retries that run out within an outage of a few seconds, and no breaker: the events
    are produced, time out, are retried once, then parked."""
    settings: dict[str, Any] = {
        "bootstrap_servers": broker.bootstrap_servers,
        "topic_map": {"orders": topic},
        "spool_path": path,
        "delivery_timeout": 1.0,
        "retry": eventwire.RetryPolicy(attempts=2, base=0.05, cap=0.1, deadline=5.0),
        "breaker": None,
        "librdkafka_overrides": {
            "socket.timeout.ms": 1_000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
        },
    }
    settings.update(changes)
    return eventwire.PublisherConfig(**settings)


def _sequence(record: ConsumedRecord) -> int:
    """The ``n`` of ``order(n)``: its first line item's SKU is ``SKU-{n:06d}-0``."""
    sku: str = msgspec.json.decode(record.value)["line_items"][0]["sku"]
    return int(sku.split("-")[1])


def _per_key(records: list[ConsumedRecord]) -> tuple[dict[bytes, list[int]], set[str], int]:
    """Each key's sequence numbers in log order (first copies only), the ids seen, and how
    many duplicates (a re-send of an event written after all: same ``ce_id``) were skipped."""
    by_key: dict[bytes, list[int]] = collections.defaultdict(list)
    seen: set[str] = set()
    duplicates = 0
    for record in records:  # per partition, in offset order: a key's records in log order
        event_id = (record.header("ce_id") or b"").decode()
        if event_id in seen:
            duplicates += 1
            continue
        seen.add(event_id)
        assert record.key is not None
        by_key[record.key].append(_sequence(record))
    return by_key, seen, duplicates


def _spans_of(recorded: Otel, topic: str, event_id: str) -> list[Any]:
    return [
        s
        for s in recorded.finished(f"send {topic}")
        if s.attributes and s.attributes.get("messaging.message.id") == event_id
    ]


async def _until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.02)  # polls a condition; nothing to await


@pytest.mark.parametrize(
    "breaker",
    [None, eventwire.BreakerPolicy(failures=1, window=5.0, cooldown=0.2)],
    ids=["no-breaker", "breaker"],
)
async def test_per_key_order_and_no_loss_when_retries_run_out(
    proxied: ProxiedBroker, tmp_path: Path, breaker: eventwire.BreakerPolicy | None
) -> None:
    """With a breaker, events accepted while it is open wait in the spool too (the other
    parking path) and go behind the parked ones of their key."""
    topic = proxied.unique_topic()
    config = _config(proxied, tmp_path / "s.db", topic, breaker=breaker)
    handles: list[eventwire.Accepted] = []
    counter = iter(range(1_000_000))
    states: set[str] = set()

    async def accept_chunk(publisher: eventwire.AsyncPublisher) -> None:
        chunk = [order(n, key=KEYS[n % len(KEYS)]) for n in (next(counter) for _ in range(20))]
        for accepted in await publisher.accept_many(chunk):
            assert isinstance(accepted, eventwire.Accepted)
            handles.append(accepted)

    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            for _ in range(3):
                await accept_chunk(publisher)
            proxied.proxy.cut()

            def parked() -> bool:
                return any(e["event"] == "eventwire.spooled_for_retry" for e in logs)

            # Events keep coming during the outage: in flight, then held behind their keys.
            while not parked():
                await accept_chunk(publisher)
                states.add(publisher.breaker_state)
                await asyncio.sleep(0.05)  # pacing the producer, not synchronisation
                assert len(handles) < 20_000, "no event was parked"
            states.add(publisher.breaker_state)  # a retry due while it is open parks at once
            await accept_chunk(publisher)
            proxied.proxy.restore()  # the broker is back before the parked events' re-send
            for _ in range(3):
                await accept_chunk(publisher)
            receipts = await asyncio.wait_for(
                asyncio.gather(*(a.delivered() for a in handles)), timeout=60
            )
            health = publisher.health()
            report = await publisher.aclose()
    assert len(receipts) == len(handles)
    records = proxied.consume(topic, timeout=30)
    by_key, seen, duplicates = _per_key(records)
    print(f"\n{len(handles)} accepted, {len(records)} records, {duplicates} duplicates")
    assert seen == {a.event_id for a in handles}  # 0 lost
    for key, sequence in by_key.items():
        assert sequence == sorted(sequence), f"key {key!r} out of order"
    events = [e["event"] for e in logs]
    assert events.count("eventwire.spooled_for_retry") >= 1
    assert "eventwire.publish_failed" not in events
    parked_ids = {e["event_id"] for e in logs if e["event"] == "eventwire.spooled_for_retry"}
    assert parked_ids <= seen
    assert health.failed == 0
    if breaker is not None:
        assert "open" in states  # events accepted meanwhile were parked by the spool
    assert health.delivered == len(handles)
    assert (report.delivered, report.failed, report.spooled) == (len(handles), 0, 0)


async def test_parked_event_span_has_the_callers_parent_and_ends_with_its_delivery(
    proxied: ProxiedBroker,
    tmp_path: Path,
    otel: Otel,  # noqa: F811 - the fixture
) -> None:
    topic = proxied.unique_topic()
    config = _config(proxied, tmp_path / "s.db", topic, telemetry=otel.telemetry)
    tracer = otel.tracer_provider.get_tracer("test")
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            await publisher.publish(order(0))
            proxied.proxy.cut()
            with tracer.start_as_current_span("handle-request") as caller:
                accepted = await publisher.accept(order(1))
            await _until(
                lambda: any(
                    e["event"] == "eventwire.spooled_for_retry"
                    and e["event_id"] == accepted.event_id
                    for e in logs
                ),
                20,
                "the event was parked",
            )
            assert not _spans_of(otel, topic, accepted.event_id), "a parked failure ended it"
            proxied.proxy.restore()
            receipt = await asyncio.wait_for(accepted.delivered(), timeout=30)
    spans = _spans_of(otel, topic, accepted.event_id)
    assert len(spans) == 1
    span = spans[0]
    assert span.parent is not None
    assert span.parent.span_id == caller.get_span_context().span_id
    assert span.context is not None
    assert span.context.trace_id == caller.get_span_context().trace_id
    assert span.status.status_code != StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["messaging.kafka.offset"] == receipt.offset
    names = [e.name for e in span.events]
    assert "eventwire.spooled_for_retry" in names
    records = proxied.consume(topic, timeout=20)
    record = next(r for r in records if r.header("ce_id") == accepted.event_id.encode())
    traceparent = (record.header("traceparent") or b"").decode()
    assert f"{caller.get_span_context().trace_id:032x}" in traceparent


async def test_close_with_parked_events_leaves_them_spooled_not_failed(
    proxied: ProxiedBroker, tmp_path: Path
) -> None:
    topic = proxied.unique_topic()
    config = _config(proxied, tmp_path / "s.db", topic)
    with capture_logs() as logs:
        publisher = eventwire.AsyncPublisher(config)
        await publisher.publish(order(0))
        proxied.proxy.cut()
        many = await publisher.accept_many([order(n, key=KEYS[n % 2]) for n in range(1, 41)])
        handles = [a for a in many if isinstance(a, eventwire.Accepted)]
        await _until(
            lambda: any(e["event"] == "eventwire.spooled_for_retry" for e in logs),
            20,
            "an event was parked",
        )
        report = await publisher.aclose(timeout=0.5)
    assert (report.failed, report.spooled, report.delivered) == (0, 40, 1)
    assert publisher.health().failed == 0
    events = [e["event"] for e in logs]
    assert "eventwire.publish_failed" not in events
    closed = [e for e in logs if e["event"] == "eventwire.publisher_closed"]
    assert [(e["failed"], e["spooled"]) for e in closed] == [(0, 40)]
    for accepted in handles:
        with pytest.raises(eventwire.RetriablePublishError) as caught:
            await accepted.delivered()
        assert caught.value.code == "SPOOLED"
    proxied.proxy.restore()
    async with eventwire.AsyncPublisher(config) as again:  # the next start delivers them
        assert again.outstanding == 40
    records = proxied.consume(topic, timeout=20)
    by_key, seen, _ = _per_key(records)
    assert {a.event_id for a in handles} <= seen
    for key, sequence in by_key.items():
        assert sequence == sorted(sequence), f"key {key!r} out of order"
