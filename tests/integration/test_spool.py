"""The durable spool in one process: accept, publish through it, replay, refusal of bad files,
an open breaker spools, a full spool waits then fails, closing leaves the rest in the file."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import resource
import select
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import eventwire
import eventwire.codec
from eventwire._durable.sqlite import SqliteStore
from eventwire._durable.store import StoredEvent
from eventwire.testing import ProxiedBroker, capture_logs
from tests.events import order
from tests.integration.conftest import Topics

pytestmark = pytest.mark.timeout(90)


def _rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def _ids(records: list[eventwire.testing.ConsumedRecord]) -> list[str]:
    return [(r.header("ce_id") or b"").decode() for r in records]


async def test_accept_returns_durable_then_delivers(topics: Topics, tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    async with eventwire.AsyncPublisher(topics.config(spool_path=path)) as publisher:
        accepted = await publisher.accept(order(1))
        assert _rows(path) in (0, 1)  # durable now; deleted once delivered
        receipt = await accepted.delivered()
        assert receipt.event_id == accepted.event_id
        many = await publisher.accept_many([order(n) for n in range(2, 202)])
        handles = [a for a in many if isinstance(a, eventwire.Accepted)]
        assert len(handles) == 200
        receipts = await asyncio.gather(*(a.delivered() for a in handles))
    records = topics.broker.consume(topics.name("orders"), count=201)
    assert sorted(_ids(records)) == sorted([accepted.event_id] + [r.event_id for r in receipts])
    assert _rows(path) == 0


async def test_publish_and_publish_many_through_the_spool(topics: Topics, tmp_path: Path) -> None:
    config = topics.config(spool_path=tmp_path / "s.db")
    async with eventwire.AsyncPublisher(config) as publisher:
        receipt = await publisher.publish(order(0))
        outcomes = await publisher.publish_many([order(n, key=f"k{n % 7}") for n in range(1, 3001)])
        report = await publisher.aclose()
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes)
    assert report.spooled == 0
    assert report.delivered == 3001
    records = topics.broker.consume(topics.name("orders"), count=3001)
    assert set(_ids(records)) == {receipt.event_id} | {
        o.event_id for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)
    }


def test_sync_publisher_through_the_spool(topics: Topics, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with eventwire.Publisher(topics.config(spool_path=path)) as publisher:
        first = publisher.publish(order(0))
        outcomes = publisher.publish_many([order(n) for n in range(1, 1001)])
    assert all(isinstance(o, eventwire.DeliveryReceipt) for o in outcomes)
    records = topics.broker.consume(topics.name("orders"), count=1001)
    assert first.event_id in _ids(records)
    assert _rows(path) == 0


async def test_replay_keeps_ce_id_and_goes_before_new_events_of_a_key(
    topics: Topics, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    codec = eventwire.codec.EventCodec(resolve_topic=topics.config()._resolve_topic)
    old = [codec.encode(order(n, key="same")) for n in range(50)]
    _write_without_producing(path, old)
    async with eventwire.AsyncPublisher(topics.config(spool_path=path)) as publisher:
        assert publisher.outstanding == 50
        assert publisher.health().spool_backlog == 50
        new = await publisher.publish_many([order(n, key="same") for n in range(50, 60)])
    records = topics.broker.consume(topics.name("orders"), count=60)
    expected = [e.event_id for e in old] + [
        o.event_id for o in new if isinstance(o, eventwire.DeliveryReceipt)
    ]
    assert _ids(records) == expected  # one key, one partition: replayed first, in order
    assert records[0].value == old[0].value
    assert _rows(path) == 0
    assert publisher.health().spool_backlog == 0


def _write_without_producing(path: Path, events: list[eventwire.codec.EncodedEvent]) -> None:
    """What a process killed between the spool commit and produce() leaves behind."""
    store = SqliteStore(path)
    store.commit([StoredEvent(seq, None, enc) for seq, enc in enumerate(events, 1)], [])
    store.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a database at all" * 200, "not a usable eventwire spool"),
        (None, "not an eventwire spool"),
    ],
)
def test_foreign_or_corrupt_file_is_refused_at_start(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "s.db"
    if content is None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE t (x)")
    else:
        path.write_bytes(content)
    # The spool is checked before librdkafka starts: it used to connect (and log its
    # connection errors) before the SpoolError. A listening socket sees any attempt.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        host, port = listener.getsockname()
        config = eventwire.PublisherConfig(bootstrap_servers=f"{host}:{port}", spool_path=path)
        with capture_logs() as logs, pytest.raises(eventwire.SpoolError, match=message):
            eventwire.Publisher(config)
        readable, _, _ = select.select([listener], [], [], 1.0)
    assert readable == [], "librdkafka connected before the spool was refused"
    assert logs == []


def test_damaged_spool_is_refused_at_start(tmp_path: Path, topics: Topics) -> None:
    path = tmp_path / "s.db"
    codec = eventwire.codec.EventCodec()
    _write_without_producing(path, [codec.encode(order(n)) for n in range(2000)])
    data = bytearray(path.read_bytes())
    assert len(data) > 16 * 4096
    data[8 * 4096 : 12 * 4096] = b"\xa5" * (4 * 4096)  # scribble over table pages
    path.write_bytes(bytes(data))
    with pytest.raises(eventwire.SpoolError, match=r"corrupt|usable"):
        eventwire.Publisher(topics.config(spool_path=path))


def test_one_publisher_per_spool_file(topics: Topics, tmp_path: Path) -> None:
    config = topics.config(spool_path=tmp_path / "s.db")
    with eventwire.Publisher(config), pytest.raises(eventwire.SpoolError, match="in use"):
        eventwire.Publisher(config)


def _outage_config(
    broker: ProxiedBroker, path: Path, **changes: object
) -> eventwire.PublisherConfig:
    settings: dict[str, object] = {
        "bootstrap_servers": broker.bootstrap_servers,
        "spool_path": path,
        "delivery_timeout": 30.0,
        "breaker": eventwire.BreakerPolicy(failures=1, window=5.0, cooldown=0.2),
        "librdkafka_overrides": {
            "socket.timeout.ms": 2_000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
        },
    }
    settings.update(changes)
    return eventwire.PublisherConfig(**settings)  # type: ignore[arg-type]


async def test_open_breaker_spools_and_drains_when_it_closes(
    proxied: ProxiedBroker, tmp_path: Path
) -> None:
    topic = proxied.unique_topic()
    path = tmp_path / "s.db"
    config = _outage_config(proxied, path, topic_map={"orders": topic})
    async with eventwire.AsyncPublisher(config) as publisher:
        await publisher.publish(order(0))
        proxied.proxy.cut()
        deadline = time.monotonic() + 20
        # Polls a state with a deadline; the breaker has no event to await.
        while publisher.breaker_state == "closed" and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the breaker hears _ALL_BROKERS_DOWN from librdkafka
        assert publisher.breaker_state != "closed"
        accepted = await publisher.accept_many([order(n) for n in range(1, 101)])
        handles = [a for a in accepted if isinstance(a, eventwire.Accepted)]
        assert len(handles) == 100  # spooled, not failed
        assert _rows(path) >= 100
        health = publisher.health()
        assert health.spool_backlog == 100
        assert health.spool_oldest_age is not None
        assert 0 <= health.spool_oldest_age < 30
        proxied.proxy.restore()
        receipts = await asyncio.wait_for(
            asyncio.gather(*(a.delivered() for a in handles)), timeout=30
        )
    assert len(receipts) == 100
    records = proxied.consume(topic, timeout=20)
    counts = collections.Counter(_ids(records))
    assert {a.event_id for a in handles} <= set(counts)
    assert _rows(path) == 0


async def test_full_spool_waits_then_fails_and_close_is_bounded(
    proxied: ProxiedBroker, tmp_path: Path
) -> None:
    topic = proxied.unique_topic()
    path = tmp_path / "s.db"
    config = _outage_config(
        proxied, path, topic_map={"orders": topic}, spool_max_events=20, spool_full_timeout=0.5
    )
    publisher = eventwire.AsyncPublisher(config)
    await publisher.publish(order(0))
    proxied.proxy.cut()
    accepted = await publisher.accept_many([order(n) for n in range(1, 21)])
    assert all(isinstance(a, eventwire.Accepted) for a in accepted)
    started = time.monotonic()
    with pytest.raises(eventwire.SpoolFullError, match="spool stayed full"):
        await publisher.accept(order(21))
    assert 0.5 <= time.monotonic() - started < 2.0
    started = time.monotonic()
    report = await publisher.aclose(timeout=2.0)
    assert time.monotonic() - started < 3.0
    assert report.spooled == 20
    assert report.failed == 0
    assert _rows(path) == 20
    proxied.proxy.restore()
    async with eventwire.AsyncPublisher(config) as again:  # the next start delivers the rest
        assert again.outstanding == 20
    records = proxied.consume(topic, timeout=20)
    expected = {a.event_id for a in accepted if isinstance(a, eventwire.Accepted)}
    assert expected <= set(_ids(records))
    assert _rows(path) == 0


async def test_unused_publisher_releases_the_spool(topics: Topics, tmp_path: Path) -> None:
    config = topics.config(spool_path=tmp_path / "s.db")
    report = await eventwire.AsyncPublisher(config).aclose()
    assert report.spooled == 0
    async with eventwire.AsyncPublisher(config) as again:  # the lock was released
        await again.accept(order(1))


def test_a_submit_after_the_writer_was_told_to_stop_is_refused(
    topics: Topics, tmp_path: Path
) -> None:
    """The writer commits what it holds and exits: a later submit would wait for a commit
    that never comes, so it is refused (the race a close from another thread could hit)."""
    path = tmp_path / "s.db"
    publisher = eventwire.Publisher(topics.config(spool_path=path))
    try:
        spool = publisher._relay
        assert spool is not None
        encoded = publisher._codec.encode(order(1))
        spool.stop(5.0)
        with pytest.raises(eventwire.PublisherClosedError):
            spool.submit([(encoded, None, 0)], None)
    finally:
        publisher.close(timeout=5.0)
    assert _rows(path) == 0


@contextlib.contextmanager
def _disk_full_past(limit: int) -> Iterator[None]:
    """This process cannot write a file past ``limit`` bytes (EFBIG, as a full disk)."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


