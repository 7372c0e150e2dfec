"""Test kit for eventwire users: a real local broker (and, later, an in-memory fake).

``LocalBroker`` needs the ``testing`` extra: ``pip install 'eventwire[testing]'``. The pytest
plugin (registered automatically) provides the ``eventwire_broker`` fixture.
"""

from eventwire.testing._broker import BrokerStartError, ConsumedRecord, LocalBroker

__all__ = ["BrokerStartError", "ConsumedRecord", "LocalBroker"]
