"""Test kit for eventwire users: a real local broker, a fault-injecting TCP proxy in front of
it (latency, pauses, cuts, black holes, connection resets), and, later, an in-memory fake.

``LocalBroker`` needs the ``testing`` extra: ``pip install 'eventwire[testing]'``. The pytest
plugin (registered automatically) provides the ``eventwire_broker`` fixture.
"""

from eventwire.testing._broker import BrokerStartError, ConsumedRecord, LocalBroker
from eventwire.testing._proxy import FaultProxy, ProxiedBroker

__all__ = ["BrokerStartError", "ConsumedRecord", "FaultProxy", "LocalBroker", "ProxiedBroker"]
