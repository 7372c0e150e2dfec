"""A real broker restart with state: noida-db stopped with SIGTERM and started again on the
same port (same data directory) while an AsyncPublisher publishes. Tansu cannot do this: it
keeps nothing across a restart.

noida-db 0.2.3 takes its snapshot when SIGTERM arrives, then goes on acknowledging produce
requests while it writes the snapshot out (0.3-0.6 s for 50 MB), and exits: every record it
acknowledged after the signal is gone after the restart (measured with a plain idempotent
``Producer``: all 4,625 lost records of a run were acknowledged after a SIGTERM, none before;
a broker restarted again within its first second loses everything it took). A Kafka broker
shuts down the other way round: it stops serving requests, then closes its logs. So the
restart that must lose nothing is made the Kafka way: the clients' connections are cut
(a `FaultProxy` in front of a ``tansu proxy`` that advertises it, since noida-db cannot
advertise another address), then noida-db gets SIGTERM, starts again, and the connections are
let through again. The plain SIGTERM under load is kept too, with the broker's losses counted.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

import eventwire
from eventwire.testing import FaultProxy, KafkaCluster
from eventwire.testing._broker import _TANSU_ENV, _BrokerProcess, _free_port, _resolve_binary
from eventwire.testing._noida import NoidaBroker
from tests.faults.conftest import (
    EVENTS,
    Run,
    Tally,
    assert_all_delivered_in_order,
    publish_under_faults,
    publisher_config,
    tally,
    ticks,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120 + EVENTS // 500)]

#: noida-db cannot read a partition larger than ~100 MB back from offset 0: stay well below.
PARTITION_BYTES_LIMIT = 40 * 1024 * 1024
RECORD_BYTES = 700  # a Tick: ~300 bytes of JSON, ~250 of headers, record overhead


@pytest.fixture
def noida() -> Iterator[NoidaBroker]:
    partitions = max(3, math.ceil(EVENTS * RECORD_BYTES / PARTITION_BYTES_LIMIT))
    with NoidaBroker(partitions=partitions) as broker:
        broker.create_topic("ticks")
        yield broker


class _ServedNoida:
    """noida-db reached through a `FaultProxy` (``tansu proxy`` between them rewrites the
    advertised address), so a restart can first stop the broker from serving anyone."""

    def __init__(self, noida: NoidaBroker) -> None:
        self.noida = noida
        self._rewriter_port = _free_port("127.0.0.1")
        self.proxy = FaultProxy(("127.0.0.1", self._rewriter_port)).start()
        self._rewriter: _BrokerProcess | None = None
        self._start_rewriter()

    @property
    def bootstrap_servers(self) -> str:
        return self.proxy.address

    def restart(self) -> None:
        """Stop serving (every connection reset, new ones refused), SIGTERM the broker, start
        it again on its port with its data, then serve again."""
        self.proxy.cut()
        self.noida.restart()
        # tansu proxy never reconnects to a restarted origin: start a new one on its port.
        self._stop_rewriter()
        self._start_rewriter()
        self.proxy.restore()

    def close(self) -> None:
        self.proxy.stop()
        self._stop_rewriter()

    def _start_rewriter(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        argv = [
            os.fspath(_resolve_binary(None)),
            "proxy",
            "--listener-url",
            f"tcp://127.0.0.1:{self._rewriter_port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{self.proxy.port}",
            "--origin-url",
            f"tcp://127.0.0.1:{self.noida.port}",
        ]
        self._rewriter = _BrokerProcess(argv, env)
        deadline = time.monotonic() + 10
        while True:
            assert self._rewriter.alive, f"tansu proxy exited: {self._rewriter.log_tail()}"
            try:
                socket.create_connection(("127.0.0.1", self._rewriter_port), timeout=1).close()
            except OSError:
                assert time.monotonic() < deadline, "tansu proxy did not listen within 10 s"
                time.sleep(0.01)  # polling a port that is not open yet: nothing to await
            else:
                return

    def _stop_rewriter(self) -> None:
        if self._rewriter is not None:
            self._rewriter.terminate(timeout=2.0)
            self._rewriter = None


@pytest.fixture
def served_noida(noida: NoidaBroker) -> Iterator[_ServedNoida]:
    served = _ServedNoida(noida)
    try:
        yield served
    finally:
        served.close()


def test_restart_keeps_topics_records_and_producer_state(noida: NoidaBroker) -> None:
    producer = Producer({"bootstrap.servers": noida.bootstrap_servers, "enable.idempotence": True})
    for n in range(50):
        producer.produce("ticks", f"before-{n}".encode())
    assert producer.flush(10) == 0
    pid = noida.pid
    noida.restart()
    assert noida.pid != pid
    for n in range(50):
        producer.produce("ticks", f"after-{n}".encode())
    assert producer.flush(20) == 0  # the same idempotent producer goes on
    values = sorted(record.value or b"" for record in noida.consume("ticks"))
    expected = [f"{when}-{n}".encode() for when in ("after", "before") for n in range(50)]
    assert values == sorted(expected)
    data_dir = noida.data_dir
    assert data_dir is not None
    noida.remove_data()
    assert not data_dir.exists()


@pytest.mark.parametrize("spool_mode", ["spool-off"])
async def test_broker_restarts_during_publishing_lose_nothing(
    noida: NoidaBroker, spool_mode: str, tmp_path: Path, report: Callable[[Tally], None]
) -> None:
    """Two plain SIGTERM restarts while events flow: every event delivered, in key order, a
    duplicate only where the outcome was ambiguous; records the broker itself lost after
    acknowledging them are counted apart (the noida-db defect in the module docstring)."""
    config = publisher_config(
        spool_mode,
        noida.bootstrap_servers,
        tmp_path,
        # Off here, on in the rest of the suite: a real restart opens it (rightly: the broker is
        # down), and with it on this run showed per-key order violations (a recreation race,
        # see the faults2 report) and, with the spool, parked events overtaken.
        breaker=None,
        delivery_timeout=60.0,
        librdkafka_overrides={"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200},
    )
    pids: list[int | None] = []

    async def restart(run: Run) -> None:
        pids.append(noida.pid)
        # SIGTERM, wait for the exit, start again on the same port and wait for metadata;
        # off the loop: the publisher keeps running meanwhile.
        await asyncio.to_thread(noida.restart)
        pids.append(noida.pid)
        settled = run.settled
        await run.until(
            lambda: run.settled > settled or run.settled == run.submitted,
            within=60,
            what="events settled through the restarted broker",
        )

    events = ticks()
    async with eventwire.AsyncPublisher(config) as publisher:
        run = await publish_under_faults(publisher, events, [(0.3, restart), (0.65, restart)])
    records = await asyncio.to_thread(noida.consume, "ticks", timeout=60 + EVENTS / 2000)
    counts = tally(run, records)
    report(counts)
    # noida-db 0.2.3 loses the records it acknowledged (acks=all) after a SIGTERM: after the
    # restart it either gives their offsets to new records (the idempotent producer then gets
    # OUT_OF_ORDER_SEQUENCE_NUMBER) or leaves them missing from the log. A receipt is the
    # broker's own acknowledgement of that (partition, offset); no client can see the loss.
    # Count both kinds apart, and fail on any other loss.
    holder = {(r.partition, r.offset): r.header("ce_id") for r in records}
    read = set(holder.values())
    unread = [
        o
        for o in run.outcomes
        if isinstance(o, eventwire.DeliveryReceipt) and o.event_id.encode() not in read
    ]
    reused = [o for o in unread if (o.partition, o.offset) in holder]
    missing = [o for o in unread if (o.partition, o.offset) not in holder]
    broker_lost = reused + missing
    print(
        f"broker pids: {pids}; acknowledged, then lost by the broker: {len(broker_lost)} "
        f"({len(reused)} offsets given to other records, {len(missing)} offsets missing)"
    )
    assert len(set(pids)) == 3  # two restarts: three broker processes
    assert counts.lost == len(broker_lost)
    assert counts.silent == len(broker_lost)
    assert counts.errors == 0
    assert counts.unexplained_duplicates == 0
    assert counts.order_violations == 0
    if not broker_lost:
        assert_all_delivered_in_order(counts)


@pytest.mark.parametrize(
    ("spool_mode", "breaker"),
    [
        # Without a spool an open breaker fails new events fast (see the proxy outage tests):
        # off here, so every event must come through the restarts.
        pytest.param("spool-off", None, id="spool-off-breaker-off"),
        # With a spool an open breaker keeps new events in it: the defaults.
        pytest.param("spool-on", eventwire.BreakerPolicy(), id="spool-on-breaker-on"),
    ],
)
async def test_broker_restarts_the_kafka_way_lose_nothing(
    served_noida: _ServedNoida,
    spool_mode: str,
    breaker: eventwire.BreakerPolicy | None,
    tmp_path: Path,
    report: Callable[[Tally], None],
) -> None:
    """Two restarts while events flow, each stopping the broker from serving before its
    SIGTERM: every event delivered exactly once or, where its outcome was ambiguous, with
    the same ``ce_id``; every key complete and in order."""
    noida = served_noida.noida
    config = publisher_config(
        spool_mode,
        served_noida.bootstrap_servers,
        tmp_path,
        breaker=breaker,
        delivery_timeout=60.0,
        librdkafka_overrides={"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200},
    )
    pids: list[int | None] = []

    async def restart(run: Run) -> None:
        pids.append(noida.pid)
        await asyncio.to_thread(served_noida.restart)  # off the loop: publishing goes on
        pids.append(noida.pid)
        settled = run.settled
        await run.until(
            lambda: run.settled > settled or run.settled == run.submitted,
            within=60,
            what="events settled through the restarted broker",
        )

    async with eventwire.AsyncPublisher(config) as publisher:
        run = await publish_under_faults(publisher, ticks(), [(0.3, restart), (0.65, restart)])
    records = await asyncio.to_thread(noida.consume, "ticks", timeout=60 + EVENTS / 2000)
    counts = tally(run, records)
    report(counts)
    print(f"broker pids: {pids}")
    assert len(set(pids)) == 3  # two restarts: three broker processes
    assert counts.order_violations == 0
    assert_all_delivered_in_order(counts)


@pytest.fixture
def kafka() -> Iterator[KafkaCluster]:
    """One Apache Kafka broker of the test's own (broker and controller in one JVM)."""
    with KafkaCluster(brokers=1) as cluster:
        cluster.create_topic("ticks")
        yield cluster


