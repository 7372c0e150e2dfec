"""The librdkafka transport against real brokers: what the core relies on of it."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from eventwire.transport import librdkafka_transport
from tests.brokers import ON_KAFKA_AND_TANSU
from tests.integration.conftest import Topics

ROUNDS = 150


@ON_KAFKA_AND_TANSU
def test_a_blocking_purge_reports_every_queued_record_in_the_next_poll(topics: Topics) -> None:
    """A sweep (``_core.deadlines``) marks the records its purge reported in the ``poll(0)``
    right after it: a report served later would be taken for a failure of the record itself.
    Rounds of 1-200 records, purged 0-20 ms after they were produced (some queued, some sent):
    every ``_PURGE_QUEUE`` report comes in that poll, none after it, and every record reports
    once. (confluent-kafka's own ``purge(blocking=True)`` does not block: about half the
    reports came later, which this test caught.)"""
    transport = librdkafka_transport(
        {"bootstrap.servers": topics.broker.bootstrap_servers, "linger.ms": 5}
    )
    topic = topics.name("orders")
    rng = random.Random(7)
    phase = "queued"
    reports: Counter[tuple[str, str]] = Counter()

    def report(err: Any, msg: Any) -> None:
        code = "delivered" if err is None else err.name()
        reports[(phase, code)] += 1

    produced = 0
    for _ in range(ROUNDS):
        phase = "queued"
        count = rng.randint(1, 200)
        for n in range(count):
            transport.produce(topic, b"x" * 100, str(n).encode(), on_delivery=report, headers=[])
        produced += count
        time.sleep(rng.uniform(0, 0.02))
        phase = "purged"
        transport.purge(True, False, True)
        transport.poll(0)
        phase = "after"
        assert transport.flush(30) == 0
    transport.close()
    assert reports[("after", "_PURGE_QUEUE")] == 0, reports
    assert reports[("purged", "_PURGE_QUEUE")] > 0, reports  # the purges did catch records
    assert sum(reports.values()) == produced, reports
    assert {code for _, code in reports} <= {"delivered", "_PURGE_QUEUE"}, reports
