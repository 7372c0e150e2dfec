"""ProducerCore: the one ``confluent_kafka.Producer`` of a publisher and its poll thread.

Threads, in one place:

* callers (the event loop thread, or any thread for the sync publisher) call ``produce()``;
* one daemon thread polls librdkafka; each delivery callback only appends ``(pending, err,
  msg)`` to a list, and after each ``poll()`` the whole list is handed over at once through the
  ``handoff`` the publisher injected: ``loop.call_soon_threadsafe(core.settle, batch)`` for the
  async publisher (so futures are only touched on the loop thread), a direct ``core.settle``
  call for the sync publisher.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import structlog
from confluent_kafka import KafkaError, KafkaException, Producer

from eventwire._classify import to_publish_error
from eventwire._codec import EncodedEvent
from eventwire._config import PublisherConfig
from eventwire._errors import ConfigError, PermanentPublishError, PublishError
from eventwire._outcome import DeliveryReceipt

_log = structlog.get_logger("eventwire")

#: How long one ``poll()`` blocks when nothing happens; bounds how fast the thread sees a stop.
_POLL_INTERVAL: Final = 0.05

Report = tuple["Pending", Any, Any]
Handoff = Callable[[list[Report]], object]


class Pending:
    """An accepted event waiting for its delivery report.

    Subclasses say what to do with the outcome (resolve a future, fill a batch slot, wake a
    thread). The instance itself is the ``on_delivery`` callback, so producing allocates no
    closure.
    """

    __slots__ = ("_append", "encoded")
    _append: Callable[[Report], None]
    encoded: EncodedEvent

    def __init__(self, encoded: EncodedEvent) -> None:
        self.encoded = encoded

    def __call__(self, err: Any, msg: Any) -> None:
        # Runs inside Producer.poll() on the poll thread: only record, never resolve here.
        self._append((self, err, msg))

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        raise NotImplementedError


class ProducerCore:
    """Owns the librdkafka producer, the poll thread and the delivery bookkeeping."""

    def __init__(self, config: PublisherConfig) -> None:
        self.config = config
        self._settings: dict[str, object] = dict(config.to_librdkafka())
        self._settings["error_cb"] = self._on_error
        try:
            self._producer = Producer(self._settings)
        except KafkaException as exc:
            reason = config.scrub(exc.args[0].str())
            raise ConfigError(f"librdkafka refused the configuration: {reason}") from None
        self._reports: list[Report] = []
        self._append = self._reports.append
        self._handoff: Handoff = self.settle
        self._on_room: Callable[[], None] = _noop
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._room = threading.Condition(threading.Lock())
        self._room_generation = 0
        self.outstanding = 0
        self.delivered = 0
        self.failed = 0
        self.closed = False
        self._closing_failures: list[str] | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.max_message_bytes = int(str(self._settings.get("message.max.bytes", 1_000_000)))

    # -- lifecycle -------------------------------------------------------------------------

    def start(
        self, handoff: Handoff | None = None, on_room: Callable[[], None] | None = None
    ) -> None:
        """Start the poll thread. ``handoff`` receives each batch of reports (default: settle
        them on the poll thread); ``on_room`` runs after each settled batch."""
        if self._thread is not None:
            return
        if handoff is not None:
            self._handoff = handoff
        if on_room is not None:
            self._on_room = on_room
        self._thread = threading.Thread(
            target=self._poll_loop, name=f"eventwire-poll-{self.config.client_id}", daemon=True
        )
        self._thread.start()
        _log.info(
            "eventwire.publisher_started",
            preset=self.config.preset,
            bootstrap_servers=self.config.bootstrap_servers,
            client_id=self.config.client_id,
            encoding=self.config.encoding,
            validate=self.config.validate,
        )

    def _poll_loop(self) -> None:
        poll = self._producer.poll
        while not self._stop.is_set():
            try:
                poll(_POLL_INTERVAL)
            except KafkaException as exc:  # fatal errors are raised from poll()
                self._on_error(exc.args[0])
            if self._reports:
                self._hand_over()
        # Stopping: whatever is still queued is abandoned (close() drained or purged first);
        # its reports are handed over, then the producer is destroyed (connections closed).
        self._producer.purge(True, True, True)
        with contextlib.suppress(KafkaException):
            poll(0)
            self._producer.close()
        self._hand_over()

    def _hand_over(self) -> None:
        reports = self._reports
        if reports:
            batch = reports.copy()
            reports.clear()
            try:
                self._handoff(batch)
            except Exception:  # noqa: BLE001 - the poll thread must outlive a bad batch
                _log.exception("eventwire.settle_failed", reports=len(batch))
        with self._room:
            self._room_generation += 1
            self._room.notify_all()

    def _on_error(self, err: Any) -> None:
        # error_cb runs on the poll thread; it only records and logs.
        self.last_error = f"{err.name()}: {err.str()}"
        self.last_error_at = time.time()
        _log.warning(
            "eventwire.kafka_error",
            code=err.name(),
            reason=err.str(),
            fatal=bool(err.fatal()),
        )

    # -- producing -------------------------------------------------------------------------

    def produce(self, pending: Pending) -> None:
        """Hand one event to librdkafka.

        Raises:
            BufferError: the local queue is full; the caller waits for room and calls again.
            PublishError: librdkafka refused the event (e.g. too large); it was not accepted.
        """
        enc = pending.encoded
        pending._append = self._append
        try:
            self._producer.produce(
                enc.topic, enc.value, enc.key, on_delivery=pending, headers=enc.headers
            )
        except KafkaException as exc:
            raise self._refused(exc.args[0], enc) from None

    def _refused(self, err: KafkaError, enc: EncodedEvent) -> PublishError:
        if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            error: PublishError = PermanentPublishError(
                f"event {enc.event_id} ({enc.event_type}) is {len(enc.value):,} bytes encoded"
                f" (+ key and headers), over the producer's limit message.max.bytes="
                f"{self.max_message_bytes:,}; it was not sent",
                topic=enc.topic,
                event_id=enc.event_id,
                attempts=0,
                code=err.name(),
            )
            error.__cause__ = KafkaException(err)
            return error
        return to_publish_error(
            err, topic=enc.topic, event_id=enc.event_id, attempts=0, context="produce refused"
        )

    def track(self, count: int) -> None:
        """Count ``count`` events as outstanding (call before producing them)."""
        with self._lock:
            self.outstanding += count

    def untrack(self, count: int) -> None:
        """Undo ``track`` for events librdkafka refused."""
        with self._lock:
            self.outstanding -= count

    @property
    def room_generation(self) -> int:
        return self._room_generation

    def wait_for_room(self, generation: int, timeout: float) -> bool:
        """Block until a batch of reports was handled after ``generation`` (sync callers)."""
        with self._room:
            return self._room.wait_for(lambda: self._room_generation != generation, timeout)

    def settle(self, batch: list[Report]) -> None:
        """Turn delivery reports into outcomes (on the loop thread for the async publisher)."""
        delivered = 0
        failing = self._closing_failures
        for pending, err, msg in batch:
            if err is None:
                outcome: DeliveryReceipt | PublishError = DeliveryReceipt(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    msg.timestamp()[1],
                    pending.encoded.event_id,
                )
                delivered += 1
            else:
                enc = pending.encoded
                outcome = to_publish_error(err, topic=enc.topic, event_id=enc.event_id)
                _log.warning(
                    "eventwire.publish_failed",
                    topic=enc.topic,
                    event_id=enc.event_id,
                    event_type=enc.event_type,
                    error_class=outcome.category,
                    code=outcome.code,
                )
                if failing is not None:
                    failing.append(enc.event_id)
            pending.settle(outcome)
        with self._lock:
            self.outstanding -= len(batch)
            self.delivered += delivered
            self.failed += len(batch) - delivered
        self._on_room()

    # -- closing ---------------------------------------------------------------------------

    def begin_close(self) -> int:
        """Stop intake; returns how many events are still outstanding."""
        self.closed = True
        self._closing_failures = []
        return self.outstanding

    def purge(self) -> None:
        """Give up on everything not yet acknowledged; each gets a failed delivery report."""
        self._producer.purge(True, True, True)

    def stop_polling(self, timeout: float) -> None:
        """Stop the poll thread (after its last batch) and release the producer's threads."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:  # never started: nothing was produced
            self._producer.close()

    def closing_failures(self) -> tuple[str, ...]:
        return tuple(self._closing_failures or ())

    def metadata(self, timeout: float) -> Any:
        """Fetch cluster metadata (used by health and breaker probes)."""
        return self._producer.list_topics(timeout=timeout)


def _noop() -> None:
    return None
