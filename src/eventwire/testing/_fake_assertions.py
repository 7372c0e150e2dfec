"""What the fakes keep and check: ``PublishedRecord``, and the assertions and failure
injection both fakes share (``Assertions``), over the in-memory cluster's records."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec

import eventwire
from eventwire.codec import key_bytes
from eventwire.inspect import CLASSIFICATION, declared_events
from eventwire.testing._memory import MemoryBroker
from eventwire.testing._memory_records import StoredRecord, kafka_error
from eventwire.testing._topic_client import first_header
from eventwire.transport import TransportFactory

_E = TypeVar("_E")

# librdkafka code used when a failure is injected by class only: one per class, typical of it.
_DEFAULT_CODES: Final[Mapping[type[eventwire.PublishError], str]] = {
    eventwire.RetriablePublishError: "NETWORK_EXCEPTION",
    eventwire.PermanentPublishError: "INVALID_RECORD",
    eventwire.AuthorizationError: "TOPIC_AUTHORIZATION_FAILED",
    eventwire.FatalPublishError: "_FATAL",
    eventwire.AmbiguousPublishError: "_MSG_TIMED_OUT",
}
#: Permanent failures the real publisher raises as a subclass: about access, not the event.
_ACCESS_ERRORS: Final[Mapping[str, type[eventwire.PublishError]]] = {
    "TOPIC_AUTHORIZATION_FAILED": eventwire.AuthorizationError,
    "CLUSTER_AUTHORIZATION_FAILED": eventwire.AuthorizationError,
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": eventwire.AuthorizationError,
    "SASL_AUTHENTICATION_FAILED": eventwire.AuthenticationError,
    "_AUTHENTICATION": eventwire.AuthenticationError,
    "_SSL": eventwire.AuthenticationError,
}
_CLASS_ERRORS: Final[Mapping[str, type[eventwire.PublishError]]] = {
    "retriable": eventwire.RetriablePublishError,
    "permanent": eventwire.PermanentPublishError,
    "fatal": eventwire.FatalPublishError,
    "ambiguous": eventwire.AmbiguousPublishError,
}
#: Longest a breaker change (``open_breaker``, ``close_breaker``) is waited for, beyond the
#: policy's own cool-down and probe time.
_BREAKER_WAIT: Final = 5.0


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
        timestamp_ms: when it was written, milliseconds since the Unix epoch.
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


class Assertions:
    """What was delivered, and failure injection: shared by both fakes."""

    _broker: MemoryBroker
    _given: dict[str, Any]
    _given_lock: threading.Lock
    #: A fake dropped unclosed is no mistake in a unit test: its thread stops once idle.
    _warn_unclosed = False
    if TYPE_CHECKING:  # the publisher's, which the fakes are

        @property
        def config(self) -> eventwire.PublisherConfig: ...

        @property
        def breaker_state(self) -> str: ...

    def _set_up(
        self, partitions: int | Mapping[str, int], broker: MemoryBroker | None
    ) -> TransportFactory:
        """The fake's own state, before the publisher's; returns its transport factory."""
        self._broker = broker if broker is not None else MemoryBroker(partitions)
        self._given = {}
        self._given_lock = threading.Lock()
        return self._broker.transport

    def _started(self) -> bool:
        """Whether the publisher's poll thread runs (probes the breaker)."""
        raise NotImplementedError

    def _keep(self, events: Iterable[Any], ids: Iterable[str | None]) -> None:
        """Remember the objects given, by event id (what ``published`` shows when the bytes
        do not decode, with ``validate=False``)."""
        with self._given_lock:
            for event, event_id in zip(events, ids, strict=False):
                if event_id is not None:
                    self._given[event_id] = event

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
            key: only records with this key: ``bytes`` as sent, or a value of the key
                field's own type (``str``, ``int``, ``UUID``, a str or int enum member),
                sent as the publisher sends it.

        Raises:
            TypeError: ``key`` is of a type no key is sent as.
        """
        wanted_key = None if key is None else key_bytes(key)
        with self._broker.cond:
            stored = list(self._broker.records)
        records = []
        for record in stored:
            if topic is not None and record.topic != topic:
                continue
            if wanted_key is not None and record.key != wanted_key:
                continue
            published = self._decoded(record)
            if of_type is not None and type(published.event) is not of_type:
                continue
            records.append(published)
        return records

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
        failures, the cluster's reachability and the delay stay."""
        self._broker.forget_records()

    # -- failure injection -------------------------------------------------------------------

    def fail_nth(
        self,
        n: int = 1,
        error: type[eventwire.PublishError] | None = None,
        *,
        code: str | None = None,
        times: int | None = None,
    ) -> None:
        """Make the attempts of the ``n``-th event handed over from now on (1 = the next one)
        fail with a delivery report of ``code``.

        Events refused before they reach Kafka (validation, open breaker, too large) do not
        count; an event's retries are the same event. What follows is what the real
        publisher does with such a report: the retry policy re-sends a retriable or ambiguous
        failure, a fatal one replaces the producer, a permanent one is dead-lettered if the
        configuration says so, else the caller gets the error.

        Args:
            n: which event, counting from the next one.
            error: ``RetriablePublishError`` (default), ``PermanentPublishError``
                (``INVALID_RECORD``), ``AuthorizationError`` (``TOPIC_AUTHORIZATION_FAILED``),
                ``FatalPublishError`` or ``AmbiguousPublishError``; ``None`` with a ``code``:
                the class of that code.
            code: the librdkafka error name (e.g. ``"UNKNOWN_TOPIC_OR_PART"``); defaults to
                one typical of ``error``.
            times: how many attempts fail; ``None``: every attempt (the caller gets the
                error once the retry policy gives up).

        Raises:
            ValueError: ``n`` or ``times`` < 1, an unknown code, or a code of another class
                than ``error``.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times}")
        if code is None:
            error = error or eventwire.RetriablePublishError
            if error not in _DEFAULT_CODES:
                raise ValueError(
                    f"cannot inject {error.__name__}: inject a delivery failure "
                    "(RetriablePublishError, PermanentPublishError, FatalPublishError, "
                    "AmbiguousPublishError); open_breaker() makes publishing fail fast"
                )
            code = _DEFAULT_CODES[error]
        failure = kafka_error(code)
        category = "fatal" if failure.fatal() else CLASSIFICATION.get(code, "permanent")
        actual = _CLASS_ERRORS[category]
        if category == "permanent":
            actual = _ACCESS_ERRORS.get(code, actual)
        if error is not None and not issubclass(actual, error):
            raise ValueError(
                f"{code} is classified {category} ({actual.__name__}), not {error.__name__}"
            )
        self._broker.fail_nth(n, code, times)

    def open_breaker(self, reason: str = "_ALL_BROKERS_DOWN") -> None:
        """Make the cluster unreachable and wait until the publisher's breaker opened: from
        then on every publish fails fast with ``CircuitOpenError`` (after validation), or is
        spooled when there is a spool, until ``close_breaker()``.

        Args:
            reason: kept for compatibility; the breaker says why it opened.

        Raises:
            ValueError: the config has no breaker (``breaker=None``).
            TimeoutError: the breaker did not open in time.
        """
        if self.config.breaker is None:
            raise ValueError("the config has no circuit breaker (breaker=None)")
        self._broker.set_reachable(False)
        self._wait_breaker("open")

    def close_breaker(self) -> None:
        """Make the cluster reachable again and wait until the breaker closed (after its
        cool-down and a good probe, as for real).

        Raises:
            TimeoutError: the breaker did not close in time.
        """
        self._broker.set_reachable(True)
        if self.config.breaker is not None:
            self._wait_breaker("closed")

    def delay_deliveries(self, seconds: float) -> None:
        """Deliver each event ``seconds`` after it was produced (0: at once). It counts as
        ``outstanding`` meanwhile; a close whose timeout passes first fails it with
        ``AmbiguousPublishError`` (purged in flight: it may have been written)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self._broker.set_delay(seconds)

    def _wait_breaker(self, state: str) -> None:
        policy = self.config.breaker
        assert policy is not None  # noqa: S101 - checked by the callers
        if not self._started():  # probes run on the poll thread: they start with it
            return
        deadline = time.monotonic() + policy.cooldown + policy.probe_timeout + _BREAKER_WAIT
        while self.breaker_state != state:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the breaker did not become {state} (it is {self.breaker_state})"
                )
            time.sleep(0.005)

    def _decoded(self, record: StoredRecord) -> PublishedRecord:
        event_id = _text(first_header(record.headers, "ce_id"))
        event_type = _text(first_header(record.headers, "ce_type"))
        with self._given_lock:
            given = self._given.get(event_id)
        cls = type(given) if given is not None else _class_of(record)
        event: Any = given
        if cls is not None:
            decode = (
                msgspec.json.decode if self.config.encoding == "json" else msgspec.msgpack.decode
            )
            try:
                event = decode(record.value, type=cls)
            except msgspec.DecodeError:
                # validate=False, or a dead-letter record without its value (too large): keep
                # what was given.
                event = given
        return PublishedRecord(
            event,
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            record.headers,
            record.timestamp_ms,
            event_id,
            event_type,
        )


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode()


def _class_of(record: StoredRecord) -> type[Any] | None:
    """The declared class of a record, by its ``ce_type`` and ``ce_eventversion``."""
    event_type = _text(first_header(record.headers, "ce_type"))
    version = _text(first_header(record.headers, "ce_eventversion"))
    for spec in reversed(declared_events()):
        if spec.type == event_type and str(spec.version) == version:
            return spec.cls
    return None