async def _accept_into(
    publisher: eventwire.AsyncPublisher, handles: list[eventwire.Accepted], count: int
) -> None:
    for n in range(1, count):
        handles.append(await publisher.accept(order(n, key=f"k{n % 5}")))


async def test_failed_commit_refuses_events_and_shows_in_health_and_close(
    topics: Topics, tmp_path: Path
) -> None:
    # The events of the failed commit were counted in the backlog for ever: close waited its
    # whole timeout and reported them spooled; health stayed ready while every accept failed.
    path = tmp_path / "s.db"
    async with eventwire.AsyncPublisher(topics.config(spool_path=path)) as publisher:
        await (await publisher.accept(order(0))).delivered()
        handles: list[eventwire.Accepted] = []
        with _disk_full_past(1_000_000), pytest.raises(eventwire.SpoolError) as caught:
            await _accept_into(publisher, handles, 20_000)
        assert "commit failed" in str(caught.value)
        with pytest.raises(eventwire.SpoolError):
            await publisher.accept(order(0))
        receipts = await asyncio.gather(*(a.delivered() for a in handles))
        health = publisher.health()
        assert not health.ready
        assert any(reason.startswith("spool failed") for reason in health.reasons)
        assert health.spool_backlog == 0
        started = time.monotonic()
        report = await publisher.aclose(timeout=10.0)
    assert time.monotonic() - started < 5.0
    assert (report.delivered, report.failed, report.spooled, report.timed_out) == (
        len(handles) + 1,
        0,
        0,
        False,
    )
    records = topics.broker.consume(topics.name("orders"), count=len(handles) + 1)
    assert {r.event_id for r in receipts} <= set(_ids(records))


