"""The process around the publishers: ``os.fork()``.

librdkafka's threads do not survive a fork: a child using its parent's producer would wait for
delivery reports for ever. So every producer core is known here (weakly), and in a forked
child each one is marked forked (its publisher then refuses events with a clear
``PublisherClosedError``).
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventwire._producer import ProducerCore

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



os.register_at_fork(after_in_child=_after_fork_in_child)
