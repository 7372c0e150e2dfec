"""The transactional producer's state: initialised once, then one transaction at a time.

A transactional publisher (``PublisherConfig(transactional_id=...)``) publishes only inside
``publisher.transaction()``. ``TransactionalProducer`` is the state of its producer: initialised by
the first transaction (``init_transactions`` fences older producers with the same id and
aborts what they left open), then one transaction at a time: begin, its records, commit or
abort. A fatal error (a newer producer fenced this one, most often) is latched: from then
on the publisher publishes nothing. Each transaction is a ``Ledger`` (``ledger``).

Inside a transaction the transaction is the unit that fails. The core fails a record at once
(``decisions``: never re-sent, parked or dead-lettered, and the producer is never replaced);
any failure dooms the transaction, and its end aborts it. Commit and abort are called only
once every record of the transaction is settled, so they never serve a delivery report off
the poll thread, and in slices of at most ``SLICE`` seconds, so a close need not wait out a
commit the cluster does not answer.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from confluent_kafka import KafkaException

from eventwire._classify import to_transaction_error
from eventwire._errors import (
    AmbiguousTransactionError,
    FatalTransactionError,
    ProducerFencedError,
    PublisherClosedError,
    TransactionAbortedError,
    TransactionError,
    TransactionStateError,
)
from eventwire._logs import log as _log
from eventwire._messages import CLOSED_MESSAGE

if TYPE_CHECKING:
    from eventwire._core.coordinator import ProducerCore
    from eventwire._transactions.ledger import Ledger

#: Longest one commit, abort or init call blocks before it is called again (librdkafka
#: resumes the operation): a close waits at most this long for one in progress.
SLICE: Final = 0.25
#: The shortest slice given to a call, whatever is left of its deadline.
_MIN_SLICE: Final = 0.05


class Phase(enum.Enum):
    """Where the transactional producer is.

    * ``UNINITIALIZED``: ``init_transactions`` has not succeeded yet (the first transaction
      calls it).
    * ``READY``: no transaction is open.
    * ``OPEN``: a transaction is open: its records are produced.
    * ``ENDING``: its commit or abort is under way.
    * ``FAILED``: a fatal error: nothing more is published (``TransactionalProducer.failure``).
    """

    UNINITIALIZED = "uninitialized"
    READY = "ready"
    OPEN = "open"
    ENDING = "ending"
    FAILED = "failed"


class TransactionalProducer:
    """The transactional producer's state (see the module docstring); thread-safe."""

    def __init__(self, core: ProducerCore) -> None:
        config = core.config
        assert config.transactional_id is not None  # noqa: S101 - built only with one
        self.transactional_id: str = config.transactional_id
        #: ``transaction_timeout``: bounds init, commit and abort.
        self.timeout = config.transaction_timeout
        self._core = core
        self._cond = threading.Condition(threading.Lock())
        self.phase = Phase.UNINITIALIZED
        #: The transaction open or starting (claimed), if any.
        self.current: Ledger | None = None
        #: The latched fatal error, once ``FAILED``.
        self.failure: FatalTransactionError | None = None
        self._closing = False
        #: Blocking calls under way: a close waits for them before the producer goes.
        self._calls = 0

    # -- one transaction at a time -----------------------------------------------------------

    def claim(self, ledger: Ledger) -> None:
        """Make ``ledger`` the transaction being started.

        Raises:
            FatalTransactionError: the producer failed (the latched error, again).
            TransactionStateError: a transaction is open (or starting) already.
        """
        with self._cond:
            self._raise_if_failed()
            if self.current is not None:
                raise TransactionStateError(
                    f"a transaction of {self.transactional_id!r} is open already: one "
                    "transaction at a time per publisher (end it first; for concurrent "
                    "transactions use one publisher, with its own transactional_id, per "
                    "concurrent unit)"
                )
            self.current = ledger

    def release(self, ledger: Ledger) -> None:
        """Give up ``ledger`` before it began (its begin failed)."""
        with self._cond:
            if self.current is ledger:
                self.current = None
                ledger.state = "aborted"
                self._cond.notify_all()

    def initialize(self) -> None:
        """``init_transactions`` (blocking, within ``transaction_timeout``): fences older
        producers with this id and aborts what they left open.

        Raises:
            FatalTransactionError: the producer failed (fenced, not authorized...).
            TransactionAbortedError: not done in time; the next transaction tries again.
        """
        started = time.monotonic()
        self._call(
            self._transport().init_transactions,
            "initializing transactions",
            started + self.timeout,
        )
        with self._cond:
            if self.phase is Phase.UNINITIALIZED:
                self.phase = Phase.READY
        _log.info(
            "eventwire.transactions_initialized",
            transactional_id=self.transactional_id,
            seconds=round(time.monotonic() - started, 3),
        )

    def begin(self, ledger: Ledger) -> None:
        """``begin_transaction`` (local) for the claimed ``ledger``."""
        with self._cond:
            self._raise_if_failed()
            if self._closing:  # a close began while transactions were initialised
                raise PublisherClosedError(CLOSED_MESSAGE)
            try:
                self._transport().begin_transaction()
            except KafkaException as exc:
                error = exc.args[0]
            else:
                self.phase = Phase.OPEN
                return
        raise self._mapped(error, "beginning a transaction")

    # -- inside --------------------------------------------------------------------------------

    def check_publishing(self, ledger: Ledger) -> None:
        """Raise unless events may go into ``ledger``: open, nothing in it failed (librdkafka
        refuses records of a transaction that must be aborted), and the producer is fine."""
        ledger.check_open()
        if self.failure is not None:
            with self._cond:
                self._raise_if_failed()
        failure = ledger.failure
        if failure is not None:
            error = TransactionAbortedError(
                f"transaction of {self.transactional_id!r} cannot commit: a call in it failed "
                f"({type(failure).__name__}: {failure}); it is aborted when its block exits, "
                "and nothing more is published in it (nothing was sent)",
                transactional_id=self.transactional_id,
                code=getattr(failure, "code", None),
            )
            raise error from failure

    def send_offsets(self, ledger: Ledger, offsets: list[Any], group_metadata: Any) -> None:
        """``send_offsets_to_transaction`` (blocking): the consumer's offsets commit with the
        transaction. Any failure dooms it.

        Raises:
            TransactionError: fatal (the producer failed) or aborted (the end aborts it).
        """
        try:
            self.check_publishing(ledger)
            self._call(
                lambda remaining: self._transport().send_offsets_to_transaction(
                    offsets, group_metadata, remaining
                ),
                "sending the consumer's offsets",
                time.monotonic() + self.timeout,
            )
        except BaseException as exc:
            ledger.doom(exc)
            raise

    # -- the end -------------------------------------------------------------------------------

    def commit(self, ledger: Ledger) -> None:
        """Commit ``ledger`` (blocking; every record of it is settled).

        Raises:
            TransactionAbortedError: the commit failed and the transaction was aborted (or a
                close aborted it first).
            ProducerFencedError: a newer producer with this id took over.
            AmbiguousTransactionError: the commit was not confirmed within
                ``transaction_timeout`` (or before a close stopped waiting for it).
            FatalTransactionError: any other fatal error.
        """
        self._start_ending(ledger, committing=True)
        deadline = time.monotonic() + self.timeout
        outcome = "aborted"
        try:
            while True:
                error = self._attempt(self._transport().commit_transaction, deadline)
                if error is None:
                    break
                if error.fatal():
                    raise self._mapped(error, "committing")
                if error.retriable() and not error.txn_requires_abort():
                    if time.monotonic() < deadline and not self._closing:
                        continue  # librdkafka resumes the commit
                    raise self._latch(self._unconfirmed(error))
                # txn_requires_abort (or a state librdkafka refuses): abort, then raise.
                aborted = self._mapped(error, "committing")
                ledger.doom(aborted)
                self._abort_calls(time.monotonic() + self.timeout, interruptible=True)
                raise aborted
            outcome = "committed"
        except AmbiguousTransactionError:
            outcome = "unknown"
            raise
        finally:
            self._ended(ledger, outcome)

    def abort(self, ledger: Ledger, reason: str | None = None) -> None:
        """Abort ``ledger`` (blocking; every record of it is settled); nothing if a close
        aborted it already.

        Raises:
            FatalTransactionError: the producer failed, or the abort was not confirmed in
                time (Kafka aborts the transaction after ``transaction_timeout``).
        """
        if not self._start_ending(ledger, committing=False):
            return
        try:
            self._abort_calls(time.monotonic() + self.timeout, interruptible=True)
        finally:
            self._ended(ledger, "aborted", reason=reason)

    def shut_down(self, timeout: float) -> None:
        """A close: stop waiting for a commit or abort under way after its current slice,
        and abort a transaction still open (the close settled its records first). Bounded
        by ``timeout``; what is not aborted in time Kafka aborts after
        ``transaction_timeout``."""
        deadline = time.monotonic() + timeout
        # A call under way ends within its slice once it sees the close: waited for even
        # past the deadline, since the producer is destroyed next.
        calls_deadline = max(deadline, time.monotonic() + SLICE + _MIN_SLICE)
        with self._cond:
            self._closing = True
            while (self.phase is Phase.ENDING or self._calls) and self._cond.wait(
                _left(calls_deadline if self._calls else deadline)
            ):
                pass
            ledger = self.current if self.phase is Phase.OPEN else None
            if ledger is None:
                return
            self.phase = Phase.ENDING
            ledger.state = "ending"
            ledger.closed_by_close = True
        try:
            self._abort_calls(deadline, interruptible=False)
        except TransactionError as exc:
            _log.warning(
                "eventwire.transaction_abort_failed",
                transactional_id=self.transactional_id,
                reason=str(exc),
            )
        finally:
            self._ended(ledger, "aborted", reason="publisher closed")

    # -- helpers -------------------------------------------------------------------------------

    def _transport(self) -> Any:
        return self._core.handle.transport

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        with self._cond:
            if self._closing and self._core.lifecycle.closed and not self._core.poll.running:
                raise PublisherClosedError(CLOSED_MESSAGE)
            self._calls += 1
        try:
            yield
        finally:
            with self._cond:
                self._calls -= 1
                self._cond.notify_all()

    def _start_ending(self, ledger: Ledger, *, committing: bool) -> bool:
        """OPEN -> ENDING for ``ledger``; False if a close aborted it already (an abort then
        has nothing to do; a commit raises)."""
        with self._cond:
            if ledger.closed_by_close:
                while self.phase is Phase.ENDING and self.current is ledger:
                    self._cond.wait()
                if committing:
                    error = TransactionAbortedError(
                        f"transaction of {self.transactional_id!r} aborted: the publisher "
                        "was closed while it was open; nothing of it is visible",
                        transactional_id=self.transactional_id,
                    )
                    error.__cause__ = PublisherClosedError("publisher closed")
                    raise error
                return False
            self._raise_if_failed()
            if self.current is not ledger or self.phase is not Phase.OPEN:
                raise TransactionStateError(
                    f"transaction of {self.transactional_id!r} is not open ({self.phase.value})"
                )
            self.phase = Phase.ENDING
            return True

    def _ended(self, ledger: Ledger, state: str, *, reason: str | None = None) -> None:
        with self._cond:
            if self.current is not ledger:
                return
            ledger.state = state
            self.current = None
            if self.phase is not Phase.FAILED:
                self.phase = Phase.READY
            self._cond.notify_all()
        if state == "unknown":
            return  # the latched error said it
        if state == "committed":
            _log.debug(
                "eventwire.transaction_committed",
                transactional_id=self.transactional_id,
                events=len(ledger.receipts),
            )
        else:
            failure = ledger.failure
            _log.warning(
                "eventwire.transaction_aborted",
                transactional_id=self.transactional_id,
                events=len(ledger.receipts),
                reason=reason or (type(failure).__name__ if failure is not None else None),
            )

    def _abort_calls(self, deadline: float, *, interruptible: bool) -> None:
        self._call(
            self._transport().abort_transaction,
            "aborting",
            deadline,
            interruptible=interruptible,
            unconfirmed=self._abort_unconfirmed,
        )

    def _call(
        self,
        call: Callable[[float], object],
        doing: str,
        deadline: float,
        *,
        interruptible: bool = True,
        unconfirmed: Callable[[Any], TransactionError] | None = None,
    ) -> None:
        """``call(slice)`` again while it fails retriably, until ``deadline``. A fatal error
        is latched; a retriable one past the deadline is ``unconfirmed`` (latched if fatal),
        else aborted; any other error is mapped."""
        while True:
            error = self._attempt(call, deadline)
            if error is None:
                return
            if error.fatal() or not error.retriable():
                raise self._mapped(error, doing)
            if time.monotonic() < deadline and not (interruptible and self._closing):
                continue
            if unconfirmed is None:
                raise self._mapped(error, doing)
            raise self._latch(unconfirmed(error))

    def _attempt(self, call: Callable[[float], object], deadline: float) -> Any:
        """``call(slice)``: ``None``, or the ``KafkaError`` it raised."""
        try:
            with self._busy():
                call(_slice(deadline))
        except KafkaException as exc:
            return exc.args[0]
        return None

    def _mapped(self, error: Any, doing: str) -> TransactionError:
        """The typed error of a ``KafkaError``, latched if fatal."""
        mapped = to_transaction_error(error, transactional_id=self.transactional_id, doing=doing)
        return self._latch(mapped)

    def _latch(self, error: TransactionError) -> TransactionError:
        if isinstance(error, FatalTransactionError):
            with self._cond:
                if self.failure is None:
                    self.failure = error
                    self.phase = Phase.FAILED
                    self._cond.notify_all()
                else:
                    return error
            _log.error(
                "eventwire.producer_fenced"
                if isinstance(error, ProducerFencedError)
                else "eventwire.transactions_failed",
                transactional_id=self.transactional_id,
                code=error.code,
                reason=str(error),
            )
        return error

    def _unconfirmed(self, error: Any) -> TransactionError:
        exc = AmbiguousTransactionError(
            f"the commit of a transaction of {self.transactional_id!r} was not confirmed "
            f"within transaction_timeout ({self.timeout:g} s){_BEFORE[self._closing]}"
            f" ({error.name()}: {error.str()}): the transaction coordinator committed or "
            "aborted it, and this producer cannot tell which. It is unusable: close this "
            "publisher; consumers de-duplicate on ce_id if the unit runs again",
            transactional_id=self.transactional_id,
            code=error.name(),
        )
        exc.__cause__ = KafkaException(error)
        return exc

    def _abort_unconfirmed(self, error: Any) -> TransactionError:
        exc = FatalTransactionError(
            f"the abort of a transaction of {self.transactional_id!r} was not confirmed in "
            f"time ({error.name()}: {error.str()}): Kafka aborts it after transaction_timeout "
            f"({self.timeout:g} s), so nothing of it becomes visible, but this producer is "
            "unusable: close this publisher and build a new one",
            transactional_id=self.transactional_id,
            code=error.name(),
        )
        exc.__cause__ = KafkaException(error)
        return exc

    def _raise_if_failed(self) -> None:
        """Raise the latched fatal error again, as a new error of its class (lock held)."""
        failure = self.failure
        if failure is not None:
            again = type(failure)(
                str(failure), transactional_id=self.transactional_id, code=failure.code
            )
            raise again from failure


_BEFORE: Final = {False: "", True: " or before the publisher closed"}


def _slice(deadline: float) -> float:
    return max(_MIN_SLICE, min(SLICE, deadline - time.monotonic()))


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
