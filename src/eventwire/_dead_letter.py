"""Dead-letter topic: where events go that can never be delivered as they are.

A dead-letter record keeps the original key, value and headers and adds ``eventwire_*`` error
headers. An event too large for the producer (``MSG_SIZE_TOO_LARGE``, refused by librdkafka
before it is sent) cannot be copied as it is — the dead-letter topic has the same limit — so
its record keeps the key and headers, carries **no value**, and says why in
``eventwire_value_omitted`` together with the value's size and SHA-256, so the event can be
identified (``ce_id``) and re-sent from its source.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from eventwire._codec import EncodedEvent, header_items
from eventwire._errors import ConfigError, PublishError
from eventwire._topics import topic_problem

#: Codes whose events cannot be re-sent as they are: the value is left out of the DLQ record.
OVERSIZED_CODES: Final = frozenset({"MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE"})


@dataclass(frozen=True, kw_only=True, slots=True)
class DeadLetterPolicy:
    """Where permanent failures and exhausted retries are written.

    Args:
        topic: a format string with ``{topic}`` (default ``"{topic}.dlq"``), or a callable
            from the original topic to the dead-letter topic. When the callable raises or
            returns an invalid name, the event is not dead-lettered: its caller gets the
            original error and ``eventwire.dead_letter_failed`` is logged with the reason.
    """

    topic: str | Callable[[str], str] = "{topic}.dlq"

    def __post_init__(self) -> None:
        if isinstance(self.topic, str):
            try:
                sample = self.topic.format(topic="orders")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"DeadLetterPolicy.topic {self.topic!r} must be a format string using only "
                    f"{{topic}}: {exc}"
                ) from None
            problem = topic_problem(sample)
            if problem is not None:
                raise ConfigError(
                    f"DeadLetterPolicy.topic {self.topic!r} gives topic names Kafka refuses "
                    f"({sample!r} for 'orders'): {problem}"
                )
        elif not callable(self.topic):
            raise ConfigError("DeadLetterPolicy.topic must be a format string or a callable")

    def topic_for(self, original: str) -> str:
        """The dead-letter topic for events of ``original``."""
        if isinstance(self.topic, str):
            name = self.topic.format(topic=original)
        else:
            name = self.topic(original)
        problem = topic_problem(name)
        if problem is not None:
            raise ConfigError(
                f"dead-letter topic {name!r} for {original!r} is not a legal Kafka topic name: "
                f"{problem}"
            )
        return name


def dead_letter_record(
    policy: DeadLetterPolicy,
    encoded: EncodedEvent,
    error: PublishError,
    *,
    first_failure: float,
    last_failure: float,
) -> EncodedEvent:
    """The record to write to the dead-letter topic for ``encoded`` that failed with
    ``error`` (times are Unix seconds)."""
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
    if error.code in OVERSIZED_CODES:
        headers += [
            ("eventwire_value_omitted", b"too large for the producer (message.max.bytes)"),
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
