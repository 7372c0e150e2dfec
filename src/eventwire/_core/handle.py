"""The producer handle: the transport in use, and its replacement after a fatal error.

A replaced producer is *retired*, not closed: it is still polled (for up to
``RETIRE_GRACE`` seconds) so the purge reports of what it held come back as failed reports,
which the retry policy re-sends in order on the new producer.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from confluent_kafka import KafkaException

from eventwire._core.deadlines import mark_swept
from eventwire._core.transport import Transport, TransportFactory
from eventwire._errors import ConfigError

if TYPE_CHECKING:
    from eventwire._core.record import InFlight

#: How long a replaced producer is still polled for the reports of what it held (seconds).
RETIRE_GRACE: Final = 30.0


class ProducerHandle:
    """The transport in use, its generation, and the retired ones still reporting."""

    __slots__ = (
        "_factory",
        "_replace_at",
        "_retired",
        "_scrub",
        "_settings",
        "generation",
        "replace_reason",
        "transport",
    )

    def __init__(
        self,
        factory: TransportFactory,
        settings: Mapping[str, object],
        scrub: Callable[[str], str],
    ) -> None:
        self._factory = factory
        self._settings = settings
        self._scrub = scrub
        self.transport: Transport = self._new()
        #: Bumped at each replacement: a report of an older generation is a purge.
        self.generation = 0
        self._retired: list[tuple[Transport, float]] = []
        #: Why the transport must be replaced (the poll thread does it when due), or ``None``.
        self.replace_reason: str | None = None
        self._replace_at = 0.0

    def _new(self) -> Transport:
        try:
            return self._factory(self._settings)
        except ConfigError as exc:
            raise ConfigError(self._scrub(str(exc))) from None

    def request_replacement(self, reason: str, delay: float = 0.0) -> None:
        """Ask for a replacement, ``delay`` seconds from now (the first reason asked is kept)."""
        if self.replace_reason is None:
            self._replace_at = time.monotonic() + delay
            self.replace_reason = reason

    def replacement_due(self) -> bool:
        """Whether a replacement was asked for and its time has come."""
        return self.replace_reason is not None and time.monotonic() >= self._replace_at

    def sweep(self, reports: list[InFlight]) -> None:
        """Purge the queue of the transport in use and collect its reports into ``reports`` at
        once (before any is settled and re-sent), the records purged alongside the expired
        ones marked ``swept`` (``_core.deadlines``)."""
        start = len(reports)
        with contextlib.suppress(KafkaException):
            self.transport.purge(True, False, True)
            self.transport.poll(0)
        mark_swept(reports[start:])

    def replace(self) -> str | None:
        """Purge the transport in use (its records come back as failed reports), retire it,
        and build a new one; returns the reason it was asked for."""
        reason, self.replace_reason = self.replace_reason, None
        old = self.transport
        with contextlib.suppress(KafkaException):
            old.purge(True, True, True)
        self.transport = self._new()
        self.generation += 1
        self._retired.append((old, time.monotonic() + RETIRE_GRACE))
        return reason

    @property
    def retiring(self) -> bool:
        """Whether a replaced transport is still being polled."""
        return bool(self._retired)

    def poll_retired(self, *, purge: bool) -> None:
        """Serve the retired transports' reports; close those that reported everything (or
        whose grace ran out). ``purge``: purge them again first (a caller that passed the gate
        just before it closed may have produced into one after its purge)."""
        now = time.monotonic()
        keep = []
        for old, until in self._retired:
            with contextlib.suppress(KafkaException):
                if purge:
                    old.purge(True, True, True)
                old.poll(0)
            if len(old) and now < until:
                keep.append((old, until))
                continue
            with contextlib.suppress(KafkaException):
                old.purge(True, True, True)
                old.poll(0)
                old.close()
        self._retired = keep

    def all_transports(self) -> list[Transport]:
        """The transport in use, then the retired ones."""
        return [self.transport, *(old for old, _ in self._retired)]

    def depth(self) -> int:
        """Messages in the transport's queue (waiting, or in flight to a broker)."""
        return len(self.transport)
