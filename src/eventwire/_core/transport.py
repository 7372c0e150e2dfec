"""The few calls the core makes on a Kafka client, as a protocol, and librdkafka's transport.

``confluent_kafka.Producer`` is the transport of the real publishers; the test kit's
in-memory broker is another. A transport is built from the librdkafka settings (with the
core's ``error_cb``, ``logger`` and ``stats_cb`` among them) by a ``TransportFactory``, so a
producer replacement builds a fresh one the same way.

A transport behaves like ``confluent_kafka.Producer``: ``produce`` raises ``BufferError`` when
its queue is full, ``KafkaException`` when it refuses a record, ``RuntimeError`` once closed;
``on_delivery(err, msg)`` is called from ``poll``/``flush`` with ``err`` ``None`` or a
``KafkaError`` and ``msg`` answering ``partition()``, ``offset()`` and ``timestamp()``.

The transaction calls are those of ``confluent_kafka.Producer`` too, made only on a
transactional publisher (``transactional.id`` in the settings): they raise ``KafkaException``
whose ``KafkaError`` says ``fatal()``, ``retriable()`` or ``txn_requires_abort()``, and
``produce`` outside a transaction raises ``KafkaException`` (``_STATE``). The core never lets
``commit_transaction``/``abort_transaction`` serve a delivery report: every record of the
transaction is settled before either is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from confluent_kafka import KafkaException, Producer

from eventwire._codec import Headers
from eventwire._errors import ConfigError


class Transport(Protocol):
    """What the core needs of a Kafka producer client."""

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        *,
        on_delivery: Callable[[Any, Any], None],
        headers: Headers,
    ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """Fail the records queued (``in_queue``) and sent but unanswered (``in_flight``);
        with ``blocking``, the next ``poll`` serves every report of the purge."""
        ...

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...

    def close(self) -> Any: ...

    def __len__(self) -> int: ...

    def init_transactions(self, timeout: float) -> None: ...

    def begin_transaction(self) -> None: ...

    def commit_transaction(self, timeout: float) -> None: ...

    def abort_transaction(self, timeout: float) -> None: ...

    def send_offsets_to_transaction(
        self, positions: list[Any], group_metadata: Any, timeout: float
    ) -> None: ...


#: Builds a transport from librdkafka settings (``ConfigError`` if they are refused).
TransportFactory = Callable[[Mapping[str, object]], Transport]


class LibrdkafkaProducer(Producer):
    """``confluent_kafka.Producer`` whose ``purge(blocking=True)`` blocks.

    confluent-kafka-python passes ``RD_KAFKA_PURGE_F_NON_BLOCKING`` to ``rd_kafka_purge`` when
    ``blocking`` is true (``Producer_purge``, up to 2.16 at least): the broker threads then
    purge after the call returns, and the next ``poll`` serves only some of the reports
    (measured: 111,388 of 236,169 purged messages reported later). The core relies on a
    blocking purge: a sweep marks the records its purge reported in that ``poll``
    (``_core.deadlines``), and a shutdown serves every report before closing.
    ``tests/integration/test_transport.py`` fails if that is ever fixed upstream.
    """

    __slots__ = ()

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        super().purge(in_queue, in_flight, not blocking)


def librdkafka_transport(settings: Mapping[str, object]) -> Transport:
    """A ``confluent_kafka.Producer`` (whose ``purge`` blocks when told to); its refusal of
    the settings is a ``ConfigError`` (the caller scrubs secrets from the message)."""
    try:
        producer: Transport = LibrdkafkaProducer(dict(settings))
    except KafkaException as exc:
        raise ConfigError(f"librdkafka refused the configuration: {exc.args[0].str()}") from None
    return producer
