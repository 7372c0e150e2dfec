"""An unreachable cluster must not flood the log: librdkafka reports every failed connect
attempt through ``error_cb`` (several a second, more while the breaker probes), and each
became an ``eventwire.kafka_error`` warning line.

Each error code is logged once, then at most once per interval with a ``repeated`` count;
fatal errors always.
"""

from __future__ import annotations

import asyncio
import socket
import time

import msgspec

import eventwire
from eventwire.testing import capture_logs


@eventwire.event(topic="unreachable", key="n", type="test.unreachable_logged", version=1)
class Ping(msgspec.Struct, frozen=True):
    n: int


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def test_an_unreachable_broker_logs_a_bounded_number_of_kafka_error_lines() -> None:
    config = eventwire.PublisherConfig(
        bootstrap_servers=f"127.0.0.1:{_closed_port()}",
        breaker=eventwire.BreakerPolicy(cooldown=1.0),
    )
    with capture_logs() as logs:
        publisher = eventwire.AsyncPublisher(config)
        await publisher.publish_many([])  # binds the loop; nothing to send

        def opened() -> int:
            return sum(1 for line in logs if line["event"] == "eventwire.circuit_opened")

        # the breaker opens on _ALL_BROKERS_DOWN confirmed by a probe, then re-probes after
        # each 1 s cool-down: four openings span three probe cycles, ~6 s
        deadline = time.monotonic() + 60
        while opened() < 4 and time.monotonic() < deadline:
            publisher.health()  # a readiness endpoint calls it every second or so
            await asyncio.sleep(0.1)  # polls a condition; nothing to wait on directly
        await publisher.aclose(1.0)
    assert opened() >= 4
    seconds = 6.0
    kafka_errors = [line for line in logs if line["event"] == "eventwire.kafka_error"]
    print(f"{len(kafka_errors)} kafka_error lines")
    # one line per distinct condition and at most one per second besides would be ~5
    assert len(kafka_errors) <= 2 * seconds + 4, [e["reason"] for e in kafka_errors[:5]]
    librdkafka = [line for line in logs if line["event"] == "eventwire.librdkafka"]
    assert len(librdkafka) <= 2 * seconds + 4, [e["message"] for e in librdkafka[:5]]
