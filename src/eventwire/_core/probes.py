"""What the publisher knows of the cluster's reachability, and the probes that find out.

Probes are metadata requests run on the poll thread: one confirms a suspicion of the breaker
(``_ALL_BROKERS_DOWN``, or failures at its threshold), one tests a half-open breaker, and one
keeps ``health()``'s cached answer fresh while it is being asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventwire._core.breaker import CircuitBreaker
from eventwire._health import HealthProbe


class Probes:
    """Reachability facts and probes (poll thread; facts read anywhere)."""

    __slots__ = (
        "_breaker",
        "_delivered",
        "_metadata",
        "_purge_queued",
        "_spooled",
        "health",
        "purged_unreached",
        "reached",
    )

    def __init__(
        self,
        *,
        breaker: CircuitBreaker | None,
        metadata: Callable[[float], Any],
        purge_queued: Callable[[], None],
        delivered: Callable[[], int],
        spooled: bool,
    ) -> None:
        self._breaker = breaker
        self._metadata = metadata
        self._purge_queued = purge_queued
        self._delivered = delivered
        self._spooled = spooled
        self.health = HealthProbe()
        #: Whether the cluster ever answered this publisher (a probe or a delivery). Until it
        #: does, an open breaker also fails what is queued (``_fail_queued_if_unreached``).
        self.reached = False
        #: Queued events were purged because the cluster never answered.
        self.purged_unreached = False

    def step(self) -> None:
        """The poll thread's probing step."""
        breaker = self._breaker
        if breaker is not None and breaker.confirmation_due():
            # _ALL_BROKERS_DOWN is also what one connection reset looks like with a single
            # broker; only a failed metadata request right after it opens the breaker.
            breaker.confirm(self.probe(breaker.policy.probe_timeout))
            self._fail_queued_if_unreached(breaker)
        elif breaker is not None and breaker.state != "closed" and breaker.probe_due():
            breaker.probe_result(self.probe(breaker.policy.probe_timeout))
            self._fail_queued_if_unreached(breaker)
        health = self.health
        if health.wanted and health.due():
            health.record(self.probe(health.timeout), self._delivered())

    def probe(self, timeout: float) -> bool:
        """Whether the cluster answers a metadata request within ``timeout``. Any failure
        counts as unreachable (a closed handle raises ``RuntimeError``, not KafkaException)."""
        try:
            self._metadata(timeout)
        except Exception:  # noqa: BLE001 - a probe answers a question, it never fails
            return False
        self.reached = True
        return True

    def _fail_queued_if_unreached(self, breaker: CircuitBreaker) -> None:
        """The breaker opened (or stayed open) and the cluster never answered: a mistyped
        address, or a cluster down since start. Fail what waits in librdkafka's queue now,
        as the breaker fails new events, instead of after ``delivery_timeout`` (minutes).

        Only then: nothing was ever sent, so no producer id or sequence is at stake and every
        purged event is certainly not delivered. Once the cluster answered, queued events may
        sit behind sent ones of their partition and keep waiting for their delivery report.
        A spool keeps its events in any case (they are replayed, not failed).
        """
        if breaker.state != "open" or self.reached or self._spooled:
            return
        self.purged_unreached = True
        self._purge_queued()  # queued only; reports arrive on the next poll
