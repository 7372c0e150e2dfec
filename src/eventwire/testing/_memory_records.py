"""The records of the in-memory cluster (``_memory``): the log's entries, what a delivery
report carries, what waits in a transport's queue, an open transaction, and Kafka's murmur2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple

from confluent_kafka import KafkaError

#: Codes whose errors librdkafka flags fatal.
_FATAL_FLAG_CODES: Final = frozenset({"_FATAL"})
_CREATE_TIME: Final = 1  # confluent_kafka.TIMESTAMP_CREATE_TIME


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's, which librdkafka's ``murmur2_random`` matches)."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length - end
    if tail:
        h ^= int.from_bytes(data[end:], "little")
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def kafka_error(code: str) -> Any:
    """The ``KafkaError`` of a librdkafka error name.

    Raises:
        ValueError: not a librdkafka error name.
    """
    number = getattr(KafkaError, code, None)
    if not isinstance(number, int):
        raise ValueError(f"unknown librdkafka error name {code!r}")
    return KafkaError(number, fatal=code in _FATAL_FLAG_CODES)


class StoredRecord(NamedTuple):
    """A record in the memory broker's log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int


class Message:
    """What a delivery report's ``msg`` answers (as ``confluent_kafka.Message``)."""

    __slots__ = ("_offset", "_partition", "_timestamp", "_topic")

    def __init__(self, topic: str, partition: int, offset: int, timestamp_ms: int) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._timestamp = timestamp_ms

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return _CREATE_TIME, self._timestamp


class Queued:
    __slots__ = (
        "deliver_at",
        "expires_at",
        "headers",
        "key",
        "on_delivery",
        "topic",
        "transaction",
        "value",
    )

    def __init__(
        self,
        *,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: tuple[tuple[str, bytes | None], ...],
        on_delivery: Callable[[Any, Any], None],
        deliver_at: float,
        expires_at: float,
        transaction: Transaction | None = None,
    ) -> None:
        self.transaction = transaction
        self.topic = topic
        self.value = value
        self.key = key
        self.headers = headers
        self.on_delivery = on_delivery
        self.deliver_at = deliver_at
        self.expires_at = expires_at


class Transaction:
    """An open transaction of a transactional transport: its records, written but not yet
    visible, and the consumer offsets sent in it."""

    __slots__ = ("epoch", "error", "offsets", "records")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.records: list[StoredRecord] = []
        self.offsets: list[tuple[Any, list[Any]]] = []
        #: The first failed record's error: the transaction must be aborted.
        self.error: Any = None


class Metadata:
    """What ``list_topics`` returns: the topics known so far."""

    def __init__(self, topics: dict[str, int]) -> None:
        self.topics = topics


def header_items(headers: Any) -> tuple[tuple[str, bytes | None], ...]:
    if not headers:
        return ()
    items = headers.items() if isinstance(headers, dict) else headers
    return tuple(
        (name, value.encode() if isinstance(value, str) else value) for name, value in items
    )


def event_id(headers: tuple[tuple[str, bytes | None], ...]) -> str:
    for name, value in headers:
        if name == "ce_id" and value is not None:
            return value.decode()
    return ""
