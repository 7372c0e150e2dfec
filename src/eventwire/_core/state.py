"""A publisher's lifecycle: one state, checked transitions."""

from __future__ import annotations

import enum
import threading
from typing import Final


class State(enum.Enum):
    """Where a publisher is in its life.

    * ``OPEN``: accepting events.
    * ``INTAKE_STOPPED``: a shutdown signal arrived: new events are refused, what was
      accepted goes on (a close follows).
    * ``ORPHANED``: dropped unclosed: nobody can publish or close; it settles what it holds,
      then stops.
    * ``CLOSING``: a close waits for what is outstanding.
    * ``ABANDONING``: the close's deadline passed: everything left is purged and failed.
    * ``CLOSED``: stopped.
    * ``FORKED``: this is a child of the process that built it (librdkafka's threads did not
      survive the fork): it refuses everything.
    """

    OPEN = "open"
    INTAKE_STOPPED = "intake_stopped"
    ORPHANED = "orphaned"
    CLOSING = "closing"
    ABANDONING = "abandoning"
    CLOSED = "closed"
    FORKED = "forked"


_ALLOWED: Final[dict[State, frozenset[State]]] = {
    State.OPEN: frozenset(
        {State.INTAKE_STOPPED, State.ORPHANED, State.CLOSING, State.CLOSED, State.FORKED}
    ),
    State.INTAKE_STOPPED: frozenset({State.ORPHANED, State.CLOSING, State.CLOSED, State.FORKED}),
    State.ORPHANED: frozenset({State.CLOSING, State.CLOSED, State.FORKED}),
    State.CLOSING: frozenset({State.ABANDONING, State.CLOSED, State.FORKED}),
    State.ABANDONING: frozenset({State.CLOSED, State.FORKED}),
    State.CLOSED: frozenset({State.FORKED}),
    State.FORKED: frozenset(),
}
#: States in which no event is accepted.
_REFUSING: Final = frozenset(State) - {State.OPEN}
#: After a close gave up (or stopped): reports still arriving are purges of its own doing.
_GAVE_UP: Final = frozenset({State.ABANDONING, State.CLOSED})
#: States from which a close began (or can no longer begin).
_CLOSED: Final = frozenset({State.CLOSING, State.ABANDONING, State.CLOSED, State.FORKED})


class Lifecycle:
    """The state of one publisher; transitions are checked (an illegal one is a bug)."""

    __slots__ = ("_lock", "state")

    def __init__(self) -> None:
        self.state = State.OPEN
        self._lock = threading.Lock()

    def move(self, to: State, *, only_from: frozenset[State] | None = None) -> bool:
        """Move to ``to``; False (nothing changes) if already there, or if the current state
        is not in ``only_from``.

        Raises:
            RuntimeError: the transition is not one of the lifecycle's.
        """
        with self._lock:
            current = self.state
            if current is to or (only_from is not None and current not in only_from):
                return False
            if to not in _ALLOWED[current]:
                raise RuntimeError(f"publisher lifecycle: {current.value} -> {to.value}")
            self.state = to
            return True

    @property
    def accepting(self) -> bool:
        return self.state is State.OPEN

    @property
    def refusing(self) -> bool:
        return self.state in _REFUSING

    @property
    def closed(self) -> bool:
        """Whether a close began (or the publisher was forked)."""
        return self.state in _CLOSED

    @property
    def abandoning(self) -> bool:
        """Whether a close gave up on what was left (its reports settle as failures)."""
        return self.state in _GAVE_UP

    @property
    def forked(self) -> bool:
        return self.state is State.FORKED

    @property
    def orphaned(self) -> bool:
        return self.state is State.ORPHANED
