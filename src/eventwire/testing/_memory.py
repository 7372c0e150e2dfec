"""An in-memory Kafka cluster, and the transport the fake publishers produce to.

``MemoryBroker`` keeps a log per topic-partition (offsets from 0, keys placed with the Java
client's murmur2 like ``murmur2_random``, keyless records round-robin) and can be told to fail
the attempts of chosen events, to go unreachable, or to deliver late. ``MemoryTransport``
speaks the transport protocol of ``eventwire.transport`` as ``confluent_kafka.Producer``
does: ``BufferError`` when its queue is full, ``KafkaException`` for a record over
``message.max.bytes``, delivery reports served by ``poll``/``flush``, ``_ALL_BROKERS_DOWN``
through ``error_cb`` and failed metadata requests while the cluster is unreachable, and
``_MSG_TIMED_OUT`` after ``message.timeout.ms``.

With ``transactional.id`` in its settings a transport is transactional, as librdkafka's is:
``init_transactions`` fences the older transport with the same id (its open transaction is
aborted; its later calls raise a fatal ``_FENCED``, its later records fail with
``INVALID_PRODUCER_EPOCH``), ``produce`` outside a transaction raises ``_STATE``, records
written in a transaction take their offsets but join ``MemoryBroker.records`` (what the
fakes' ``published()`` reads) only when it commits, an aborted one's never; a failed record
makes ``commit_transaction`` raise an error that requires an abort; and offsets given to
``send_offsets_to_transaction`` are kept in ``MemoryBroker.transaction_offsets`` on commit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from eventwire.testing._memory_records import (
    Message,
    Metadata,
    Queued,
    StoredRecord,
    Transaction,
    event_id,
    header_items,
    kafka_error,
    murmur2,
)
from eventwire.transport import Transport


class MemoryBroker:
    """An in-memory Kafka cluster shared by the transports built from it (a producer
    replacement builds a new transport on the same broker).

    Args:
        partitions: partitions per topic, or a mapping from topic to its partition count
            (topics not in it have 3).

    Raises:
        ValueError: a partition count below 1.
    """

    def __init__(self, partitions: int | Mapping[str, int] = 3) -> None:
        if isinstance(partitions, int):
            self._default_partitions, self._partitions = partitions, {}
        else:
            self._default_partitions, self._partitions = 3, dict(partitions)
        if min([self._default_partitions, *self._partitions.values()]) < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions!r}")
        self.cond = threading.Condition(threading.Lock())
        self.records: list[StoredRecord] = []
        self._next_offset: dict[tuple[str, int], int] = {}
        self._round_robin: dict[str, int] = {}
        #: Distinct events handed over so far (an event's retries do not count again).
        self._seen: set[tuple[str, str]] = set()
        self._failures: dict[int, tuple[str, int | None]] = {}
        self._failing: dict[tuple[str, str], list[Any]] = {}  # (ce_id, topic) -> [code, left]
        self.reachable = True
        self.delay = 0.0
        #: transactional id -> its current epoch (bumped by each ``init_transactions``).
        self._epochs: dict[str, int] = {}
        #: transactional id -> the transaction its current producer has open.
        self._open: dict[str, Transaction] = {}
        #: ``(consumer group metadata, offsets)`` sent in committed transactions, in commit
        #: order (``confluent_kafka.TopicPartition`` lists, as given).
        self.transaction_offsets: list[tuple[Any, list[Any]]] = []

    def transport(self, settings: Mapping[str, object]) -> Transport:
        """A new transport on this broker (the ``TransportFactory`` of the fakes)."""
        return MemoryTransport(self, settings)

    def fail_nth(self, n: int, code: str, times: int | None) -> None:
        """The ``n``-th event handed over from now on fails ``times`` attempts (``None``:
        every attempt) with ``code``."""
        with self.cond:
            self._failures[len(self._seen) + n] = (code, times)

    def set_reachable(self, reachable: bool) -> None:
        with self.cond:
            self.reachable = reachable
            self.cond.notify_all()

    def set_delay(self, seconds: float) -> None:
        with self.cond:
            self.delay = seconds

    def forget_records(self) -> None:
        with self.cond:
            self.records.clear()

    def partitions_of(self, topic: str) -> int:
        return self._partitions.get(topic, self._default_partitions)

    def place(self, topic: str, key: bytes | None) -> int:
        """The partition of a record (lock held)."""
        count = self.partitions_of(topic)
        if key is None:
            turn = self._round_robin.get(topic, 0)
            self._round_robin[topic] = turn + 1
            return turn % count
        return (murmur2(key) & 0x7FFFFFFF) % count

    def register(self, transactional_id: str) -> int:
        """A producer of ``transactional_id`` initialised: its epoch, one above the fenced
        producer's, whose open transaction is aborted (lock held)."""
        epoch = self._epochs.get(transactional_id, -1) + 1
        self._epochs[transactional_id] = epoch
        self._open.pop(transactional_id, None)
        return epoch

    def current_epoch(self, transactional_id: str) -> int:
        return self._epochs.get(transactional_id, -1)

    def begin(self, transactional_id: str, epoch: int) -> Transaction:
        transaction = self._open[transactional_id] = Transaction(epoch)
        return transaction

    def end(self, transactional_id: str, transaction: Transaction, *, commit: bool) -> None:
        """Make a transaction's records visible (``commit``) or drop them (lock held)."""
        if self._open.get(transactional_id) is transaction:
            del self._open[transactional_id]
        if commit:
            self.records.extend(transaction.records)
            self.transaction_offsets.extend(transaction.offsets)

    def write(self, queued: Queued) -> tuple[Any, Message]:
        """Append ``queued`` to its partition's log (in a transaction: to the transaction, in
        the log once it commits), or fail it as injected (lock held)."""
        ident = (event_id(queued.headers), queued.topic)
        if ident not in self._seen:
            self._seen.add(ident)
            failure = self._failures.pop(len(self._seen), None)
            if failure is not None:
                self._failing[ident] = [failure[0], failure[1]]
        partition = self.place(queued.topic, queued.key)
        now_ms = time.time_ns() // 1_000_000
        failing = self._failing.get(ident)
        if failing is not None:
            code, left = failing
            if left is not None:
                failing[1] = left - 1
                if left - 1 <= 0:
                    del self._failing[ident]
            return kafka_error(code), Message(queued.topic, partition, -1, now_ms)
        place = (queued.topic, partition)
        offset = self._next_offset.get(place, 0)
        self._next_offset[place] = offset + 1
        stored = StoredRecord(
            queued.topic, partition, offset, queued.key, queued.value, queued.headers, now_ms
        )
        if queued.transaction is None:
            self.records.append(stored)
        else:
            queued.transaction.records.append(stored)
        return None, Message(queued.topic, partition, offset, now_ms)

    def topics(self) -> dict[str, int]:
        with self.cond:
            return {topic: self.partitions_of(topic) for topic, _ in self._next_offset}


