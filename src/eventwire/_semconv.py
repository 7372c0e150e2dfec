"""OpenTelemetry names eventwire emits: semantic-convention attributes and metrics, pinned to
one semantic-conventions version, plus eventwire's own instrument names.

Pinned to **semantic conventions 1.44.0** (``SCHEMA_URL``): the messaging conventions there
(status *Development*) name Kafka's offset ``messaging.kafka.offset`` and the partition
``messaging.destination.partition.id`` (a string), and count sent messages with
``messaging.client.sent.messages``. Moving to another version is a deliberate change of this
module, never a drive-by edit elsewhere. Only this module spells these names.
"""

from __future__ import annotations

from typing import Final

SEMCONV_VERSION: Final = "1.44.0"
SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
INSTRUMENTATION_NAME: Final = "eventwire"
#: The instrumentation scope's version: the library's.
INSTRUMENTATION_VERSION: Final = "0.1.0"

# -- span and metric attributes (semantic conventions) ---------------------------------------
MESSAGING_SYSTEM: Final = "messaging.system"
MESSAGING_SYSTEM_KAFKA: Final = "kafka"
MESSAGING_OPERATION_NAME: Final = "messaging.operation.name"
MESSAGING_OPERATION_TYPE: Final = "messaging.operation.type"
OPERATION_SEND: Final = "send"
MESSAGING_DESTINATION_NAME: Final = "messaging.destination.name"
MESSAGING_DESTINATION_PARTITION_ID: Final = "messaging.destination.partition.id"
MESSAGING_KAFKA_MESSAGE_KEY: Final = "messaging.kafka.message.key"
MESSAGING_KAFKA_OFFSET: Final = "messaging.kafka.offset"
MESSAGING_MESSAGE_ID: Final = "messaging.message.id"
MESSAGING_BATCH_MESSAGE_COUNT: Final = "messaging.batch.message_count"
MESSAGING_CLIENT_ID: Final = "messaging.client.id"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

# -- metrics (semantic conventions) ----------------------------------------------------------
MESSAGING_CLIENT_OPERATION_DURATION: Final = "messaging.client.operation.duration"
MESSAGING_CLIENT_SENT_MESSAGES: Final = "messaging.client.sent.messages"

# -- eventwire's own span attributes and events ----------------------------------------------
EVENTWIRE_EVENT_TYPE: Final = "eventwire.event.type"
EVENTWIRE_ERROR_CLASS: Final = "eventwire.error.class"
EVENTWIRE_ATTEMPTS: Final = "eventwire.attempts"
EVENTWIRE_DEAD_LETTER_TOPIC: Final = "eventwire.dead_letter.topic"
EVENTWIRE_RETRY_DELAY: Final = "eventwire.retry.delay_s"
#: On a batch call's span: how many of its messages failed.
EVENTWIRE_BATCH_FAILED_COUNT: Final = "eventwire.batch.failed_count"
EVENT_RETRY_SCHEDULED: Final = "eventwire.retry_scheduled"
EVENT_SPOOLED_FOR_RETRY: Final = "eventwire.spooled_for_retry"
EVENT_DEAD_LETTERED: Final = "eventwire.dead_lettered"
EVENT_CIRCUIT_OPEN: Final = "eventwire.circuit_open"

# -- eventwire's own metrics -------------------------------------------------------------------
QUEUE_MESSAGES: Final = "eventwire.producer.queue.messages"
OUTSTANDING: Final = "eventwire.publisher.outstanding"
RETRIES: Final = "eventwire.publisher.retries"
DEAD_LETTERED: Final = "eventwire.publisher.dead_lettered"
RECREATIONS: Final = "eventwire.producer.recreations"
BREAKER_STATE: Final = "eventwire.breaker.state"
SPOOL_BACKLOG: Final = "eventwire.spool.backlog"
SPOOL_OLDEST_AGE: Final = "eventwire.spool.oldest_age"
KAFKA_BROKER_RTT: Final = "eventwire.kafka.broker.rtt"
KAFKA_QUEUE_LATENCY: Final = "eventwire.kafka.queue.latency"
KAFKA_TX_BYTES: Final = "eventwire.kafka.tx_bytes"
KAFKA_BROKER_THROTTLE_TIME: Final = "eventwire.kafka.broker.throttle_time"
#: Attribute naming a broker (librdkafka's ``host:port/id``) on the librdkafka statistics.
KAFKA_BROKER: Final = "eventwire.kafka.broker"

#: ``eventwire.breaker.state`` values.
BREAKER_STATE_VALUES: Final = {"disabled": -1, "closed": 0, "half_open": 1, "open": 2}
OUTBOX_BACKLOG: Final = "eventwire.outbox.backlog"
OUTBOX_OLDEST_AGE: Final = "eventwire.outbox.oldest_age"
OUTBOX_LEASE_HELD: Final = "eventwire.outbox.lease_held"
OUTBOX_PUBLISHED: Final = "eventwire.outbox.published"
OUTBOX_LATENCY: Final = "eventwire.outbox.latency"
