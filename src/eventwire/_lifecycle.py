"""The process around the publishers: ``os.fork()`` and interpreter exit.

librdkafka's threads do not survive a fork: a child using its parent's producer would wait for
delivery reports for ever. So every producer core is known here (weakly), and in a forked
child each one is told so (its publisher then refuses events with a clear
``PublisherClosedError``). At interpreter exit, a core never closed (its publisher was left
open, or garbage-collected while its poll thread ran) gets a bounded flush instead of being
killed with the daemon thread and its queued events lost.
"""

from __future__ import annotations

import atexit
import os
import weakref
from typing import Final, Protocol

#: Seconds an unclosed publisher gets at interpreter exit to deliver what it holds.
EXIT_FLUSH_TIMEOUT: Final = 10.0


class Tracked(Protocol):
    """What the process hooks need of a producer core."""

    def forked_in_child(self) -> None:
        """This is a child forked after the core was built: refuse everything from now on."""

    def flush_at_exit(self, timeout: float) -> None:
        """The interpreter exits: deliver what is held within ``timeout``, then stop
        (nothing, if the core is closed or never started)."""


_cores: weakref.WeakSet[Tracked] = weakref.WeakSet()


def track(core: Tracked) -> None:
    """Know ``core`` until it is garbage-collected (fork marking, flush at exit)."""
    _cores.add(core)


def _after_fork_in_child() -> None:
    for core in list(_cores):
        core.forked_in_child()
    _cores.clear()


def _close_open_cores() -> None:
    for core in list(_cores):
        core.flush_at_exit(EXIT_FLUSH_TIMEOUT)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_open_cores)
