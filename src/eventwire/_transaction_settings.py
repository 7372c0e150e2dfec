"""The rules of a transactional ``PublisherConfig`` (a ``transactional_id``), beside the
config as ``_security_settings`` is.

Inside a transaction the transaction is the unit that fails and is run again: an event is
never re-sent, parked or dead-lettered on its own (docs/transactions.md). So a spool, a
dead-letter policy and a retry policy are refused, the preset's retry becomes
``RetryPolicy.never()``, and the preset's ``delivery_timeout`` is lowered to
``transaction_timeout``.
"""

from __future__ import annotations

import math
from typing import Final

from eventwire._errors import ConfigError
from eventwire._librdkafka import LibrdkafkaValue
from eventwire._options import DeadLetterPolicy, RetryPolicy

_SPOOL_REFUSED: Final = (
    "spool_path is refused with a transactional_id: the spool re-sends its events on the next "
    "start, outside the transaction they belonged to; for events that must survive the "
    "process, write them with the database transaction (transactional outbox)"
)
_DEAD_LETTER_REFUSED: Final = (
    "dead_letter is refused with a transactional_id: an event that fails makes its "
    "transaction abort, and a dead-letter record written in that transaction would be "
    "aborted with it; catch TransactionAbortedError and run the transaction again"
)


def check_transaction_fields(
    transactional_id: object, transaction_timeout: object, maximum_seconds: float
) -> None:
    """Raise ``ConfigError`` unless ``transactional_id`` is ``None`` or a non-empty str and
    ``transaction_timeout`` is from 1 to ``maximum_seconds`` (librdkafka's cap)."""
    timeout = transaction_timeout
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not (math.isfinite(timeout) and timeout > 0)
    ):
        raise ConfigError(
            "transaction_timeout must be a finite number of seconds greater than 0, "
            f"got {timeout!r}"
        )
    if not 1 <= timeout <= maximum_seconds:
        raise ConfigError(
            f"transaction_timeout must be from 1 to {maximum_seconds:g} seconds (librdkafka "
            f"transaction.timeout.ms), got {timeout!r}"
        )
    if transactional_id is not None and (
        not isinstance(transactional_id, str) or not transactional_id.strip()
    ):
        raise ConfigError(
            f"transactional_id must be a non-empty str or None, got {transactional_id!r}"
        )


def transactional_bounds(
    *,
    transaction_timeout: float,
    spool_path: object,
    dead_letter: DeadLetterPolicy | None,
    retry: RetryPolicy,
    retry_from_preset: bool,
    delivery_timeout: float,
    delivery_from_preset: bool,
    linger_ms: float,
) -> tuple[RetryPolicy, float]:
    """The retry policy and ``delivery_timeout`` a transactional publisher runs with.

    Args:
        transaction_timeout: the config's, in seconds.
        spool_path: the config's (refused unless ``None``).
        dead_letter: the config's (refused unless ``None``).
        retry: the config's policy; ``retry_from_preset``: it is the preset's.
        delivery_timeout: the config's seconds; ``delivery_from_preset``: they are the
            preset's.
        linger_ms: the linger time the publisher runs with.

    Returns:
        ``(retry, delivery_timeout)``: the preset's retry becomes ``RetryPolicy.never()``,
        its ``delivery_timeout`` at most ``transaction_timeout``; given values are kept.

    Raises:
        ConfigError: a spool, a dead-letter policy, a retry policy that re-sends, or a
            ``delivery_timeout`` beyond ``transaction_timeout``.
    """
    if spool_path is not None:
        raise ConfigError(_SPOOL_REFUSED)
    if dead_letter is not None:
        raise ConfigError(_DEAD_LETTER_REFUSED)
    if retry_from_preset:
        retry = RetryPolicy.never()
    elif retry.attempts > 1:
        raise ConfigError(
            f"retry={retry!r} is refused with a transactional_id: an event that fails in a "
            "transaction cannot be re-sent into it (librdkafka requires an abort); give "
            "RetryPolicy.never() or leave retry unset, and run the whole transaction again "
            "on TransactionAbortedError"
        )
    limit = transaction_timeout
    if delivery_from_preset:
        delivery_timeout = min(delivery_timeout, limit)
        if int(delivery_timeout * 1000) <= linger_ms:
            raise ConfigError(
                f"transaction_timeout ({limit:g} s) bounds delivery_timeout, which must be "
                f"greater than the linger time ({linger_ms:g} ms)"
            )
    elif delivery_timeout > limit:
        raise ConfigError(
            f"delivery_timeout ({delivery_timeout:g} s) must not exceed transaction_timeout "
            f"({limit:g} s) with a transactional_id: an event not acknowledged before its "
            "transaction times out cannot commit with it (lower delivery_timeout or raise "
            "transaction_timeout)"
        )
    return retry, delivery_timeout


def transaction_settings(
    transactional_id: str, transaction_timeout: float
) -> dict[str, LibrdkafkaValue]:
    """librdkafka's settings of a transactional producer."""
    return {
        "transactional.id": transactional_id,
        "transaction.timeout.ms": int(transaction_timeout * 1000),
    }
