"""close: stop intake, drain within the deadline, then give up (or leave it in the spool)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from eventwire._durable.relay import Relay
from eventwire._flows.ops import CLOSE_GRACE, STOP_SHARE, TICK, Blocking, Flow, Tick, left
from eventwire._outcome import CloseReport

if TYPE_CHECKING:
    from eventwire._publisher import PublisherBase


def close(pub: PublisherBase, timeout: float) -> Flow[CloseReport]:
    """Stop accepting events, wait up to ``timeout`` seconds for outstanding deliveries, then
    fail (or leave in the spool) whatever is left. A second close waits for the first."""
    core = pub._core
    if core.lifecycle.closed:
        if not core.lifecycle.forked and not pub._close_done.is_set():
            yield Blocking(pub._close_done.wait, timeout + 1.0)
        return pub._report(timed_out=False, log=False)
    core.begin_close()
    try:
        return (yield from _close_now(pub, timeout))
    finally:
        pub._close_done.set()


def _close_now(pub: PublisherBase, timeout: float) -> Flow[CloseReport]:
    core = pub._core
    relay = pub._relay
    deadline = time.monotonic() + timeout
    if not core.poll.started:  # never used: nothing in flight (replayed rows stay stored)
        core.stop_polling(1.0)
        if relay is not None:
            relay.stop(1.0)
        return pub._report(timed_out=False)
    # A publish_many producing in another thread (or task) stops at its next event: what it
    # handed over is drained and counted, and nothing reaches the producer after a purge.
    yield Blocking(core.poll.batches_ended, timeout)
    if relay is not None:
        return (yield from _close_spooled(pub, relay, deadline))
    timed_out = not (yield from _drained(pub, deadline))
    grace = time.monotonic() + CLOSE_GRACE
    if timed_out:
        core.abandon()
        yield from _drained(pub, grace - STOP_SHARE)
    if pub._transactions is not None:
        # A transaction left open is aborted now (its records were settled above), not held
        # open until Kafka times it out, holding back read_committed consumers meanwhile.
        yield Blocking(pub._transactions.shut_down, left(max(deadline, grace - STOP_SHARE)))
    yield Blocking(core.stop_polling, left(grace))
    # The poll thread may have been busy (a breaker probe blocks it up to probe_timeout):
    # its last reports still count if they are settled within the grace.
    yield from _drained(pub, grace)
    return pub._report(timed_out)


def _close_spooled(pub: PublisherBase, relay: Relay, deadline: float) -> Flow[CloseReport]:
    """Flush until ``deadline`` (or until nothing can move: breaker open), then leave the
    rest in the spool. Bounded like any close."""
    counters = pub._core.counters
    while relay.backlog > 0 and not (counters.outstanding <= 0 and relay.stalled()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        yield Tick(min(remaining, TICK))
    timed_out = relay.backlog > 0
    relay.closing = True
    if counters.outstanding > 0:
        # Purged reports come back failed: the spool keeps those rows. They are settled by the
        # poll thread's last batch (no wait here: the spool has them anyway).
        pub._core.abandon()
    grace = time.monotonic() + CLOSE_GRACE
    yield Blocking(pub._core.stop_polling, left(grace - STOP_SHARE))
    yield Blocking(relay.stop, left(grace))
    pub._settle_left(relay)
    return pub._report(timed_out)


def _drained(pub: PublisherBase, deadline: float) -> Flow[bool]:
    counters = pub._core.counters
    while counters.outstanding > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        yield Tick(min(remaining, TICK))
    return True
