"""The dead-letter writer: where events go that can never be delivered as they are.

A dead-letter record keeps the original key, value and headers and adds ``eventwire_*`` error
headers. An event too large for the producer (``MSG_SIZE_TOO_LARGE``, refused by librdkafka
before it is sent) cannot be copied as it is — the dead-letter write has the same limit — so
its record keeps the key and headers, carries **no value**, and says why in
``eventwire_value_omitted`` together with the value's size and SHA-256, so the event can be
identified (``ce_id``) and re-sent from its source. An event the broker refused as larger than
its topic's ``max.message.bytes`` is copied whole (the dead-letter topic may allow more); only
if that write is refused as too large too is it written again without the value.

The writer queues what is to be dead-lettered; the poll thread writes it. The dead-letter
record is an ``InFlight`` of its own whose sink settles the original event: with
``DeadLetteredError`` once written, or with the original error if the write fails for good.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from confluent_kafka import KafkaError, KafkaException

from eventwire._classify import classify
from eventwire._codec import EncodedEvent, header_items
from eventwire._core.record import InFlight
from eventwire._errors import ConfigError, DeadLetteredError, PermanentPublishError, PublishError
from eventwire._logs import log as _log
from eventwire._options import DeadLetterPolicy
from eventwire._outcome import DeliveryReceipt

if TYPE_CHECKING:
    from eventwire._core.transport import Transport
    from eventwire._telemetry import Instrumentation


#: Codes of a record refused as too large (librdkafka reports its own check under the
#: broker's code, raised by ``produce()``; ``_MSG_SIZE_TOO_LARGE`` is kept for older clients).
OVERSIZED_CODES: Final = frozenset({"MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE"})
#: Why a dead-letter record has no value.
TOO_LARGE_FOR_PRODUCER: Final = "too large for the producer (message.max.bytes)"
TOO_LARGE_FOR_DEAD_LETTER_TOPIC: Final = "too large for the dead-letter topic (max.message.bytes)"
#: A dead-letter write that fails transiently (or on a fenced producer) is tried this often.
ATTEMPTS: Final = 3


def dead_letter_record(
    policy: DeadLetterPolicy,
    encoded: EncodedEvent,
    error: PublishError,
    *,
    first_failure: float,
    last_failure: float,
    omitted: str | None = None,
) -> EncodedEvent:
    """The record to write to the dead-letter topic for ``encoded`` that failed with
    ``error`` (times are Unix seconds); without the value if ``omitted`` says why."""
    headers = header_items(encoded.headers)
    headers += [
        ("eventwire_error_class", error.category.encode()),
        ("eventwire_error_code", (error.code or "").encode()),
        ("eventwire_error_message", str(error).encode()[:2000]),
        ("eventwire_original_topic", encoded.topic.encode()),
        ("eventwire_attempts", str(error.attempts).encode()),
        ("eventwire_first_failure", _iso(first_failure)),
        ("eventwire_last_failure", _iso(last_failure)),
    ]
    value = encoded.value
    if omitted is not None:
        headers += [
            ("eventwire_value_omitted", omitted.encode()),
            ("eventwire_value_size", str(len(value)).encode()),
            ("eventwire_value_sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = b""
    return EncodedEvent(
        policy.topic_for(encoded.topic),
        encoded.key,
        value,
        headers,
        encoded.event_id,
        encoded.event_type,
    )


def _iso(moment: float) -> bytes:
    return (
        _dt.datetime.fromtimestamp(moment, tz=_dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
        .encode()
    )


class DeadLetterSink:
    """The sink of a dead-letter record: settles the original event."""

    __slots__ = ("error", "omitted", "original", "telemetry")

    def __init__(
        self,
        original: InFlight,
        error: PublishError,
        telemetry: Instrumentation | None,
        omitted: str | None = None,
    ) -> None:
        self.original = original
        self.error = error
        self.telemetry = telemetry
        #: Why the dead-letter record carries no value (``None``: it carries it).
        self.omitted = omitted

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        error = self.error
        telemetry = self.telemetry
        if isinstance(outcome, DeliveryReceipt):
            dead = DeadLetteredError(
                f"event {error.event_id} was dead-lettered to {outcome.topic!r} "
                f"(partition {outcome.partition}, offset {outcome.offset}) after: {error}",
                topic=error.topic,
                event_id=error.event_id,
                attempts=error.attempts,
                code=error.code,
                dead_letter=outcome,
            )
            dead.__cause__ = error
            _log.error(
                "eventwire.dead_lettered",
                topic=error.topic,
                event_id=error.event_id,
                dead_letter_topic=outcome.topic,
                error_class=error.category,
                code=error.code,
                attempts=error.attempts,
            )
            if telemetry is not None:
                telemetry.dead_lettered(self.original, outcome.topic)
                telemetry.finish(self.original, dead)
            self.original.settle(dead)
            return
        _log.error(
            "eventwire.dead_letter_failed",
            topic=error.topic,
            event_id=error.event_id,
            event_type=self.original.encoded.event_type,
            error_class=error.category,
            code=error.code,
            attempts=error.attempts,
            dead_letter_code=outcome.code,
            dead_letter_error=str(outcome),
        )
        if telemetry is not None:
            telemetry.finish(self.original, error)
        self.original.settle(error)


class DeadLetterWriter:
    """Queues events to dead-letter, and writes them from the poll thread."""

    __slots__ = ("_append", "_policy", "_queue", "_telemetry")

    def __init__(
        self,
        policy: DeadLetterPolicy,
        telemetry: Instrumentation | None,
        append: Callable[[InFlight], None],
    ) -> None:
        self._policy = policy
        self._telemetry = telemetry
        self._append = append
        #: (original, its error, dead-letter writes tried, why the value is left out)
        self._queue: deque[tuple[InFlight, PublishError, int, str | None]] = deque()

    def __bool__(self) -> bool:
        return bool(self._queue)

    def add(self, record: InFlight, error: PublishError) -> None:
        """Dead-letter ``record`` (that failed with ``error``) on the next ``write``."""
        # Refused by the producer itself (never sent): a copy would be refused the same way.
        oversized = error.code in OVERSIZED_CODES and error.attempts == 0
        self._queue.append((record, error, 0, TOO_LARGE_FOR_PRODUCER if oversized else None))

    def write(
        self,
        transport: Transport,
        generation: int,
        refused: Callable[[KafkaError, EncodedEvent], PublishError],
    ) -> None:
        """Produce the queued dead-letter records (poll thread); stops at a full queue."""
        queue = self._queue
        while queue:
            original, error, tries, omitted = queue.popleft()
            try:
                record = dead_letter_record(
                    self._policy,
                    original.encoded,
                    error,
                    first_failure=original.first_failure,
                    last_failure=time.time(),
                    omitted=omitted,
                )
            except Exception as exc:  # noqa: BLE001 - a user's topic callable may raise anything
                # The event is out of every queue: it must settle (with its original error,
                # like a failed write) or its caller would wait for ever.
                letter = self._letter(
                    original, error, tries, original.encoded, generation, omitted=omitted
                )
                letter.refused(_no_dead_letter_topic(original.encoded, error, exc))
                continue
            letter = self._letter(original, error, tries, record, generation, omitted=omitted)
            try:
                transport.produce(
                    record.topic,
                    record.value,
                    record.key,
                    on_delivery=letter,
                    headers=record.headers,
                )
            except BufferError:
                queue.appendleft((original, error, tries, omitted))
                break
            except KafkaException as exc:
                letter.refused(refused(exc.args[0], record))

    def _letter(
        self,
        original: InFlight,
        error: PublishError,
        tries: int,
        record: EncodedEvent,
        generation: int,
        *,
        omitted: str | None,
    ) -> InFlight:
        letter = InFlight(record, DeadLetterSink(original, error, self._telemetry, omitted))
        letter._append = self._append
        letter.generation = generation
        letter.failures = tries
        return letter

    def retry(self, letter: InFlight, err: Any, *, give_up: bool) -> bool:
        """Queue a failed dead-letter write again unless it is hopeless (``give_up``: a close
        gave up, or its topic is missing); True if queued. A copy refused as too large is
        written once more without its value. A fatal failure asks the caller to replace the
        producer (it checks ``classify``)."""
        letter.failures += 1
        if give_up:
            return False
        sink: DeadLetterSink = letter.sink  # type: ignore[assignment]  # a letter's sink
        code = err.code if isinstance(err, PublishError) else err.name()
        if sink.omitted is None and code in OVERSIZED_CODES:
            # Refused by produce() (a PublishError: the producer's own limit, reached with the
            # error headers added) or by the broker (the dead-letter topic's limit).
            omitted = (
                TOO_LARGE_FOR_PRODUCER
                if isinstance(err, PublishError)
                else TOO_LARGE_FOR_DEAD_LETTER_TOPIC
            )
            self._queue.append((sink.original, sink.error, letter.failures, omitted))
            return True
        if letter.failures >= ATTEMPTS:
            return False
        failure = err.category if isinstance(err, PublishError) else classify(err)
        if failure == "permanent":
            return False
        self._queue.append((sink.original, sink.error, letter.failures, sink.omitted))
        return True


def _no_dead_letter_topic(
    enc: EncodedEvent, error: PublishError, exc: Exception
) -> PermanentPublishError:
    """The failure of a dead-letter write that never started: the policy gave no valid
    topic (its callable raised, or returned a bad name)."""
    detail = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
    return PermanentPublishError(
        f"no dead-letter topic for event {enc.event_id} of topic {enc.topic!r}: {detail}",
        topic=enc.topic,
        event_id=enc.event_id,
        attempts=error.attempts,
        code="_INVALID_DEAD_LETTER_TOPIC",
    )
