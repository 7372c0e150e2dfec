"""The process around the publishers: ``os.fork()`` and interpreter exit.

librdkafka's threads do not survive a fork: a child using its parent's producer would wait for
delivery reports for ever. So every producer core is known here (weakly), and in a forked
child each one is marked forked (its publisher then refuses events with a clear
``PublisherClosedError``). At interpreter exit, a core never closed (its publisher was left
open, or garbage-collected while its poll thread ran) gets a bounded flush instead of being
killed with the daemon thread and its queued events lost.
"""

from __future__ import annotations

import atexit
import os
import time
import weakref
from typing import TYPE_CHECKING, Final

from eventwire._logs import log as _log

if TYPE_CHECKING:
    from eventwire._producer import ProducerCore

#: Seconds an unclosed publisher gets at interpreter exit to deliver what it holds.
EXIT_FLUSH_TIMEOUT: Final = 10.0

_cores: weakref.WeakSet[ProducerCore] = weakref.WeakSet()


def track(core: ProducerCore) -> None:
    """Know ``core`` until it is garbage-collected (fork marking, flush at exit)."""
    _cores.add(core)


def forked_message(pid: int) -> str:
    """Why a publisher created in process ``pid`` refuses events in a forked child."""
    return (
        f"publisher was created in process {pid}, and this is a child forked from it: "
        "librdkafka's threads do not survive os.fork(), nothing could be delivered; "
        "create the publisher in the child, after the fork (e.g. in gunicorn's post_fork "
        "hook or the multiprocessing worker)"
    )


def _after_fork_in_child() -> None:
    for core in list(_cores):
        core.forked = core.closed = True
    _cores.clear()


def _flush_at_exit(core: ProducerCore, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not core.idle():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        core.wait_for_room(core.room_generation, min(remaining, 0.1))
    _log.warning(
        "eventwire.closed_at_exit",
        client_id=core.config.client_id,
        undelivered=core.queue_depth() if core.loop_lost else core.outstanding,
        hint="close the publisher before the process exits",
    )
    core.begin_close()
    core.stop_polling(1.0)  # what is left is purged: its callers get an error


def _close_open_cores() -> None:
    for core in list(_cores):
        if not core.closed and core.polling:
            _flush_at_exit(core, EXIT_FLUSH_TIMEOUT)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_open_cores)
