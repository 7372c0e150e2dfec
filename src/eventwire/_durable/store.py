"""What the relay needs of a store of accepted, unacknowledged events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from eventwire._codec import EncodedEvent


class StoredEvent(NamedTuple):
    """One event in a store: its place (``seq``, the order it is produced in), when it was
    accepted (epoch seconds; ``None`` when unknown), and the Kafka record itself."""

    seq: int
    accepted_at: float | None
    encoded: EncodedEvent


class Store(Protocol):
    """A durable store of events: what was committed survives the process."""

    @property
    def name(self) -> str:
        """How messages name the store (a path, a table)."""

    def load(self) -> list[StoredEvent]:
        """Every stored event, in ``seq`` order."""

    def commit(self, added: Sequence[StoredEvent], done: Sequence[tuple[int, int]]) -> None:
        """In one transaction: store ``added`` and remove the ``(first, last)`` seq ranges
        of ``done`` (delivered, or never deliverable)."""

    def close(self) -> None:
        """Release the store; idempotent."""


@runtime_checkable
class Source(Protocol):
    """A store that others write to (the outbox table): the relay fetches what they
    committed, besides what was submitted to it."""

    def fetch(self) -> list[StoredEvent]:
        """Events to produce now, in order (each once); ``[]`` when none is due. The store
        decides when to query; the relay calls this at every turn of its writer."""
