"""eventwire: typed domain events published to Apache Kafka.

Validated before they are produced, idempotent and ordered per key, every failure classified
and visible. See the documentation site (docs/, `make docs`) for the guides.
"""

from eventwire._breaker import BreakerPolicy
from eventwire._classify import CLASSIFICATION
from eventwire._codec import EncodedEvent, EventCodec
from eventwire._config import PublisherConfig
from eventwire._dead_letter import DeadLetterPolicy
from eventwire._errors import (
    AmbiguousPublishError,
    CircuitOpenError,
    ConfigError,
    DeadLetteredError,
    EventDefinitionError,
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
from eventwire._events import EventSpec, UnboundedInt, event, is_event, spec_of
from eventwire._health import HealthStatus
from eventwire._outcome import (
    Accepted,
    CloseReport,
    DeliveryReceipt,
    PublishOutcome,
    SyncAccepted,
)
from eventwire._protocol import AsyncPublisherProtocol, PublisherProtocol
from eventwire._publisher import AsyncPublisher, Publisher
from eventwire._retry import RetryPolicy
from eventwire._shutdown import GracefulShutdown
from eventwire._telemetry import Telemetry

__version__ = "0.1.0"

__all__ = [
    "CLASSIFICATION",
    "Accepted",
    "AmbiguousPublishError",
    "AsyncPublisher",
    "AsyncPublisherProtocol",
    "BreakerPolicy",
    "CircuitOpenError",
    "CloseReport",
    "ConfigError",
    "DeadLetterPolicy",
    "DeadLetteredError",
    "DeliveryReceipt",
    "EncodedEvent",
    "EventCodec",
    "EventDefinitionError",
    "EventSpec",
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
    "is_event",
    "spec_of",
]
