"""Kafka transactions: the transaction scopes and their errors.

``publisher.transaction()`` of a publisher built with ``PublisherConfig(transactional_id=...)``
returns an ``AsyncTransaction`` (``AsyncPublisher``) or a ``Transaction`` (``Publisher``).
What a transaction does and does not do is in docs/transactions.md. Every error here is an
``eventwire.EventwireError``:

* ``TransactionError`` — a transaction did not commit; the root of the next four;
* ``TransactionAbortedError`` — aborted (or could not begin): nothing of it is visible; the
  publisher goes on, run the transaction again;
* ``FatalTransactionError`` — the producer is unusable: close the publisher, build another;
* ``ProducerFencedError`` — a newer producer with the same ``transactional_id`` took over;
* ``AmbiguousTransactionError`` — the commit was not confirmed in time: it may be visible;
* ``TransactionStateError`` — a call the transactional state does not allow (nothing sent).
"""

from eventwire._async_publisher import AsyncTransaction
from eventwire._errors import (
    AmbiguousTransactionError,
    FatalTransactionError,
    ProducerFencedError,
    TransactionAbortedError,
    TransactionError,
    TransactionStateError,
)
from eventwire._sync_publisher import Transaction

__all__ = [
    "AmbiguousTransactionError",
    "AsyncTransaction",
    "FatalTransactionError",
    "ProducerFencedError",
    "Transaction",
    "TransactionAbortedError",
    "TransactionError",
    "TransactionStateError",
]
