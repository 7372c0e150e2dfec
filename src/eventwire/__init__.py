"""eventwire: typed domain events published to Apache Kafka.

Validated before they are produced, idempotent and ordered per key, every failure classified
and visible. See the documentation site (docs/, `make docs`) for the guides.

Public submodules: ``eventwire.codec`` (the encoder publishers use: ``EventCodec``,
``EncodedEvent``), ``eventwire.inspect`` (what a declared event is: ``spec_of``,
``is_event``, ``EventSpec``; the failure ``CLASSIFICATION`` table), ``eventwire.transport``
(the seam under the publishers), ``eventwire.security`` (``PublisherConfig(security=...)``:
TLS, SASL and OAUTHBEARER settings), ``eventwire.transactions`` (Kafka transactions: the
transaction scopes and their errors) and ``eventwire.testing``.
"""

# The public submodules come with the package: `import eventwire` is enough to use them.
from eventwire import codec as codec
from eventwire import inspect as inspect
from eventwire import security as security
from eventwire import transactions as transactions
from eventwire import transport as transport
from eventwire._async_publisher import AsyncPublisher
from eventwire._config import PublisherConfig
from eventwire._errors import (
    AmbiguousPublishError,
    AuthenticationError,
    AuthorizationError,
    CircuitOpenError,
    ConfigError,
    DeadLetteredError,
    EventDefinitionError,
    EventDefinitionWarning,
    EventValidationError,
    EventwireError,
    FatalPublishError,
    PermanentPublishError,
    PublisherClosedError,
    PublishError,
    QueueFullError,
    RetriablePublishError,
    SpoolError,
    SpoolFullError,
)
from eventwire._events import event
from eventwire._health import HealthStatus
from eventwire._options import BreakerPolicy, DeadLetterPolicy, RetryPolicy, Telemetry
from eventwire._outcome import (
    Accepted,
    CloseReport,
    DeliveryReceipt,
    PublishOutcome,
    SyncAccepted,
)
from eventwire._protocol import AsyncPublisherProtocol, PublisherProtocol
from eventwire._shutdown import GracefulShutdown
from eventwire._sync_publisher import Publisher
from eventwire._wire_types import UnboundedInt

__version__ = "0.1.0"

__all__ = [
    "Accepted",
    "AmbiguousPublishError",
    "AsyncPublisher",
    "AsyncPublisherProtocol",
    "AuthenticationError",
    "AuthorizationError",
    "BreakerPolicy",
    "CircuitOpenError",
    "CloseReport",
    "ConfigError",
    "DeadLetterPolicy",
    "DeadLetteredError",
    "DeliveryReceipt",
    "EventDefinitionError",
    "EventDefinitionWarning",
    "EventValidationError",
    "EventwireError",
    "FatalPublishError",
    "GracefulShutdown",
    "HealthStatus",
    "PermanentPublishError",
    "PublishError",
    "PublishOutcome",
    "Publisher",
    "PublisherClosedError",
    "PublisherConfig",
    "PublisherProtocol",
    "QueueFullError",
    "RetriablePublishError",
    "RetryPolicy",
    "SpoolError",
    "SpoolFullError",
    "SyncAccepted",
    "Telemetry",
    "UnboundedInt",
    "event",
]
