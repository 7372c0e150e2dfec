"""Kafka transactions: the transactional producer's state (``producer``) and the ledger of
one transaction (``ledger``). The flows drive them (``_flows.transacting``)."""

from eventwire._transactions.ledger import Drain, Ledger, TransactionScope, TransactionSink
from eventwire._transactions.producer import SLICE, Phase, TransactionalProducer

__all__ = [
    "SLICE",
    "Drain",
    "Ledger",
    "Phase",
    "TransactionScope",
    "TransactionSink",
    "TransactionalProducer",
]
