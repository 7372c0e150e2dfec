"""What the publisher knows of the cluster's reachability, and the probes that find out.

Probes are metadata requests run on the poll thread: one confirms a suspicion of the breaker
(``_ALL_BROKERS_DOWN``, or failures at its threshold) or a reported refusal of this client
(``_core.denials``), one tests a half-open breaker, and one keeps ``health()``'s cached answer
fresh while it is being asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventwire._core.breaker import CircuitBreaker
from eventwire._core.denials import Denials
from eventwire._health import HealthProbe

#: Seconds a probe confirming a refusal may take without a breaker (its default otherwise).
_PROBE_TIMEOUT = 1.0


class Probes:
    """Reachability facts and probes (poll thread; facts read anywhere)."""

    __slots__ = (
        "_breaker",
        "_delivered",
        "_denials",
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
        denials: Denials,
        metadata: Callable[[float], Any],
        purge_queued: Callable[[], None],
        delivered: Callable[[], int],
        spooled: bool,
    ) -> None:
        self._breaker = breaker
        self._denials = denials
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
        denials = self._denials
        suspected = breaker is not None and breaker.confirmation_due()
        if suspected or denials.confirmation_due():
            # _ALL_BROKERS_DOWN is also what one connection reset looks like with a single
            # broker, and one broker refusing a login is not the cluster refusing it: only a
            # failed metadata request right after opens the breaker or confirms a refusal.
            timeout = _PROBE_TIMEOUT if breaker is None else breaker.policy.probe_timeout
            reachable = self.probe(timeout)
            denials.confirm(reachable, timeout)
            if breaker is not None and suspected:
                breaker.confirm(reachable, denials.reason)
            self._fail_queued_if_unreached()
        elif breaker is not None and breaker.state != "closed" and breaker.probe_due():
            breaker.probe_result(self.probe(breaker.policy.probe_timeout))
            self._fail_queued_if_unreached()
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
        self._denials.answered()
        return True

    def _fail_queued_if_unreached(self) -> None:
        """The breaker opened (or stayed open), or the cluster refuses this client, and it
        never answered: a mistyped address, a cluster down since start, wrong credentials.
        Fail what waits in librdkafka's queue now, as the breaker fails new events, instead
        of after ``delivery_timeout`` (minutes).

        Only then: nothing was ever sent, so no producer id or sequence is at stake and every
        purged event is certainly not delivered. Once the cluster answered, queued events may
        sit behind sent ones of their partition and keep waiting for their delivery report.
        A spool keeps its events in any case (they are replayed, not failed).
        """
        breaker = self._breaker
        refused = self._denials.current is not None
        if not (refused or (breaker is not None and breaker.state == "open")):
            return
        if self.reached or self._spooled:
            return
        self.purged_unreached = True
        self._purge_queued()  # queued only; reports arrive on the next poll
