"""Which broker a broker-facing test runs on.

Apache Kafka is the reference: a test whose outcome depends on the broker runs on the session's
3-broker `KafkaCluster` (RF 3, ``min.insync.replicas=2``). Where Tansu is fast and faithful the
test runs on it too (``ON_KAFKA_AND_TANSU``); where Tansu differs, the test runs on Kafka only
(``ON_KAFKA``) and a comment says how Tansu differs. Tests that mark nothing run on Tansu: their
outcome depends on the client alone (queues, spool, spans, shutdown).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from eventwire.testing import ConsumedRecord, FaultProxy, KafkaCluster, LocalBroker, ProxiedBroker

#: What the ``shared_broker`` fixture gives: the session's Tansu or the session's Kafka cluster.
SharedBroker = LocalBroker | KafkaCluster

ON_KAFKA_AND_TANSU = pytest.mark.parametrize("shared_broker", ["kafka", "tansu"], indirect=True)
ON_KAFKA = pytest.mark.parametrize("shared_broker", ["kafka"], indirect=True)
#: The same for tests on a broker of their own behind a fault proxy (the ``proxied`` fixture).
PROXIED_ON_KAFKA_AND_TANSU = pytest.mark.parametrize("proxied", ["kafka", "tansu"], indirect=True)


class ProxiedKafka:
    """One Apache Kafka broker that clients reach only through a `FaultProxy`, with
    `ProxiedBroker`'s shape (``proxy``, ``bootstrap_servers``, topics, ``consume``) so a fault
    test runs on either. The broker keeps its state through every proxy fault."""

    def __init__(self, partitions: int = 3) -> None:
        self.cluster = KafkaCluster(brokers=1, partitions=partitions, proxied=True)

    def __enter__(self) -> ProxiedKafka:
        self.cluster.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cluster.stop()

    @property
    def proxy(self) -> FaultProxy:
        return self.cluster.proxy(1)

    @property
    def bootstrap_servers(self) -> str:
        return self.cluster.bootstrap_servers

    def create_topic(self, name: str, partitions: int | None = None) -> str:
        return self.cluster.create_topic(name, partitions)

    def create_topics(self, names: Iterable[str], partitions: int | None = None) -> list[str]:
        return self.cluster.create_topics(names, partitions)

    def consume(
        self, topic: str, *, count: int | None = None, timeout: float = 30.0
    ) -> list[ConsumedRecord]:
        """Read back through the proxy: `FaultProxy.restore` first."""
        return self.cluster.consume(topic, count=count, timeout=timeout)


#: A broker behind a fault proxy: Tansu's `ProxiedBroker` or Kafka's `ProxiedKafka`.
Proxied = ProxiedBroker | ProxiedKafka
