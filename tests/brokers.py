"""Which broker a broker-facing test runs on.

Apache Kafka is the reference: a test whose outcome depends on the broker runs on the session's
3-broker `KafkaCluster` (RF 3, ``min.insync.replicas=2``). Where Tansu is fast and faithful the
test runs on it too (``ON_KAFKA_AND_TANSU``); where Tansu differs, the test runs on Kafka only
(``ON_KAFKA``) and a comment says how Tansu differs. Tests that mark nothing run on Tansu: their
outcome depends on the client alone (queues, spool, spans, shutdown).
"""

from __future__ import annotations

import pytest

from eventwire.testing import KafkaCluster, LocalBroker

#: What the ``shared_broker`` fixture gives: the session's Tansu or the session's Kafka cluster.
SharedBroker = LocalBroker | KafkaCluster

ON_KAFKA_AND_TANSU = pytest.mark.parametrize("shared_broker", ["kafka", "tansu"], indirect=True)
ON_KAFKA = pytest.mark.parametrize("shared_broker", ["kafka"], indirect=True)
