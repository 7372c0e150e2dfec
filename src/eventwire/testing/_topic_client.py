"""What the kit's brokers share as clients of them: topics created and named, and records
read back from the start (``TopicClient``, the base of ``LocalBroker`` and ``KafkaCluster``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from eventwire._topics import topic_problem


def first_header(headers: Iterable[tuple[str, bytes | None]], name: str) -> bytes | None:
    """The value of the first header called ``name``; ``None`` if absent or null."""
    return next((value for key, value in headers if key == name), None)


class ConsumedRecord(msgspec.Struct, frozen=True):
    """One record read back from the broker by `LocalBroker.consume`.

    Attributes:
        topic: the topic it was read from.
        partition: its partition.
        offset: its offset in the partition.
        key: the key bytes, ``None`` for a null key.
        value: the value bytes, ``None`` for a tombstone.
        headers: ``(name, value)`` pairs in record order; names may repeat, values may be null.
        timestamp_ms: the record timestamp in milliseconds since the epoch (``-1`` if absent).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        """The value of the first header called ``name``; ``None`` if absent or null."""
        return first_header(self.headers, name)


class TopicClient:
    """Topic creation and read-back through an AdminClient and a plain consumer, shared by
    the test kit's brokers. A subclass provides ``bootstrap_servers`` and ``_require_running``
    and sets ``_partitions`` (and ``_replication_factor``) as defaults for new topics."""

    _partitions: int
    _replication_factor: int = 1
    _admin: AdminClient | None = None

    @property
    def bootstrap_servers(self) -> str:
        raise NotImplementedError

    def _require_running(self) -> None:
        raise NotImplementedError

    def _client_settings(self) -> dict[str, Any]:
        """How the kit's own clients (admin, read-back) connect: to ``bootstrap_servers``."""
        return {"bootstrap.servers": self.bootstrap_servers}

    # -- topics ------------------------------------------------------------------------------

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(
                {
                    **self._client_settings(),
                    "client.id": "eventwire-local-broker",
                    # The broker is local: do not back off for seconds after a refused connect.
                    "reconnect.backoff.ms": 10,
                    "reconnect.backoff.max.ms": 200,
                }
            )
        return self._admin

    def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
    ) -> str:
        """Create a topic and wait until every partition has a leader; no-op if it exists.

        Args:
            name: the topic name.
            partitions: partition count; default the broker's ``partitions``. An existing
                topic keeps its own count.
            replication_factor: copies of each partition; default the broker's.
            config: topic configuration, e.g. ``{"max.message.bytes": "2000"}``.

        Returns:
            ``name``.

        Raises:
            ValueError: ``name`` is not a legal Kafka topic name (the rules publishers check).
            BrokerStartError: the broker is not running.
            KafkaException: the broker refused the topic.
        """
        self.create_topics([name], partitions, replication_factor, config)
        return name

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int | None = None,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Create topics and wait until every partition of each has a leader; existing ones
        are kept as they are.

        Args:
            names: the topic names.
            partitions: partition count of each; default the broker's ``partitions``.
            replication_factor: copies of each partition; default the broker's.
            config: topic configuration of each.

        Returns:
            The names, in order, without duplicates.

        Raises:
            ValueError: a name is not a legal Kafka topic name (the rules publishers check:
                some brokers create what publishers then refuse), or ``partitions`` < 1.
            BrokerStartError: the broker is not running.
            KafkaException: the broker refused a topic.
            TimeoutError: the topics were not listed with leaders within 30 s.
        """
        count = self._partitions if partitions is None else partitions
        if count < 1:
            raise ValueError(f"partitions must be >= 1, got {count}")
        replicas = self._replication_factor if replication_factor is None else replication_factor
        if replicas < 1:
            raise ValueError(f"replication_factor must be >= 1, got {replicas}")
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            problem = topic_problem(name)
            if problem is not None:
                raise ValueError(f"topic {name!r} is not a legal Kafka topic name: {problem}")
        if not wanted:
            return wanted
        self._require_running()
        admin = self._admin_client()
        settings = {key: str(value) for key, value in (config or {}).items()}
        futures = admin.create_topics(
            [
                NewTopic(name, num_partitions=count, replication_factor=replicas, config=settings)
                for name in wanted
            ],
            operation_timeout=10.0,
            request_timeout=15.0,
        )
        for future in futures.values():
            # exception(), not result(): a raised error would keep this frame, and with it the
            # AdminClient and its connection, alive in a reference cycle until the next GC.
            error = future.exception()
            if isinstance(error, KafkaException):
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise error
            elif error is not None:
                raise error
        # Producing right after creation must not race the topic (or its leaders) into
        # existence.
        deadline = time.monotonic() + 30.0
        while True:
            listed = admin.list_topics(timeout=5.0).topics
            if all(
                name in listed
                and listed[name].partitions
                and all(p.leader >= 0 for p in listed[name].partitions.values())
                for name in wanted
            ):
                return wanted
            if time.monotonic() > deadline:
                missing = sorted(name for name in wanted if name not in listed)
                raise TimeoutError(
                    f"topics not listed with a leader for every partition after 30 s: {missing}"
                )
            time.sleep(0.02)

    def unique_topic(
        self,
        prefix: str = "t",
        partitions: int | None = None,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
    ) -> str:
        """Create a topic named ``{prefix}-{random hex}`` and return its name.

        Args:
            prefix: start of the name.
            partitions: partition count; default the broker's ``partitions``.
            replication_factor: copies of each partition; default the broker's.
            config: topic configuration.
        """
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        return self.create_topic(name, partitions, replication_factor, config)

    # -- reading back ------------------------------------------------------------------------

    def consume(
        self, topic: str, *, count: int | None = None, timeout: float = 30.0
    ) -> list[ConsumedRecord]:
        """Read a topic from offset 0 of every partition with a plain consumer.

        The consumer uses ``assign()`` (no group join, nothing committed) and librdkafka's
        default ``read_committed`` isolation; records are counted by reading them, never from
        watermarks.

        Args:
            topic: an existing topic.
            count: stop once at least this many records were read (one fetch may bring more;
                all are returned). ``None``: read until every partition reached its end.
            timeout: seconds before giving up.

        Returns:
            The records, in (partition, offset) order.

        Raises:
            BrokerStartError: the broker is not running.
            ValueError: the topic does not exist.
            TimeoutError: ``count`` records (or every partition's end) were not reached within
                ``timeout``; the message says how many records were read.
            KafkaException: the consumer failed with a non-retriable error.
        """
        self._require_running()
        return self._read_back(topic, count, timeout, self._client_settings())

    def _read_back(
        self, topic: str, count: int | None, timeout: float, settings: Mapping[str, Any]
    ) -> list[ConsumedRecord]:
        """`consume` with a consumer connected by ``settings``."""
        self._require_running()
        found = self._admin_client().list_topics(timeout=min(timeout, 10.0)).topics.get(topic)
        if found is None or not found.partitions:
            raise ValueError(f"topic {topic!r} does not exist on {self.bootstrap_servers}")
        partitions = sorted(found.partitions)
        consumer = Consumer(
            {
                **settings,
                # Required by the client even though assign() never joins the group.
                "group.id": f"eventwire-readback-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 50,
            }
        )
        records: list[ConsumedRecord] = []
        at_end: set[int] = set()
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
            deadline = time.monotonic() + timeout
            while True:
                if count is not None and len(records) >= count:
                    break
                if count is None and at_end.issuperset(partitions):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    goal = f"{count} records" if count is not None else "the end of every partition"
                    raise TimeoutError(
                        f"read {len(records)} records from {topic!r} in {timeout:g} s without"
                        f" reaching {goal} (partitions at their end: {sorted(at_end)})"
                    )
                for message in consumer.consume(num_messages=10_000, timeout=min(0.2, remaining)):
                    error = message.error()
                    if error is None:
                        record = _record(message)
                        at_end.discard(record.partition)
                        records.append(record)
                    elif error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition() or 0)
                    elif error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                        continue  # assign() needs no group: a reader without group ACLs reads
                    elif not error.retriable():
                        raise KafkaException(error)
        finally:
            consumer.close()
        records.sort(key=lambda r: (r.partition, r.offset))
        return records


def _record(message: Message[Any, Any]) -> ConsumedRecord:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = tuple(
        (name, value.encode() if isinstance(value, str) else value) for name, value in pairs
    )
    return ConsumedRecord(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=headers,
        timestamp_ms=int(message.timestamp()[1]),
    )