class MemoryTransport:
    """One producer client on a ``MemoryBroker`` (see the module docstring)."""

    def __init__(self, broker: MemoryBroker, settings: Mapping[str, object]) -> None:
        self._broker = broker
        error_cb = settings.get("error_cb")
        self._error_cb: Callable[[Any], object] | None = error_cb if callable(error_cb) else None
        self._max_bytes = int(str(settings.get("message.max.bytes", 1_000_000)))
        self._max_messages = int(str(settings.get("queue.buffering.max.messages", 100_000)))
        self._timeout = float(str(settings.get("message.timeout.ms", 300_000))) / 1000
        self._queue: deque[Queued] = deque()
        self._done: deque[tuple[Callable[[Any, Any], None], Any, Any]] = deque()
        self._closed = False
        self._told_down = False
        tid = settings.get("transactional.id")
        self._transactional_id: str | None = tid if isinstance(tid, str) else None
        self._epoch: int | None = None  # set by init_transactions
        self._transaction: Transaction | None = None

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: Callable[[Any, Any], None],
        headers: Any = None,
        **_: Any,
    ) -> None:
        if self._closed:
            raise RuntimeError("Producer has been closed")
        value = value or b""
        items = header_items(headers)
        size = len(value) + len(key or b"") + sum(len(n) + len(v or b"") for n, v in items)
        if size > self._max_bytes:  # librdkafka refuses it in produce()
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        broker = self._broker
        now = time.monotonic()
        with broker.cond:
            if self._transactional_id is not None:
                self._check_not_fenced(KafkaError._FATAL)
                if self._transaction is None:
                    raise KafkaException(KafkaError(KafkaError._STATE))
            if len(self._queue) >= self._max_messages:
                raise BufferError("Local: Queue full")
            self._queue.append(
                Queued(
                    topic=topic,
                    value=value,
                    key=key,
                    headers=items,
                    on_delivery=on_delivery,
                    deliver_at=now + broker.delay,
                    expires_at=now + self._timeout,
                    transaction=self._transaction,
                )
            )
            broker.cond.notify_all()

    def poll(self, timeout: float = -1) -> int:
        served = self._serve()
        if served or timeout == 0:
            return served
        with self._broker.cond:
            self._broker.cond.wait(None if timeout < 0 else timeout)
        return self._serve()

    def flush(self, timeout: float = -1) -> int:
        deadline = time.monotonic() + (1e9 if timeout < 0 else timeout)
        while len(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.poll(min(remaining, 0.01))
        return len(self)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        # A record waiting for its delivery delay is in flight (``_PURGE_INFLIGHT``: it may
        # have been written); one held back by an unreachable cluster is still queued.
        broker = self._broker
        now = time.monotonic()
        with broker.cond:
            keep: deque[Queued] = deque()
            for queued in self._queue:
                sent = broker.reachable and broker.delay > 0 and queued.deliver_at > now
                if (in_flight and sent) or (in_queue and not sent):
                    code = "_PURGE_INFLIGHT" if sent else "_PURGE_QUEUE"
                    message = Message(queued.topic, -1, -1, 0)
                    self._done.append((queued.on_delivery, kafka_error(code), message))
                else:
                    keep.append(queued)
            self._queue = keep

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        if self._closed:
            raise RuntimeError("Producer has been closed")
        if not self._broker.reachable:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return Metadata(self._broker.topics())

    def close(self) -> int:
        self._closed = True
        return len(self)

    def __len__(self) -> int:
        return len(self._queue) + len(self._done)

    # -- transactions (as librdkafka's; see the module docstring) ---------------------------

    def init_transactions(self, timeout: float) -> None:
        transactional_id = self._need_transactional()
        with self._broker.cond:
            self._wait_reachable(timeout)
            self._check_not_fenced(KafkaError._FENCED)
            self._epoch = self._broker.register(transactional_id)
            self._transaction = None

    def begin_transaction(self) -> None:
        transactional_id = self._need_transactional()
        with self._broker.cond:
            self._check_not_fenced(KafkaError._FENCED)
            if self._epoch is None or self._transaction is not None:
                raise KafkaException(KafkaError(KafkaError._STATE))
            self._transaction = self._broker.begin(transactional_id, self._epoch)

    def send_offsets_to_transaction(
        self, positions: list[Any], group_metadata: Any, timeout: float
    ) -> None:
        self._need_transactional()
        with self._broker.cond:
            self._check_not_fenced(KafkaError._FENCED)
            transaction = self._transaction
            if transaction is None:
                raise KafkaException(KafkaError(KafkaError._STATE))
            self._wait_reachable(timeout)
            transaction.offsets.append((group_metadata, list(positions)))

    def commit_transaction(self, timeout: float) -> None:
        self._end_transaction(timeout, commit=True)

    def abort_transaction(self, timeout: float) -> None:
        self._end_transaction(timeout, commit=False)

    def _end_transaction(self, timeout: float, *, commit: bool) -> None:
        transactional_id = self._need_transactional()
        if commit:
            self.flush(timeout)  # as librdkafka's commit: what is queued is sent first
        else:
            self.purge(True, False)
            self._serve()
        broker = self._broker
        with broker.cond:
            self._check_not_fenced(KafkaError._FENCED)
            transaction = self._transaction
            if transaction is None:
                raise KafkaException(KafkaError(KafkaError._STATE))
            if commit and transaction.error is not None:
                error = transaction.error
                raise KafkaException(KafkaError(error.code(), error.str(), txn_requires_abort=True))
            if commit and len(self):
                raise KafkaException(
                    KafkaError(KafkaError._TIMED_OUT, "flush timed out", retriable=True)
                )
            self._wait_reachable(timeout)
            broker.end(transactional_id, transaction, commit=commit)
            self._transaction = None

    def _write(self, queued: Queued) -> tuple[Any, Message]:
        """``broker.write``, or the broker's refusal of a fenced producer's record; a failed
        record of a transaction makes it abortable (lock held)."""
        transaction = queued.transaction
        tid = self._transactional_id
        if (
            transaction is not None
            and tid is not None
            and (self._broker.current_epoch(tid) != transaction.epoch)
        ):
            return kafka_error("INVALID_PRODUCER_EPOCH"), Message(queued.topic, -1, -1, 0)
        error, message = self._broker.write(queued)
        if error is not None and transaction is not None and transaction.error is None:
            transaction.error = error
        return error, message

    def _need_transactional(self) -> str:
        if self._transactional_id is None:
            raise KafkaException(KafkaError(KafkaError._NOT_CONFIGURED))
        return self._transactional_id

    def _check_not_fenced(self, code: int) -> None:
        """Raise a fatal error once a newer producer took this one's id (lock held)."""
        tid, epoch = self._transactional_id, self._epoch
        if tid is not None and epoch is not None and self._broker.current_epoch(tid) != epoch:
            raise KafkaException(KafkaError(code, fatal=True))

    def _wait_reachable(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the cluster (lock held); ``_TIMED_OUT`` (retriable)."""
        broker = self._broker
        if not broker.cond.wait_for(lambda: broker.reachable, timeout):
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, "cluster unreachable", retriable=True)
            )

    def _serve(self) -> int:
        broker = self._broker
        now = time.monotonic()
        tell_down = False
        with broker.cond:
            done = self._done
            queue = self._queue
            if not broker.reachable and not self._told_down:
                self._told_down = tell_down = True
            elif broker.reachable:
                self._told_down = False
            while queue:
                queued = queue[0]
                if now >= queued.expires_at:
                    error = kafka_error("_MSG_TIMED_OUT")
                    done.append((queued.on_delivery, error, Message(queued.topic, -1, -1, 0)))
                elif broker.reachable and queued.deliver_at <= now:
                    done.append((queued.on_delivery, *self._write(queued)))
                else:
                    break  # in order: what is behind waits too
                queue.popleft()
            reports = list(done)
            done.clear()
        if tell_down and self._error_cb is not None:
            self._error_cb(kafka_error("_ALL_BROKERS_DOWN"))
        for on_delivery, error, message in reports:
            on_delivery(error, message)
        return len(reports)
