"""The anchor row on Apache Kafka: Kafka's own Java producer, as a Java or Spring team runs it.

``org.apache.kafka.tools.ProducerPerformance`` (``kafka-producer-perf-test``) from the
kafka-tools jar of `KafkaCluster`, with the case's record size (the mean encoded event), keys
(one per record, like the order ids), ``acks=all``, idempotence and ``linger.ms=5`` (the
``durable`` preset's), Kafka's other producer defaults (``batch.size`` 16 KiB, no
compression), and a JVM with C2 (``-Xmx1g``, G1; not the test kit's ``TieredStopAtLevel=1``).

Wall time is the tool's own steady-state figure (after the same warm-up records as every
case). CPU is the JVM's (user + system) for the N records: a run with only the warm-up records
is subtracted, so the JVM's start and its first compilations do not count, as a Python case
does not count its interpreter's start.
"""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import uuid
from collections.abc import Callable
from typing import Final

from throughput import CASES, DESCRIPTIONS, WARMUP_EVENTS, CaseFailed, Measurement, Workload

from eventwire.testing._kafka_jars import run_java

NAME: Final = "java_producer_perf"
MAIN_CLASS: Final = "org.apache.kafka.tools.ProducerPerformance"
#: G1 and C2, as a service runs: no ``-XX:TieredStopAtLevel=1``.
JVM_OPTIONS: Final = ("-Xmx1g",)
#: The tool's summary lines: every record, and the records after the warm-up.
_TOTAL = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec", re.MULTILINE)
_STEADY = re.compile(r"^(\d+) steady state records sent, ([\d.]+) records/sec", re.MULTILINE)


def java_producer_perf(workload: Workload) -> Measurement:
    """Kafka's Java producer (``ProducerPerformance``): acks=all, idempotence, linger 5 ms,
    same record size and key count, C2 JVM; steady state after the warm-up records."""
    size = round(statistics.fmean(len(value) for value, _ in workload.payloads))
    n = workload.count
    _, warm_cpu = _run(workload, records=WARMUP_EVENTS, warmup=0, size=size)
    output, cpu = _run(workload, records=n + WARMUP_EVENTS, warmup=WARMUP_EVENTS, size=size)
    sent = _TOTAL.search(output)
    if sent is None or int(sent.group(1)) != n + WARMUP_EVENTS:
        raise CaseFailed(f"ProducerPerformance did not send {n + WARMUP_EVENTS:,}: {output[-800:]}")
    steady = _STEADY.search(output)
    if steady is None or int(steady.group(1)) != n:
        raise CaseFailed(f"no steady-state figure for {n:,} records: {output[-800:]}")
    rate = float(steady.group(2))
    return Measurement(wall_s=n / rate, cpu_s=max(cpu - warm_cpu, 0.0), confirmed=n)


def _run(workload: Workload, *, records: int, warmup: int, size: int) -> tuple[str, float]:
    """Run the tool once; its output and the JVM's CPU seconds."""
    properties = {
        "acks": "all",
        "enable.idempotence": "true",
        "linger.ms": "5",
        "client.id": f"java-perf-{uuid.uuid4().hex[:6]}",
    }
    args = [
        "--bootstrap-server",
        workload.bootstrap_servers,
        "--topic",
        workload.topic,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--key-distribution",
        "range",
        "--record-key-range",
        str(records),
        "--reporting-interval",
        "600000",
        "--command-property",
        *(f"{key}={value}" for key, value in properties.items()),
    ]
    if warmup:
        args += ["--warmup-records", str(warmup)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = run_java(MAIN_CLASS, args, timeout=600, jvm_options=JVM_OPTIONS)
    except subprocess.TimeoutExpired as exc:
        raise CaseFailed(f"ProducerPerformance ran over {exc.timeout:g} s") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise CaseFailed(f"ProducerPerformance exited {done.returncode}: {done.stderr[-800:]}")
    return done.stdout, cpu


#: The case, registered beside the Python ones on a Kafka broker (it needs Kafka's jars).
EXTRA_CASES: Final[dict[str, Callable[[Workload], Measurement]]] = {NAME: java_producer_perf}


def register() -> None:
    """Add the Java producer to the throughput cases (and the report's descriptions)."""
    for name, case in EXTRA_CASES.items():
        CASES[name] = case
        DESCRIPTIONS[name] = (case.__doc__ or "").strip().splitlines()[0]