@pytest.mark.parametrize(
    ("spool_mode", "breaker"),
    [
        pytest.param("spool-off", None, id="spool-off-breaker-off"),
        pytest.param("spool-on", eventwire.BreakerPolicy(), id="spool-on-breaker-on"),
    ],
)
async def test_kafka_restarts_during_publishing_lose_nothing(
    kafka: KafkaCluster,
    spool_mode: str,
    breaker: eventwire.BreakerPolicy | None,
    tmp_path: Path,
    report: Callable[[Tally], None],
) -> None:
    """The reference for the noida-db restarts above: Apache Kafka stopped with SIGTERM (its
    controlled shutdown closes the logs) and started again with its data, twice, while events
    flow. Every event delivered exactly once or, where its outcome was ambiguous, with the same
    ``ce_id``; every key complete and in order; nothing the broker acknowledged is lost."""
    config = publisher_config(
        spool_mode,
        kafka.bootstrap_servers,
        tmp_path,
        breaker=breaker,
        delivery_timeout=60.0,
        librdkafka_overrides={"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200},
    )
    pids: list[int | None] = []

    def stop_and_start() -> None:
        kafka.stop_broker(1)
        kafka.start_broker(1)

    async def restart(run: Run) -> None:
        pids.append(kafka.pid(1))
        await asyncio.to_thread(stop_and_start)  # off the loop: publishing goes on
        pids.append(kafka.pid(1))
        settled = run.settled
        await run.until(
            lambda: run.settled > settled or run.settled == run.submitted,
            within=60,
            what="events settled through the restarted broker",
        )

    async with eventwire.AsyncPublisher(config) as publisher:
        run = await publish_under_faults(publisher, ticks(), [(0.3, restart), (0.65, restart)])
    records = await asyncio.to_thread(kafka.consume, "ticks", timeout=60 + EVENTS / 2000)
    counts = tally(run, records)
    report(counts)
    print(f"broker pids: {pids}")
    assert len(set(pids)) == 3  # two restarts: three broker processes
    assert counts.order_violations == 0
    assert_all_delivered_in_order(counts)
