"""Test kit for eventwire users: in-memory fake publishers, a real local broker, Apache
Kafka clusters, and a fault-injecting TCP proxy (latency, pauses, cuts, black holes, connection
resets).

``FakePublisher``/``AsyncFakePublisher`` need nothing else. ``LocalBroker`` needs the
``testing`` extra: ``pip install 'eventwire[testing]'``. ``KafkaCluster`` needs Java >= 17
and Maven (the jars come from Maven Central on first use). The pytest plugin (registered
automatically) provides the ``eventwire_broker``, ``kafka_cluster``, ``kafka_broker``,
``fake_publisher`` and ``async_fake_publisher`` fixtures.
"""

from eventwire.testing._broker import BrokerStartError, ConsumedRecord, LocalBroker
from eventwire.testing._fake import (
    FAKE_BOOTSTRAP,
    AsyncFakePublisher,
    FakePublisher,
    PublishedRecord,
)
from eventwire.testing._kafka import KafkaCluster
from eventwire.testing._kafka_jars import KAFKA_VERSION, KafkaUnavailableError
from eventwire.testing._proxy import FaultProxy, ProxiedBroker

__all__ = [
    "FAKE_BOOTSTRAP",
    "KAFKA_VERSION",
    "AsyncFakePublisher",
    "BrokerStartError",
    "ConsumedRecord",
    "FakePublisher",
    "FaultProxy",
    "KafkaCluster",
    "KafkaUnavailableError",
    "LocalBroker",
    "ProxiedBroker",
    "PublishedRecord",
]
