"""The cluster's refusals of this client, as the core keeps track of them.

A client error that says "not let in" (``_core.access``) is *pending* until a metadata probe
fails too: with several brokers, one that refuses is not the cluster refusing (and a broker
answering after all drops it). A refusal of authorization is confirmed at once: the cluster
answered. A confirmed refusal that librdkafka words vaguely is sharpened by a TLS check of
the listener (``_core.tls_check``), which also tells a plaintext client that the listener
speaks TLS. The refusal is current until the cluster answers a probe (authentication) or
acknowledges a write (any).

Written on the poll thread; read anywhere (single attribute reads).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from eventwire._core.access import Connection, Denial, denial_of, tls_denial
from eventwire._core.tls_check import check_listener
from eventwire._logs import log as _log

#: Seconds between TLS checks of a listener that could not be reached or told nothing.
_RECHECK_AFTER: Final = 30.0


class Denials:
    """Refusals of this client: reported, confirmed, sharpened and dropped."""

    __slots__ = (
        "_check_after",
        "_connection",
        "_log",
        "_pending",
        "_scrub",
        "_settings",
        "_unreached_down",
        "current",
    )

    def __init__(
        self,
        connection: Connection,
        settings: Mapping[str, object],
        scrub: Callable[[str], str],
        *,
        log: bool = True,
    ) -> None:
        self._connection = connection
        self._log = log
        self._settings = settings
        self._scrub = scrub
        #: The confirmed refusal in force, or ``None``.
        self.current: Denial | None = None
        self._pending: Denial | None = None
        self._unreached_down = False
        self._check_after = 0.0

    def observe(self, code: str, reason: str) -> Denial | None:
        """A client error: the refusal it reports (pending, or confirmed if authorization)."""
        denial = denial_of(code, self._scrub(reason), self._connection)
        if denial is None:
            return None
        if denial.kind == "authorization":
            self._confirm(denial)
        else:
            self._pending = denial
        return denial

    def all_brokers_down(self, reached: bool) -> None:
        """librdkafka lost every broker; before the cluster ever answered, a TLS check may
        tell why: a plaintext client at a TLS listener gets no other word, and a broker
        certificate that fails verification may be reported after the brokers are."""
        if not reached:
            self._unreached_down = True

    @property
    def known(self) -> Denial | None:
        """The refusal in force, else one reported and not confirmed yet."""
        return self.current or self._pending

    @property
    def reason(self) -> str | None:
        """The refusal to name when the cluster seems down (confirmed, else pending)."""
        denial = self.known
        return None if denial is None else denial.summary

    def confirmation_due(self) -> bool:
        """Whether a probe should confirm a reported refusal now."""
        return self._pending is not None or (
            self._unreached_down and time.monotonic() >= self._check_after
        )

    def confirm(self, reachable: bool, timeout: float) -> None:
        """The probe's outcome: a good one drops what was reported (one broker, or passing); a
        failed one confirms it, sharpened by a TLS check where librdkafka said too little."""
        pending, self._pending = self._pending, None
        down, self._unreached_down = self._unreached_down, False
        if reachable:
            return
        if (pending is None and down) or (pending is not None and pending.diagnose != "none"):
            found = self._check(timeout)
            if found is not None:
                pending = found
        if pending is not None:
            self._confirm(pending)

    def _check(self, timeout: float) -> Denial | None:
        if time.monotonic() < self._check_after:
            return None
        self._check_after = time.monotonic() + _RECHECK_AFTER
        finding = check_listener(self._settings, timeout)
        if finding is None:
            return None
        ca = self._settings.get("ssl.ca.location")
        return tls_denial(finding, None if ca is None else str(ca))

    def _confirm(self, denial: Denial) -> None:
        if denial != self.current and self._log:
            _log.warning(
                "eventwire.access_denied",
                kind=denial.kind,
                code=denial.code,
                problem=denial.problem,
                check=denial.check,
                bootstrap_servers=self._connection.servers,
            )
        self.current = denial

    def answered(self) -> None:
        """A probe succeeded: the cluster lets this client in."""
        current = self.current
        if current is not None and current.kind == "authentication":
            self.current = None

    def accepted(self) -> None:
        """The cluster acknowledged a write: nothing is refused."""
        self.current = None


def connection_of(settings: Mapping[str, object]) -> Connection:
    """What a client's librdkafka settings say about how it connects, for the wording."""
    protocol = str(settings.get("security.protocol", "PLAINTEXT")).upper()
    mechanism = settings.get("sasl.mechanism") or settings.get("sasl.mechanisms")
    username = settings.get("sasl.username") or settings.get("sasl.oauthbearer.client.id")
    return Connection(
        servers=str(settings.get("bootstrap.servers", "")),
        tls=protocol in ("SSL", "SASL_SSL"),
        mechanism=None if mechanism is None else str(mechanism).upper(),
        username=None if username is None else str(username),
        client_certificate=any(
            key in settings
            for key in ("ssl.certificate.location", "ssl.keystore.location", "ssl.certificate.pem")
        ),
    )
