"""Typing test for the public API: checked by ``mypy --strict`` (``make typecheck``), and
imported by ``tests/unit/test_typing_module.py`` so it also runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, assert_type

import msgspec

import eventwire
import eventwire.inspect


@eventwire.event(topic="orders", key="order_id", type="order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    created_at: dt.datetime
    total_price: Decimal


def declaration_keeps_the_class() -> None:
    event = OrderPlaced(order_id="o-1", created_at=dt.datetime.now(dt.UTC), total_price=Decimal(1))
    assert_type(event, OrderPlaced)
    assert_type(eventwire.inspect.spec_of(OrderPlaced), eventwire.inspect.EventSpec)


async def async_api(config: eventwire.PublisherConfig, event: OrderPlaced) -> None:
    async with eventwire.AsyncPublisher(config) as publisher:
        assert_type(publisher, eventwire.AsyncPublisher)
        receipt = await publisher.publish(event, key="k", headers={"tenant": "acme"})
        assert_type(receipt, eventwire.DeliveryReceipt)
        assert_type(receipt.offset, int)
        assert_type(receipt.timestamp, dt.datetime)
        outcomes = await publisher.publish_many([event, event])
        assert_type(outcomes, list[eventwire.DeliveryReceipt | eventwire.EventwireError])
        report = await publisher.aclose(timeout=5.0)
        assert_type(report, eventwire.CloseReport)


def sync_api(config: eventwire.PublisherConfig, event: OrderPlaced) -> None:
    with eventwire.Publisher(config) as publisher:
        assert_type(publisher.publish(event), eventwire.DeliveryReceipt)
        for outcome in publisher.publish_many([event]):
            if isinstance(outcome, eventwire.PublishError):
                assert_type(outcome.event_id, str)
        assert_type(publisher.close(), eventwire.CloseReport)


def config_is_keyword_only() -> eventwire.PublisherConfig:
    return eventwire.PublisherConfig(bootstrap_servers="localhost:9092", preset="throughput")


async def place_order(publisher: eventwire.AsyncPublisherProtocol, event: OrderPlaced) -> int:
    receipt = await publisher.publish(event)
    assert_type(receipt, eventwire.DeliveryReceipt)
    return receipt.offset


def place_order_sync(publisher: eventwire.PublisherProtocol, event: OrderPlaced) -> int:
    return publisher.publish(event).offset


def readiness(publisher: eventwire.AsyncPublisherProtocol | eventwire.PublisherProtocol) -> int:
    status = publisher.health()
    assert_type(status, eventwire.HealthStatus)
    assert_type(status.to_json(), str)
    assert_type(status.spool_backlog, int | None)
    return 200 if status.ready else 503


def telemetry_seam() -> eventwire.PublisherConfig:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    telemetry = eventwire.Telemetry(
        tracer_provider=TracerProvider(), meter_provider=MeterProvider(), statistics_interval=1.0
    )
    return eventwire.PublisherConfig(bootstrap_servers="localhost:9092", telemetry=telemetry)


async def real_and_fake_fit_the_protocols(
    config: eventwire.PublisherConfig, event: OrderPlaced
) -> None:
    from eventwire.testing import AsyncFakePublisher, FakePublisher, PublishedRecord, capture_logs

    async with eventwire.AsyncPublisher(config) as publisher:
        await place_order(publisher, event)
    async with AsyncFakePublisher(config, partitions={"orders": 6}) as fake:
        await place_order(fake, event)
        assert_type(fake.events(OrderPlaced), list[OrderPlaced])
        assert_type(fake.published(OrderPlaced, topic="orders"), list[PublishedRecord])
        assert_type(fake.published(key=7), list[PublishedRecord])  # the key field's own value
        with capture_logs() as logs:
            assert_type(logs, list[dict[str, Any]])
        fake.fail_nth(1, eventwire.PermanentPublishError)
        fake.fail_nth(2, code="NETWORK_EXCEPTION")
        fake.assert_published(event)
    with eventwire.Publisher(config) as sync_publisher:
        place_order_sync(sync_publisher, event)
    with FakePublisher() as sync_fake:
        place_order_sync(sync_fake, event)
        assert_type(sync_fake.close(), eventwire.CloseReport)


async def spool_api(config: eventwire.PublisherConfig, event: OrderPlaced) -> None:
    spooled = config.with_overrides(spool_path="/var/lib/app/eventwire.db")
    async with eventwire.AsyncPublisher(spooled) as publisher:
        accepted = await publisher.accept(event)
        assert_type(accepted, eventwire.Accepted)
        assert_type(accepted.event_id, str)
        assert_type(await accepted.delivered(), eventwire.DeliveryReceipt)
        many = await publisher.accept_many([event])
        assert_type(many, list[eventwire.Accepted | eventwire.EventwireError])
        async with eventwire.GracefulShutdown(publisher, deadline=5.0) as shutdown:
            assert_type(shutdown.requested, bool)
        report = shutdown.report
        if report is not None:
            assert_type(report.spooled, int)


async def accept_through_the_protocols(
    config: eventwire.PublisherConfig, event: OrderPlaced
) -> None:
    from eventwire.testing import AsyncFakePublisher, FakePublisher

    spooled = config.with_overrides(spool_path="/var/lib/app/eventwire.db")
    async_publishers: list[eventwire.AsyncPublisherProtocol] = [
        eventwire.AsyncPublisher(spooled),
        AsyncFakePublisher(spooled),
    ]
    for publisher in async_publishers:
        accepted = await publisher.accept(event, key="k")
        assert_type(accepted, eventwire.Accepted)
        assert_type(
            await publisher.accept_many([event]),
            list[eventwire.Accepted | eventwire.EventwireError],
        )
    sync_publishers: list[eventwire.PublisherProtocol] = [
        eventwire.Publisher(spooled),
        FakePublisher(spooled),
    ]
    for sync_publisher in sync_publishers:
        handle = sync_publisher.accept(event, topic="orders")
        assert_type(handle, eventwire.SyncAccepted)
        assert_type(handle.event_id, str)
        assert_type(handle.done(), bool)
        assert_type(handle.wait_delivered(timeout=5.0), eventwire.DeliveryReceipt)
        assert_type(handle.wait_delivered(), eventwire.DeliveryReceipt)
        many = sync_publisher.accept_many([event])
        assert_type(many, list[eventwire.SyncAccepted | eventwire.EventwireError])


async def transaction_api(config: eventwire.PublisherConfig, event: OrderPlaced) -> None:
    from eventwire.transactions import AsyncTransaction, ProducerFencedError, Transaction

    transactional = config.with_overrides(transactional_id="orders-writer-1")
    async with eventwire.AsyncPublisher(transactional) as publisher:
        try:
            async with publisher.transaction() as tx:
                assert_type(tx, AsyncTransaction)
                assert_type(await tx.publish(event), eventwire.DeliveryReceipt)
                assert_type(await tx.publish_many([event]), list[eventwire.DeliveryReceipt])
        except ProducerFencedError as fenced:
            assert_type(fenced.transactional_id, str)
        assert_type(tx.receipts, tuple[eventwire.DeliveryReceipt, ...])
        assert_type(tx.committed, bool)
    with eventwire.Publisher(transactional) as sync_publisher, sync_publisher.transaction() as stx:
        assert_type(stx, Transaction)
        assert_type(stx.publish(event), eventwire.DeliveryReceipt)


def outbox_api(config: eventwire.PublisherConfig, event: OrderPlaced) -> None:
    import sqlalchemy
    from sqlalchemy.orm import Session

    import eventwire.outbox

    engine = sqlalchemy.create_engine("sqlite:///app.db")
    with engine.begin() as conn:
        assert_type(eventwire.outbox.add(conn, event, config=config), str)
        assert_type(eventwire.outbox.add_many(conn, [event]), list[str])
    with Session(engine) as session:
        assert_type(eventwire.outbox.add(session, event), str)
    relay = eventwire.outbox.OutboxRelay("sqlite:///app.db", config)
    assert_type(relay.run(once=True), eventwire.outbox.RelayReport)
    assert_type(relay.stats(), eventwire.outbox.OutboxStats)
    assert_type(relay.stats().latency_p99, float | None)
    assert_type(eventwire.outbox.schema_ddl("sqlite"), str)


async def outbox_async_api(event: OrderPlaced) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    import eventwire.outbox

    engine = create_async_engine("sqlite+aiosqlite:///app.db")
    async with engine.begin() as conn:
        assert_type(await eventwire.outbox.add_async(conn, event), str)
