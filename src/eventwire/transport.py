"""The seam under the publishers: the few calls they make on a Kafka producer client.

``AsyncPublisher(config, transport=...)`` and ``Publisher(config, transport=...)`` take a
``TransportFactory``: a callable that builds a ``Transport`` from librdkafka settings (the
default builds a ``confluent_kafka.Producer``). The test kit's fakes are the real publishers
over an in-memory transport (``eventwire.testing.MemoryBroker``), so they run the same
retries, ordering, breaker and close.
"""

from eventwire._core.transport import Transport, TransportFactory, librdkafka_transport

__all__ = ["Transport", "TransportFactory", "librdkafka_transport"]
