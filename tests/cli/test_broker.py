"""``eventwire broker``: prints its address, serves, and stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, TopicPartition

import eventwire
import eventwire.codec
from tests.cli.conftest import ROOT
from tests.events import PaymentCaptured


def _read_back(bootstrap: str, topic: str, partitions: int, count: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"cli-broker-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        for _ in range(300):  # bounded: 300 polls of at most 0.1 s
            if len(values) >= count:
                break
            for message in consumer.consume(num_messages=100, timeout=0.1):
                if message.error() is None:
                    values.append(message.value())
    finally:
        consumer.close()
    return values


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_broker_serves_and_stops_on_a_signal(stop_with: signal.Signals) -> None:
    argv = [sys.executable, "-m", "eventwire", "broker", "--topic", "cli.payments"]
    with subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
        [*argv, "--partitions", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            _serve_and_stop(process, stop_with)
        finally:
            if process.poll() is None:
                process.kill()


def _serve_and_stop(process: subprocess.Popen[str], stop_with: signal.Signals) -> None:
    assert process.stdout is not None
    assert process.stderr is not None
    address = process.stdout.readline().strip()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", address), address
    status = process.stderr.readline()
    found = re.search(r"pid (\d+)", status)
    assert found, status
    # Only --topic topics get --partitions; Tansu creates others with its own default.
    assert "2 partitions per topic created with --topic" in status, status
    tansu_pid = int(found.group(1))
    assert _alive(tansu_pid)

    config = eventwire.PublisherConfig(bootstrap_servers=address, delivery_timeout=30.0)
    sent = [
        PaymentCaptured(
            payment_id=f"pay-{n}",
            order_id=f"ord-{n}",
            amount=Decimal("10.50"),
            captured_at=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
        )
        for n in range(20)
    ]
    with eventwire.Publisher(config) as publisher:
        receipts = [publisher.publish(e, topic="cli.payments") for e in sent]
    assert {r.partition for r in receipts} <= {0, 1}  # the pre-created 2-partition topic
    values = _read_back(address, "cli.payments", 2, len(sent))
    assert sorted(values) == sorted(eventwire.codec.EventCodec().encode(e).value for e in sent)

    process.send_signal(stop_with)
    assert process.wait(timeout=30) == 0
    assert "stopped" in process.stderr.read()
    assert not _alive(tansu_pid)


def test_a_topic_name_publishers_refuse_is_a_usage_error() -> None:
    # Tansu created "bad topic", and every publisher then refused it.
    with subprocess.Popen(
        [sys.executable, "-m", "eventwire", "broker", "--topic", "orders,bad topic"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # it started serving: stop it as Ctrl-C would
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 2, out + err
    assert out == ""  # no broker address: none was started
    assert err == (
        "eventwire: error: --topic 'bad topic' is not a legal Kafka topic name: ' ' is not"
        " allowed (a topic name has 1 to 249 characters from [a-zA-Z0-9._-] and is not '.'"
        " or '..')\n"
    )
