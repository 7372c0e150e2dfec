"""FakePublisher and AsyncFakePublisher: in-memory twins of the real publishers for unit tests.

They run the real ``EventCodec`` (validation, encoding, key, CloudEvents headers, topic
remapping), place keys with the same Java-compatible murmur2 hash as the real
``murmur2_random`` partitioner, give offsets per topic-partition, and keep what was
"delivered" for assertions. ``tests/contract`` runs one suite against these and the real
publishers on a local broker so the two cannot drift.

Events over ``message.max.bytes`` are refused as librdkafka refuses them. Not simulated:
retries, dead-letter writes (with a ``DeadLetterPolicy`` the real publisher would dead-letter
what the fake raises) and producer recreation. An injected failure is the final outcome the
caller sees, as after retries were exhausted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import msgspec
from confluent_kafka import KafkaError

from eventwire._classify import classify, to_publish_error
from eventwire._codec import EncodedEvent, EventCodec, UserHeaders, header_items, key_bytes
from eventwire._config import PublisherConfig
from eventwire._errors import (
    CLOSED_MESSAGE,
    AmbiguousPublishError,
    CircuitOpenError,
    ConfigError,
    EventwireError,
    FatalPublishError,
    PermanentPublishError,
    PublisherClosedError,
    PublishError,
    QueueFullError,
    RetriablePublishError,
)
from eventwire._events import event_batch
from eventwire._health import HealthStatus
from eventwire._outcome import (
    Accepted,
    CloseReport,
    DeliveryReceipt,
    PublishOutcome,
    SyncAccepted,
)
from eventwire._producer import too_large_error
from eventwire._publisher import (
    OTHER_LOOP_MESSAGE,
    SPOOL_NEEDED_MESSAGE,
    circuit_open_error,
    overtaking_error,
    queue_full_error,
)
from eventwire.testing._broker import first_header

_E = TypeVar("_E")

#: A bootstrap address that is never contacted (``.invalid`` is reserved, RFC 2606).
FAKE_BOOTSTRAP: Final = "fake.invalid:9092"

# librdkafka code used when a failure is injected by class only: one per class, typical of it.
_DEFAULT_CODES: Final[Mapping[type[PublishError], str]] = {
    RetriablePublishError: "NETWORK_EXCEPTION",
    PermanentPublishError: "TOPIC_AUTHORIZATION_FAILED",
    FatalPublishError: "_FATAL",
    AmbiguousPublishError: "_MSG_TIMED_OUT",
}
_FATAL_FLAG_CODES: Final = frozenset({"_FATAL"})


def _murmur2(data: bytes) -> int:
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


class PublishedRecord(msgspec.Struct, frozen=True):
    """One event a fake publisher delivered, as a consumer would read it.

    Attributes:
        event: the event decoded back from ``value`` (equal to the published one; with
            ``validate=False``, the object given if its bytes do not decode).
        topic: the topic it was written to, after ``topic_map``/``topic_prefix``.
        partition: the partition (murmur2 of the key; round-robin without a key).
        offset: its offset in that partition, from 0.
        key: the key bytes, ``None`` without a key.
        value: the encoded payload.
        headers: ``(name, value)`` pairs in record order (CloudEvents, then the caller's).
        timestamp_ms: when it was accepted, milliseconds since the Unix epoch.
        event_id: the ``ce_id`` header.
        event_type: the ``ce_type`` header.
    """

    event: Any
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int
    event_id: str
    event_type: str

    def header(self, name: str) -> bytes | None:
        """The value of the first header called ``name``; ``None`` if absent or null."""
        return first_header(self.headers, name)


class _Accepted:
    """An event handed to the fake broker: its place is fixed, its delivery may be delayed."""

    __slots__ = ("encoded", "event", "offset", "partition", "timestamp_ms")

    def __init__(self, event: Any, encoded: EncodedEvent, partition: int, offset: int, ts: int):
        self.event = event
        self.encoded = encoded
        self.partition = partition
        self.offset = offset
        self.timestamp_ms = ts


class _FakeBase:
    """State, failure injection and assertions shared by both twins."""

    def __init__(
        self, config: PublisherConfig | None = None, *, partitions: int | Mapping[str, int] = 3
    ) -> None:
        self._config = (
            config if config is not None else PublisherConfig(bootstrap_servers=FAKE_BOOTSTRAP)
        )
        if isinstance(partitions, int):
            self._default_partitions, self._partitions = partitions, {}
        else:
            self._default_partitions, self._partitions = 3, dict(partitions)
        if min([self._default_partitions, *self._partitions.values()]) < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions!r}")
        limit = self._config.to_librdkafka().get("message.max.bytes", 1_000_000)
        self._max_message_bytes = int(str(limit))
        self._codec = EventCodec(
            encoding=self._config.encoding,
            validate=self._config.validate,
            source=self._config.ce_source,
            resolve_topic=self._config.resolve_topic,
        )
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._records: list[PublishedRecord] = []
        self._next_offset: dict[tuple[str, int], int] = {}
        self._round_robin: dict[str, int] = {}
        self._handed = 0
        self._failures: dict[int, tuple[type[PublishError], str | None]] = {}
        self._breaker_reason: str | None = None
        self._delay = 0.0
        self._closed = False
        self._intake_stopped = False
        self._outstanding = 0
        self._delivered = 0
        self._failed = 0
        self._undelivered: list[str] = []

    def _stop_intake(self) -> None:
        """Refuse new events from now on, as the real publishers do on a shutdown signal
        (`GracefulShutdown` calls it from its signal handler)."""
        self._intake_stopped = True

    def _check_open(self) -> None:
        if self._closed or self._intake_stopped:
            raise PublisherClosedError(CLOSED_MESSAGE)

    # -- the publisher protocol's properties -----------------------------------------------

    @property
    def config(self) -> PublisherConfig:
        """The configuration this fake honours."""
        return self._config

    @property
    def closed(self) -> bool:
        """Whether ``close``/``aclose`` was called."""
        return self._closed

    @property
    def outstanding(self) -> int:
        """Events accepted whose (delayed) delivery is not settled yet."""
        return self._outstanding

    @property
    def breaker_state(self) -> str:
        """``"open"`` after ``open_breaker()``, else ``"closed"``; ``"disabled"`` when the
        config has no breaker."""
        if self._config.breaker is None:
            return "disabled"
        return "closed" if self._breaker_reason is None else "open"

    def health(self) -> HealthStatus:
        """A ``HealthStatus`` as the real publishers give it: ready unless closed or the
        breaker was opened with ``open_breaker()`` (then the broker counts as unreachable)."""
        reasons = []
        if self._closed:
            reasons.append("publisher is closed")
        reachable = self._breaker_reason is None
        if not reachable:
            reasons.append(f"circuit breaker is open ({self._breaker_reason})")
        now = time.time()
        with self._lock:
            return HealthStatus(
                ready=not reasons,
                reasons=tuple(reasons),
                broker_reachable=reachable,
                probed_at=now,
                breaker_state=self.breaker_state,
                queue_depth=self._outstanding,
                outstanding=self._outstanding,
                spool_backlog=None,
                spool_oldest_age=None,
                delivered=self._delivered,
                failed=self._failed,
                last_error=None,
                last_error_at=None,
                closed=self._closed,
                checked_at=now,
            )

    # -- what was published ------------------------------------------------------------------

    def published(
        self,
        of_type: type[Any] | None = None,
        *,
        topic: str | None = None,
        key: str | bytes | int | uuid.UUID | None = None,
    ) -> list[PublishedRecord]:
        """The delivered records in delivery order, optionally filtered.

        Args:
            of_type: only events of this class.
            topic: only records written to this topic (the name after remapping).
            key: only records with this key: the key field's value (``str``, ``int``,
                ``UUID``, a ``StrEnum``/``IntEnum`` member) or the key bytes.

        Raises:
            TypeError: ``key`` is of another type (it could match no record).
        """
        wanted_key = None if key is None else key_bytes(key)
        with self._lock:
            records = list(self._records)
        return [
            r
            for r in records
            if (of_type is None or type(r.event) is of_type)
            and (topic is None or r.topic == topic)
            and (wanted_key is None or r.key == wanted_key)
        ]

    def events(self, of_type: type[_E]) -> list[_E]:
        """The delivered events of one class, decoded back, in delivery order."""
        return [r.event for r in self.published(of_type)]

    def assert_published(
        self, *expected: Any, topic: str | None = None, exact: bool = True
    ) -> None:
        """Assert what was delivered (to ``topic``, if given).

        Args:
            expected: the events, in delivery order; compared by value.
            topic: only look at records written to this topic (the name after remapping).
            exact: ``True``: exactly these events were delivered (none: nothing was);
                ``False``: they were delivered in this order, possibly among others.

        Raises:
            AssertionError: with what was delivered instead.
        """
        got = [r.event for r in self.published(topic=topic)]
        if exact:
            ok = got == list(expected)
        else:
            remaining = iter(got)
            ok = all(any(e == g for g in remaining) for e in expected)
        if not ok:
            where = f" to {topic!r}" if topic is not None else ""
            what = "exactly" if exact else "in order, among others,"
            raise AssertionError(
                f"expected {what} {list(expected)!r} to be published{where}; published: {got!r}"
            )

    def clear(self) -> None:
        """Forget the delivered records. Offsets keep counting, as on a broker; injected
        failures, the breaker and the delay stay."""
        with self._lock:
            self._records.clear()

    # -- failure injection -------------------------------------------------------------------

    def fail_nth(
        self, n: int = 1, error: type[PublishError] | None = None, *, code: str | None = None
    ) -> None:
        """Make the ``n``-th event handed over from now on (1 = the next one) fail.

        Events refused earlier (validation, open breaker) do not count. The error is built as
        the real publisher builds it: ``code`` (a librdkafka error name, e.g.
        ``"UNKNOWN_TOPIC_OR_PART"``) decides the class through the classification table, with
        a ``KafkaException`` as ``__cause__``.

        Args:
            n: which event, counting from the next one.
            error: ``RetriablePublishError`` (default), ``PermanentPublishError``,
                ``FatalPublishError``, ``AmbiguousPublishError``, ``QueueFullError`` or
                ``CircuitOpenError``; ``None`` with a ``code``: the class of that code.
            code: the librdkafka error name; defaults to one typical of ``error``.

        Raises:
            ValueError: ``n`` < 1, an unknown code, or a code of another class than ``error``.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if error in (QueueFullError, CircuitOpenError):
            if code is not None:
                raise ValueError(f"{error.__name__} carries no librdkafka code")
        else:
            if code is None:
                error = error or RetriablePublishError
                if error not in _DEFAULT_CODES:
                    raise ValueError(f"cannot inject {error.__name__}")
                code = _DEFAULT_CODES[error]
            kafka_error = _kafka_error(code)
            actual = type(to_publish_error(kafka_error, topic="", event_id=""))
            if error is not None and actual is not error:
                raise ValueError(
                    f"{code} is classified {classify(kafka_error)} ({actual.__name__}), "
                    f"not {error.__name__}"
                )
            error = actual
        with self._lock:
            self._failures[self._handed + n] = (error, code)

    def open_breaker(self, reason: str = "_ALL_BROKERS_DOWN") -> None:
        """Simulate an open circuit breaker: every publish fails with ``CircuitOpenError``
        (after validation, as for real) until ``close_breaker()``.

        Raises:
            ValueError: the config has no breaker (``breaker=None``).
        """
        if self._config.breaker is None:
            raise ValueError("the config has no circuit breaker (breaker=None)")
        self._breaker_reason = reason

    def close_breaker(self) -> None:
        """End ``open_breaker()``."""
        self._breaker_reason = None

    def delay_deliveries(self, seconds: float) -> None:
        """Deliver each accepted event ``seconds`` after it was accepted (0: at once). The
        event counts as ``outstanding`` meanwhile; a close whose timeout passes first fails it
        with ``AmbiguousPublishError``, as a purged in-flight message."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self._delay = seconds

    # -- the pipeline ------------------------------------------------------------------------

    def _encode(
        self,
        event: Any,
        topic: str | None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
        *,
        spooled: bool = False,
    ) -> EncodedEvent:
        """Codec, then breaker, as the real publisher (with a spool an open breaker spools)."""
        self._check_open()
        with self._lock:  # the codec's event-id counter is not thread-safe
            enc = self._codec.encode(event, topic, key, headers)
        if self._breaker_reason is not None and not spooled:
            raise circuit_open_error(enc, self._breaker_reason)
        return enc

    def _partition(self, topic: str, key: bytes | None) -> int:
        count = self._partitions.get(topic, self._default_partitions)
        if key is None:  # the real producer spreads keyless events; round-robin is one way
            turn = self._round_robin.get(topic, 0)
            self._round_robin[topic] = turn + 1
            return turn % count
        return (_murmur2(key) & 0x7FFFFFFF) % count

    def _durable(
        self,
        event: Any,
        topic: str | None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> tuple[EncodedEvent, _Accepted | PublishError]:
        """``accept``'s first half, as with a real spool: the event is kept (the file is never
        touched) and delivered; only a permanent failure (injected, or too large) is its
        outcome — the spool would re-send anything else until delivered."""
        enc = self._encode(event, topic, key, headers, spooled=True)
        try:
            return enc, self._accept(event, enc, durable=True)
        except PublishError as exc:
            return enc, exc

    def _need_spool(self) -> None:
        if self._config.spool_path is None:
            raise ConfigError(SPOOL_NEEDED_MESSAGE)

    def _accept(self, event: Any, enc: EncodedEvent, *, durable: bool = False) -> _Accepted:
        """Hand one event to the fake broker: an injected failure, or its place in the log."""
        size = len(enc.value) + len(enc.key or b"")
        size += sum(len(name) + len(value or b"") for name, value in header_items(enc.headers))
        if size > self._max_message_bytes:  # librdkafka refuses it in produce()
            too_large = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
            raise too_large_error(enc, self._max_message_bytes, too_large)
        with self._lock:
            self._handed += 1
            failure = self._failures.pop(self._handed, None)
            if failure is not None and durable and failure[0] is not PermanentPublishError:
                failure = None  # a spool keeps the event and re-sends it until delivered
            if failure is not None:
                self._failed += 1
                raise self._injected(enc, *failure)
            partition = self._partition(enc.topic, enc.key)
            place = (enc.topic, partition)
            offset = self._next_offset.get(place, 0)
            self._next_offset[place] = offset + 1
            self._outstanding += 1
        return _Accepted(event, enc, partition, offset, time.time_ns() // 1_000_000)

    def _injected(self, enc: EncodedEvent, error: type[PublishError], code: str | None) -> Any:
        if error is QueueFullError:
            return queue_full_error(enc, self._config.queue_full_timeout)
        if error is CircuitOpenError:
            return circuit_open_error(enc, "_ALL_BROKERS_DOWN")
        assert code is not None  # noqa: S101 - fail_nth stores a code for every other class
        retried = error in (RetriablePublishError, AmbiguousPublishError)
        attempts = self._config.retry.attempts if retried else 1
        return to_publish_error(
            _kafka_error(code), topic=enc.topic, event_id=enc.event_id, attempts=attempts
        )

    def _record(self, acc: _Accepted) -> PublishedRecord:
        enc = acc.encoded
        decode = msgspec.json.decode if self._config.encoding == "json" else msgspec.msgpack.decode
        try:
            decoded = decode(enc.value, type=type(acc.event))
        except msgspec.ValidationError:  # only with validate=False: keep what was given
            decoded = acc.event
        headers = tuple(
            (n, v.encode() if isinstance(v, str) else v) for n, v in header_items(enc.headers)
        )
        return PublishedRecord(
            decoded,
            enc.topic,
            acc.partition,
            acc.offset,
            enc.key,
            enc.value,
            headers,
            acc.timestamp_ms,
            enc.event_id,
            enc.event_type,
        )

    def _deliver(self, acc: _Accepted) -> DeliveryReceipt:
        record = self._record(acc)
        with self._lock:
            self._records.append(record)
            self._delivered += 1
            self._settled()
        return DeliveryReceipt(
            record.topic, record.partition, record.offset, record.timestamp_ms, record.event_id
        )

    def _abandon(self, acc: _Accepted) -> PublishError:
        """Give up on a delayed event; the caller holds the lock."""
        enc = acc.encoded
        self._undelivered.append(enc.event_id)
        self._settled()
        return to_publish_error(
            _kafka_error("_PURGE_INFLIGHT"),
            topic=enc.topic,
            event_id=enc.event_id,
            context="the publisher closed before delivery",
        )

    def _settled(self) -> None:
        self._outstanding -= 1
        self._drained.notify_all()

    def _admit(
        self, events: Iterable[Any], topic: str | None
    ) -> tuple[list[PublishOutcome | None], list[tuple[int, _Accepted]]]:
        """``publish_many``'s first half: every event through codec, breaker and the fake
        broker; refusals become outcomes, the rest waits for delivery."""
        self._check_open()
        outcomes: list[PublishOutcome | None] = []
        accepted: list[tuple[int, _Accepted]] = []
        blocked: dict[object, QueueFullError] = {}  # keys whose event found no room
        for index, event in enumerate(event_batch(events, "publish_many")):
            try:
                enc = self._encode(event, topic)
            except EventwireError as exc:
                outcomes.append(exc)
                continue
            # As the real publisher: a later event of a key that found no room would overtake.
            earlier = blocked.get(enc.key)
            if earlier is not None:
                outcomes.append(overtaking_error(enc, earlier))
                continue
            try:
                accepted.append((index, self._accept(event, enc)))
            except EventwireError as exc:
                if isinstance(exc, QueueFullError) and enc.key is not None:
                    blocked[enc.key] = exc
                outcomes.append(exc)
                continue
            outcomes.append(None)
        return outcomes, accepted

    def _report(self, timed_out: bool) -> CloseReport:
        with self._lock:
            return CloseReport(
                delivered=self._delivered,
                failed=self._failed,
                undelivered=len(self._undelivered),
                undelivered_event_ids=tuple(self._undelivered),
                timed_out=timed_out,
            )


def _kafka_error(code: str) -> Any:
    number = getattr(KafkaError, code, None)
    if not isinstance(number, int):
        raise ValueError(f"unknown librdkafka error name {code!r}")
    return KafkaError(number, fatal=code in _FATAL_FLAG_CODES)


class AsyncFakePublisher(_FakeBase):
    """In-memory twin of ``AsyncPublisher`` for unit tests: same methods and errors, no broker.

    Args:
        config: the configuration to honour (encoding, validation, source, topic remapping,
            breaker on or off, ``message.max.bytes``); the bootstrap address is never
            contacted. ``None``: ``PublisherConfig(bootstrap_servers=FAKE_BOOTSTRAP)``.
        partitions: partitions per topic, or a mapping from topic (after remapping) to its
            partition count; topics not in the mapping have 3.

    Raises:
        ValueError: a partition count below 1.

    Example::

        publisher = AsyncFakePublisher()
        await service.place_order(publisher, ...)
        publisher.assert_published(OrderPlaced(...))
    """

    def __init__(
        self, config: PublisherConfig | None = None, *, partitions: int | Mapping[str, int] = 3
    ) -> None:
        super().__init__(config, partitions=partitions)
        self._inflight: dict[_Accepted, tuple[asyncio.Future[DeliveryReceipt], Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind(self) -> None:
        """Refuse another event loop than the first one, as ``AsyncPublisher`` does."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError(OTHER_LOOP_MESSAGE)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> DeliveryReceipt:
        """Publish one event; as ``AsyncPublisher.publish``, delivered in memory."""
        self._bind()
        acc = self._accept(event, self._encode(event, topic, key, headers))
        return await self._schedule(acc)

    async def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[PublishOutcome]:
        """Publish events in order; as ``AsyncPublisher.publish_many``."""
        self._bind()
        outcomes, accepted = self._admit(events, topic)
        futures = [self._schedule(acc) for _, acc in accepted]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for (index, _), result in zip(accepted, results, strict=True):
            if not isinstance(result, EventwireError | DeliveryReceipt):
                raise result
            outcomes[index] = result
        return outcomes  # type: ignore[return-value]  # every slot is filled

    async def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> Accepted:
        """Accept one event; as ``AsyncPublisher.accept`` (needs ``spool_path`` in the config;
        the file is never touched), delivered in memory."""
        self._bind()
        self._need_spool()
        return self._accepted(*self._durable(event, topic, key, headers))

    async def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[Accepted | EventwireError]:
        """Accept events in order; as ``AsyncPublisher.accept_many``."""
        self._bind()
        self._need_spool()
        self._check_open()
        results: list[Accepted | EventwireError] = []
        for event in event_batch(events, "accept_many"):
            try:
                results.append(self._accepted(*self._durable(event, topic)))
            except EventwireError as exc:
                results.append(exc)
        return results

    def _accepted(self, enc: EncodedEvent, acc: _Accepted | PublishError) -> Accepted:
        if isinstance(acc, PublishError):
            future: asyncio.Future[DeliveryReceipt] = asyncio.get_running_loop().create_future()
            future.set_exception(acc)
        else:
            future = self._schedule(acc)
        # Not awaiting delivered() is a legitimate choice after accept(): mark it retrieved.
        future.add_done_callback(_retrieve)
        return Accepted(enc.event_id, enc.topic, future)

    def _schedule(self, acc: _Accepted) -> asyncio.Future[DeliveryReceipt]:
        """Deliver ``acc`` after the delay (on the next loop turn without one: a real publish
        always waits for its delivery report)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[DeliveryReceipt] = loop.create_future()
        handle = loop.call_later(self._delay, self._complete, acc)
        self._inflight[acc] = (future, handle)
        return future

    def _complete(self, acc: _Accepted) -> None:
        future, _ = self._inflight.pop(acc)
        try:
            receipt = self._deliver(acc)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():  # the caller may have been cancelled; the event is delivered
            future.set_result(receipt)

    async def aclose(self, timeout: float = 30.0) -> CloseReport:  # noqa: ASYNC109 - the API
        """Stop accepting events, wait up to ``timeout`` seconds for delayed deliveries, then
        fail the rest (``AmbiguousPublishError``). As ``AsyncPublisher.aclose``."""
        self._closed = True
        futures = [future for future, _ in self._inflight.values()]
        timed_out = False
        if futures:
            _, left = await asyncio.wait(futures, timeout=timeout)
            timed_out = bool(left)
            for acc, (future, handle) in list(self._inflight.items()):
                handle.cancel()
                del self._inflight[acc]
                with self._lock:
                    error = self._abandon(acc)
                if not future.done():  # a cancelled caller no longer waits for it
                    future.set_exception(error)
        return self._report(timed_out)


class FakePublisher(_FakeBase):
    """In-memory twin of ``Publisher`` for unit tests: same methods and errors, no broker.

    Thread-safe like ``Publisher``. Arguments and errors as ``AsyncFakePublisher``.

    Example::

        publisher = FakePublisher()
        service.place_order(publisher, ...)
        publisher.assert_published(OrderPlaced(...))
    """

    def __init__(
        self, config: PublisherConfig | None = None, *, partitions: int | Mapping[str, int] = 3
    ) -> None:
        super().__init__(config, partitions=partitions)
        self._waiting: set[_Accepted] = set()
        self._abandoned: dict[_Accepted, PublishError] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def publish(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> DeliveryReceipt:
        """Publish one event; as ``Publisher.publish``, delivered in memory (blocks for the
        delivery delay, if one is set)."""
        acc = self._accept(event, self._encode(event, topic, key, headers))
        outcome = self._after_delay([acc])[0]
        if isinstance(outcome, PublishError):
            raise outcome
        return outcome

    def publish_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[PublishOutcome]:
        """Publish events in order; as ``Publisher.publish_many``."""
        outcomes, accepted = self._admit(events, topic)
        delivered = self._after_delay([acc for _, acc in accepted])
        for (index, _), outcome in zip(accepted, delivered, strict=True):
            outcomes[index] = outcome
        return outcomes  # type: ignore[return-value]  # every slot is filled

    def accept(
        self,
        event: Any,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
        headers: UserHeaders | None = None,
    ) -> SyncAccepted:
        """Accept one event; as ``Publisher.accept`` (needs ``spool_path`` in the config; the
        file is never touched), delivered in memory before it returns (after the delivery
        delay, if one is set)."""
        self._need_spool()
        return self._sync_accepted([self._durable(event, topic, key, headers)])[0]

    def accept_many(
        self, events: Iterable[Any], *, topic: str | None = None
    ) -> list[SyncAccepted | EventwireError]:
        """Accept events in order; as ``Publisher.accept_many``."""
        self._need_spool()
        self._check_open()
        results: list[SyncAccepted | EventwireError | None] = []
        kept: list[tuple[EncodedEvent, _Accepted | PublishError]] = []
        for event in event_batch(events, "accept_many"):
            try:
                kept.append(self._durable(event, topic))
            except EventwireError as exc:
                results.append(exc)
                continue
            results.append(None)
        handles = iter(self._sync_accepted(kept))
        return [next(handles) if r is None else r for r in results]

    def _sync_accepted(
        self, kept: list[tuple[EncodedEvent, _Accepted | PublishError]]
    ) -> list[SyncAccepted]:
        delivered = iter(self._after_delay([a for _, a in kept if isinstance(a, _Accepted)]))
        handles = []
        for enc, acc in kept:
            outcome = next(delivered) if isinstance(acc, _Accepted) else acc
            future: concurrent.futures.Future[DeliveryReceipt] = concurrent.futures.Future()
            if isinstance(outcome, DeliveryReceipt):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)
            handles.append(SyncAccepted(enc.event_id, enc.topic, future))
        return handles

    def _after_delay(self, accepted: list[_Accepted]) -> list[DeliveryReceipt | PublishError]:
        if self._delay > 0 and accepted:
            with self._lock:
                self._waiting.update(accepted)
            time.sleep(self._delay)
        outcomes: list[DeliveryReceipt | PublishError] = []
        for acc in accepted:
            with self._lock:
                self._waiting.discard(acc)
                error = self._abandoned.pop(acc, None)
            outcomes.append(self._deliver(acc) if error is None else error)
        return outcomes

    def close(self, timeout: float = 30.0) -> CloseReport:
        """Stop accepting events, wait up to ``timeout`` seconds for delayed deliveries, then
        fail the rest (``AmbiguousPublishError``). As ``Publisher.close``."""
        self._closed = True
        with self._lock:
            timed_out = not self._drained.wait_for(lambda: self._outstanding == 0, timeout)
            for acc in self._waiting:  # their callers get the error when their delay ends
                self._abandoned[acc] = self._abandon(acc)
            self._waiting.clear()
        return self._report(timed_out)


def _retrieve(future: asyncio.Future[DeliveryReceipt]) -> None:
    if not future.cancelled():
        future.exception()
