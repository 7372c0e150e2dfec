"""``eventwire demo``: the README's first command, end to end on an embedded local broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import time
from collections import Counter
from decimal import Decimal
from typing import Annotated, Any

import msgspec

import eventwire
from eventwire._cli.output import report_console
from eventwire.testing import LocalBroker

CHUNK = 5_000


class LineItem(msgspec.Struct, frozen=True, kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    unit_price: Decimal


@eventwire.event(topic="orders", key="order_id", type="shop.order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    customer_id: str
    placed_at: dt.datetime
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    line_items: Annotated[list[LineItem], msgspec.Meta(min_length=1)]
    total_price: Decimal
    shipping_address: str


@eventwire.event(topic="payments", key="order_id", type="shop.payment.captured", version=1)
class PaymentCaptured(msgspec.Struct, frozen=True, kw_only=True):
    payment_id: str
    order_id: str
    amount: Decimal
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    captured_at: dt.datetime
    method: str


_START = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)


def _order(n: int) -> OrderPlaced:
    items = [
        LineItem(
            sku=f"SKU-{(n * 7 + i) % 5000:05d}",
            quantity=1 + (n + i) % 4,
            unit_price=Decimal(f"{5 + (n * 13 + i) % 95}.{(n + i) % 100:02d}"),
        )
        for i in range(3)
    ]
    total = sum((item.unit_price * item.quantity for item in items), Decimal(0))
    return OrderPlaced(
        order_id=f"ord-{n:07d}",
        customer_id=f"cust-{n % 997:05d}",
        placed_at=_START + dt.timedelta(milliseconds=n * 37),
        currency="EUR",
        line_items=items,
        total_price=total,
        shipping_address=f"{n % 300} Long Street, Apartment {n % 40}, 10115 Berlin, Germany",
    )


def _payment(n: int) -> PaymentCaptured:
    return PaymentCaptured(
        payment_id=f"pay-{n:07d}",
        order_id=f"ord-{n:07d}",
        amount=Decimal(f"{20 + n % 300}.{n % 100:02d}"),
        currency="EUR",
        captured_at=_START + dt.timedelta(milliseconds=n * 37 + 500),
        method=("card", "paypal", "sepa")[n % 3],
    )


def _invalid() -> list[Any]:
    good = _order(0)
    return [
        msgspec.structs.replace(good, placed_at=dt.datetime(2026, 11, 28, 9, 0)),  # noqa: DTZ001
        msgspec.structs.replace(
            good,
            line_items=[
                good.line_items[0],
                msgspec.structs.replace(good.line_items[1], quantity=0),
            ],
        ),
        msgspec.structs.replace(good, total_price=119.94),  # float money
        msgspec.structs.replace(good, currency="euro"),
        msgspec.structs.replace(good, order_id=42),
        msgspec.structs.replace(_payment(0), amount="12,50"),
    ]


def _metric_reader() -> Any:
    """An in-memory OpenTelemetry metric reader, or ``None`` without the SDK."""
    try:
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    except ImportError:  # the SDK is the application's choice; the demo works without it
        return None
    return InMemoryMetricReader()


def _telemetry(reader: Any) -> eventwire.Telemetry:
    if reader is None:
        return eventwire.Telemetry()
    from opentelemetry.sdk.metrics import MeterProvider

    return eventwire.Telemetry(
        meter_provider=MeterProvider(metric_readers=[reader]), statistics_interval=1.0
    )


async def _publish(
    broker: LocalBroker, orders: int, payments: int, console: Any, reader: Any
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    config = eventwire.PublisherConfig(
        bootstrap_servers=broker.bootstrap_servers,
        client_id="eventwire-demo",
        source="/demo/shop",
        telemetry=_telemetry(reader),
    )
    stream: list[Any] = []
    for n in range(max(orders, payments)):
        if n < orders:
            stream.append(_order(n))
        if n < payments:
            stream.append(_payment(n))
    invalid = _invalid()
    step = max(1, len(stream) // (len(invalid) + 1))
    for i, bad in enumerate(invalid):  # spread the bad ones among good neighbours
        stream.insert((i + 1) * step, bad)

    receipts: list[eventwire.DeliveryReceipt] = []
    rejected: list[tuple[str, eventwire.EventwireError]] = []
    async with eventwire.AsyncPublisher(config) as publisher:
        publisher.health()  # starts the cached broker probe; the snapshot at the end is real
        started = time.perf_counter()
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("publishing", total=len(stream))
            for offset in range(0, len(stream), CHUNK):
                chunk = stream[offset : offset + CHUNK]
                for event, outcome in zip(chunk, await publisher.publish_many(chunk), strict=True):
                    if isinstance(outcome, eventwire.DeliveryReceipt):
                        receipts.append(outcome)
                    else:
                        rejected.append((type(event).__name__, outcome))
                progress.advance(task, len(chunk))
        elapsed = time.perf_counter() - started
        # Latency of a lone publish (one event in flight), the number a request handler sees.
        latencies = []
        for n in range(500):
            t0 = time.perf_counter()
            receipts.append(await publisher.publish(_order(orders + n)))
            latencies.append(time.perf_counter() - t0)
        health = publisher.health()
        report = await publisher.aclose()
    return {
        "receipts": receipts,
        "rejected": rejected,
        "elapsed": elapsed,
        "bulk": len(stream) - len(rejected),
        "latencies": latencies,
        "report": report,
        "health": health,
        "metrics": reader.get_metrics_data() if reader is not None else None,
    }


def run_demo(*, orders: int, payments: int, partitions: int) -> int:
    """Run the demo; returns 0 when everything published was consumed back intact."""
    from rich.table import Table

    console = report_console()
    with LocalBroker(partitions=partitions) as broker:
        console.print(f"local broker (Tansu) on [bold]{broker.bootstrap_servers}[/]")
        for topic in ("orders", "payments"):
            broker.create_topic(topic, partitions)
        reader = _metric_reader()
        result = asyncio.run(_publish(broker, orders, payments, console, reader))

        console.print("\n[bold]Rejected before reaching Kafka[/] (validation):")
        for name, error in result["rejected"]:
            console.print(f"  {name}: {error}", highlight=False, markup=False)

        console.print("\nconsuming everything back to verify …")
        receipts: list[eventwire.DeliveryReceipt] = result["receipts"]
        expected = Counter((r.topic, r.partition) for r in receipts)
        by_id = {r.event_id: (r.topic, r.partition, r.offset) for r in receipts}
        seen: Counter[tuple[str, int]] = Counter()
        mismatched = 0
        for topic in ("orders", "payments"):
            count = sum(n for (t, _), n in expected.items() if t == topic)
            for record in broker.consume(topic, count=count, timeout=120):
                seen[(record.topic, record.partition)] += 1
                ce_id = (record.header("ce_id") or b"").decode()
                if by_id.get(ce_id) != (record.topic, record.partition, record.offset):
                    mismatched += 1

    report: eventwire.CloseReport = result["report"]
    table = Table(title="eventwire demo")
    table.add_column("topic")
    table.add_column("partition", justify="right")
    table.add_column("delivered", justify="right")
    table.add_column("consumed back", justify="right")
    for key in sorted(expected):
        table.add_row(key[0], str(key[1]), f"{expected[key]:,}", f"{seen[key]:,}")
    console.print(table)
    latencies = sorted(result["latencies"])
    p50 = statistics.median(latencies) * 1e6
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1e6
    summary = Table(show_header=False)
    summary.add_row("events published (bulk)", f"{result['bulk']:,}")
    summary.add_row(
        "throughput (publish_many)", f"{result['bulk'] / result['elapsed']:,.0f} events/s"
    )
    summary.add_row(
        "lone publish latency p50 / p99 (durable preset: linger.ms=5)",
        f"{p50:,.0f} µs / {p99:,.0f} µs",
    )
    summary.add_row("rejected (validation)", str(len(result["rejected"])))
    summary.add_row(
        "delivered / failed / undelivered at close",
        (f"{report.delivered:,} / {report.failed:,} / {report.undelivered:,}"),
    )
    summary.add_row("records not matching their receipt", str(mismatched))
    console.print(summary)
    _print_health(console, result["health"])
    _print_metrics(console, result["metrics"])

    ok = (
        seen == expected
        and mismatched == 0
        and report.failed == 0
        and report.undelivered == 0
        and len(result["rejected"]) == len(_invalid())
    )
    if not ok:
        console.print("[bold red]verification failed[/]")
        return 1
    console.print("[bold green]every accepted event was consumed back intact[/]")
    return 0


def _print_health(console: Any, health: eventwire.HealthStatus) -> None:
    from rich.table import Table

    table = Table(title="publisher.health() before closing", show_header=False)
    for name, value in health.as_dict().items():
        table.add_row(name, str(value))
    console.print(table)


def _print_metrics(console: Any, data: Any) -> None:
    """A summary of the OpenTelemetry metrics the publisher recorded."""
    from rich.table import Table

    if data is None:
        console.print("(metrics summary: install opentelemetry-sdk to see it)")
        return
    table = Table(title="OpenTelemetry metrics (in-memory reader)")
    table.add_column("metric", overflow="fold")
    table.add_column("topic / error / broker", overflow="fold")
    table.add_column("value", justify="right")
    shown = ("messaging.destination.name", "error.type", "eventwire.kafka.broker")
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = ", ".join(
                        str(value)
                        for key, value in (point.attributes or {}).items()
                        if key in shown
                    )
                    unit = "" if metric.unit == "1" else f" {metric.unit}"
                    if hasattr(point, "count"):  # histogram
                        mean = point.sum / point.count if point.count else 0.0
                        value = f"{point.count:,} sends, mean {mean * 1000:.1f} ms"
                    elif isinstance(point.value, float):
                        value = f"{point.value:.6g}{unit}"
                    else:
                        value = f"{point.value:,}{unit}"
                    table.add_row(metric.name, attributes, value)
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_demo(orders=50_000, payments=25_000, partitions=3))