@eventwire.event(topic="orders", key="account_id", type="account.opened", version=1)
class AccountOpenedV1(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    owner: str


# Version 2 of the same event, as the next release declares it: a new optional field and a
# renamed type. Rows spooled by version 1 must be replayed as they were written.
@eventwire.event(topic="orders", key="account_id", type="account.registered", version=2)
class AccountOpenedV2(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    owner: str
    email: str | None = None


async def test_rows_of_an_older_event_version_replay_as_written(
    topics: Topics, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    codec = eventwire.codec.EventCodec(resolve_topic=topics.config()._resolve_topic)
    old = [codec.encode(AccountOpenedV1(account_id=f"a{n % 5}", owner=f"o{n}")) for n in range(40)]
    _write_without_producing(path, old)  # what a process killed after the commit leaves
    async with eventwire.AsyncPublisher(topics.config(spool_path=path)) as publisher:
        new = await publisher.publish(AccountOpenedV2(account_id="a0", owner="new", email="e@x"))
    records = topics.broker.consume(topics.name("orders"), count=41)
    assert len(records) == 41
    by_id = {(r.header("ce_id") or b"").decode(): r for r in records}
    for enc in old:
        record = by_id.pop(enc.event_id)
        assert (record.key, record.value) == (enc.key, enc.value)
        assert record.header("ce_type") == b"account.opened"
    [(new_id, fresh)] = by_id.items()
    assert new_id == new.event_id
    assert fresh.header("ce_type") == b"account.registered"
    assert msgspec.json.decode(fresh.value)["email"] == "e@x"
    assert _rows(path) == 0


async def test_a_spool_reopened_with_another_prefix_replays_to_the_topics_it_was_accepted_for(
    topics: Topics, tmp_path: Path
) -> None:
    # A row holds the topic resolved when the event was accepted: a restart with another
    # topic_prefix does not move it (docs/spool.md, "Replay").
    path = tmp_path / "s.db"
    staging = topics.config(topic_prefix=topics.prefix + "staging.")
    topics.broker.create_topics([topics.prefix + "staging.orders"], 3)
    codec = eventwire.codec.EventCodec(resolve_topic=staging._resolve_topic)
    old = [codec.encode(order(n)) for n in range(10)]
    _write_without_producing(path, old)
    async with eventwire.AsyncPublisher(topics.config(spool_path=path)) as publisher:
        new = await publisher.publish(order(10))
    replayed = topics.broker.consume(topics.prefix + "staging.orders", count=10)
    assert sorted(_ids(replayed)) == sorted(e.event_id for e in old)
    assert _ids(topics.broker.consume(topics.name("orders"), count=1)) == [new.event_id]


@pytest.mark.parametrize("kept", [0.5, 0.95])
def test_truncated_spool_is_refused_naming_its_path(tmp_path: Path, kept: float) -> None:
    path = tmp_path / "s.db"
    _write_without_producing(
        path, [eventwire.codec.EventCodec().encode(order(n)) for n in range(2000)]
    )
    os.truncate(path, int(path.stat().st_size * kept))
    config = eventwire.PublisherConfig(bootstrap_servers="127.0.0.1:9", spool_path=path)
    with pytest.raises(eventwire.SpoolError, match=re.escape(repr(str(path)))):
        eventwire.Publisher(config)
    assert path.stat().st_size > 0  # left as it was, for the operator to inspect


async def test_an_event_larger_than_the_producer_queue_does_not_wedge_the_spool(
    topics: Topics, tmp_path: Path
) -> None:
    # The writer waited for queue room that could never come: every later accept hung, and
    # the row would have been replayed (and hung again) at every start.
    config = topics.config(
        spool_path=tmp_path / "s.db", librdkafka_overrides={"queue.buffering.max.kbytes": 1}
    )
    publisher = eventwire.AsyncPublisher(config)
    big = await asyncio.wait_for(publisher.accept(order(1, notes="x" * 5_000)), 10)
    small = await asyncio.wait_for(publisher.accept(order(2)), 10)
    receipt = await asyncio.wait_for(small.delivered(), 10)
    with pytest.raises(eventwire.PermanentPublishError, match=r"queue\.buffering\.max\.kbytes"):
        await asyncio.wait_for(big.delivered(), 10)
    report = await publisher.aclose(timeout=5.0)
    # The accepted event that failed counts as failed (it counted nowhere).
    assert (report.delivered, report.failed, report.undelivered) == (1, 1, 0)
    assert _ids(topics.broker.consume(topics.name("orders"), count=1)) == [receipt.event_id]
    assert _rows(tmp_path / "s.db") == 0
