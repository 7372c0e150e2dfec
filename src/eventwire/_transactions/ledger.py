"""The ledger of one transaction: its receipts in publish order, its first failure, and the
drain its end waits on until every record of it is settled.

Each call's records settle through a ``TransactionSink``: a receipt takes its place in the
ledger, a failure dooms the transaction (it cannot commit; its end aborts it), then the
outcome goes on to the caller's own sink.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from eventwire._errors import TransactionStateError
from eventwire._outcome import DeliveryReceipt

if TYPE_CHECKING:
    from eventwire._core.record import InFlight, Sink
    from eventwire._errors import PublishError


class Drain(Protocol):
    """What the end of a transaction waits on: held once per record it produced (and once
    by the transaction itself), released as each is settled. The twins' batch sinks."""

    @property
    def waitable(self) -> Any:
        """What the driver waits on until every hold is released."""

    def hold(self, count: int) -> None: ...

    def release(self, count: int = 1) -> None: ...


class Ledger:
    """One transaction: receipts in publish order, its first failure, and its drain.

    ``state`` is ``"open"``, ``"ending"`` (its end began: nothing more is published),
    ``"committed"``, ``"aborted"`` or ``"unknown"`` (the commit was not confirmed).
    """

    __slots__ = ("_lock", "closed_by_close", "drain", "failure", "receipts", "state")

    def __init__(self, drain: Drain) -> None:
        self.drain = drain
        self.receipts: list[DeliveryReceipt | None] = []
        #: The first error of the transaction (an event's, or a call's): it cannot commit.
        self.failure: BaseException | None = None
        self.state = "open"
        #: A close aborted it while it was open.
        self.closed_by_close = False
        self._lock = threading.Lock()

    def sink(self, inner: Sink, count: int) -> TransactionSink:
        """The sink of ``count`` records (slots ``0 .. count - 1``) of one call: each outcome
        is noted here, then goes to ``inner``."""
        with self._lock:  # sync callers may publish from several threads
            base = len(self.receipts)
            self.receipts.extend([None] * count)
        return TransactionSink(self, inner, base)

    def doom(self, error: BaseException) -> None:
        """Note a failure: the transaction cannot commit (the first one is kept)."""
        if self.failure is None:
            self.failure = error

    def check_open(self) -> None:
        """Raise unless events may still be published in this transaction."""
        if self.state != "open":
            raise TransactionStateError(
                f"this transaction has ended ({self.state}); start another with "
                "publisher.transaction() (nothing was sent)"
            )


class TransactionSink:
    """The sink of one call's records in a transaction: each outcome is noted in the ledger
    (a receipt in its place, a failure dooms it), then goes to the caller's sink."""

    __slots__ = ("_base", "_inner", "_ledger")

    def __init__(self, ledger: Ledger, inner: Sink, base: int) -> None:
        self._ledger = ledger
        self._inner = inner
        self._base = base

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None:
        ledger = self._ledger
        if isinstance(outcome, DeliveryReceipt):
            ledger.receipts[self._base + record.slot] = outcome
        else:
            ledger.doom(outcome)
        try:
            self._inner.settle(record, outcome)
        finally:
            ledger.drain.release()


class TransactionScope:
    """What both twins' transaction objects share: the ledger of the transaction once it
    has begun, its receipts and whether it committed."""

    __slots__ = ("_ledger",)
    #: How the transaction is used, for the error of one used before it began.
    _statement: ClassVar[str] = "with"

    def __init__(self) -> None:
        self._ledger: Ledger | None = None

    @property
    def receipts(self) -> tuple[DeliveryReceipt, ...]:
        """The receipts of the events written so far, in publish order (after a commit:
        every event's)."""
        ledger = self._ledger
        return () if ledger is None else tuple(r for r in ledger.receipts if r is not None)

    @property
    def committed(self) -> bool:
        """Whether the transaction committed."""
        return self._ledger is not None and self._ledger.state == "committed"

    def _open(self) -> Ledger:
        ledger = self._ledger
        if ledger is None:
            raise TransactionStateError(
                f"use the transaction as `{self._statement}`: it has not begun"
            )
        return ledger
