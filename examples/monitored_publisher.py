"""Monitored publisher: OpenTelemetry metrics and a readiness endpoint next to an AsyncPublisher.

What it shows:

* the application owns OpenTelemetry: it builds a ``MeterProvider`` (here with an in-memory
  reader; in production a ``PeriodicExportingMetricReader`` with an OTLP exporter) and hands it
  to the publisher through ``eventwire.Telemetry`` — or sets it globally before building
  publishers, which eventwire then picks up;
* ``publisher.health()`` behind ``GET /healthz`` on a stdlib HTTP server: 200 with the JSON
  snapshot when ready, 503 when not. The call only reads cached state (the broker probe runs
  on the publisher's poll thread), so a probe every second costs nothing measurable;
* a summary of the metrics eventwire recorded: sends and their duration per topic, queue
  depth, retries, breaker state.

Run it: ``python -m examples.monitored_publisher --bootstrap-servers HOST:PORT`` (a local
broker: ``eventwire broker``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import msgspec
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import eventwire
from examples import _common


@eventwire.event(topic="orders", key="order_id", type="shop.order.placed", version=1)
class OrderPlaced(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    placed_at: dt.datetime
    total_price: Decimal


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    publisher: eventwire.AsyncPublisher  # set on the subclass made per server

    def do_GET(self) -> None:
        if self.path != "/healthz":
            self.send_error(404)
            return
        status = self.publisher.health()  # thread-safe: it only reads cached state
        body = status.to_json().encode()
        self.send_response(200 if status.ready else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # keep the example's output readable


@contextmanager
def health_server(publisher: eventwire.AsyncPublisher) -> Iterator[str]:
    """Serve ``GET /healthz`` for ``publisher`` on a free loopback port; yields its URL."""
    handler = type("Handler", (_HealthHandler,), {"publisher": publisher})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    finally:
        server.shutdown()
        server.server_close()


def probe(url: str) -> tuple[int, dict[str, object]]:
    """What a readiness probe sees: the HTTP status and the JSON body."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
            return response.status, msgspec.json.decode(response.read())
    except urllib.error.HTTPError as error:  # 503: not ready, the body says why
        return error.code, msgspec.json.decode(error.read())


@dataclass
class Result:
    receipts: list[eventwire.DeliveryReceipt]
    ready_status: int
    health: dict[str, object]
    metrics: dict[str, float]


def metrics_summary(reader: InMemoryMetricReader) -> dict[str, float]:
    """``{"metric [topic]": value}``: sums for counters, counts for histograms."""
    summary: dict[str, float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    topic = (point.attributes or {}).get("messaging.destination.name")
                    name = metric.name if topic is None else f"{metric.name} [{topic}]"
                    value = getattr(point, "count", None)
                    summary[name] = value if value is not None else point.value
    return summary


async def publish_monitored(
    bootstrap_servers: str, count: int = 100, *, topic_prefix: str = ""
) -> Result:
    """Publish ``count`` orders while serving ``/healthz``; return receipts, the readiness
    answer seen during the run, and the metrics recorded."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    config = eventwire.PublisherConfig(
        bootstrap_servers=bootstrap_servers,
        client_id="monitored-example",
        topic_prefix=topic_prefix,
        telemetry=eventwire.Telemetry(meter_provider=meter_provider),
    )
    try:
        async with eventwire.AsyncPublisher(config) as publisher:
            with health_server(publisher) as url:
                now = dt.datetime.now(dt.UTC)
                orders = [
                    OrderPlaced(order_id=f"ord-{n:05d}", placed_at=now, total_price=Decimal("9.99"))
                    for n in range(count)
                ]
                outcomes = await publisher.publish_many(orders)
                receipts = [o for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)]
                # A readiness probe polls; the first answer starts the broker probe.
                status, body = await asyncio.to_thread(probe, url)
                for _ in range(50):
                    if status == 200:
                        break
                    await asyncio.sleep(0.1)
                    status, body = await asyncio.to_thread(probe, url)
        return Result(receipts, status, body, metrics_summary(reader))
    finally:
        meter_provider.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    args = _common.parser(__doc__).parse_args(argv)
    result = asyncio.run(publish_monitored(args.bootstrap_servers, topic_prefix=args.topic_prefix))
    print(f"delivered {len(result.receipts)} orders")
    print(f"GET /healthz -> {result.ready_status} {result.health}")
    for name, value in sorted(result.metrics.items()):
        print(f"  {name}: {value:g}")
    return 0 if result.ready_status == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
