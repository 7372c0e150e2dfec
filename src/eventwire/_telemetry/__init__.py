"""OpenTelemetry for publishers: PRODUCER spans from ``publish()`` to the delivery report,
trace-context injection into the Kafka headers, and metrics.

Only ``opentelemetry-api`` is required; the SDK is the application's choice. The providers
are the global ones unless ``Telemetry`` names others (the seam tests use). Whether anything
records is decided **once**, when the publisher is built: with no SDK configured (the API's
proxy/no-op providers) no ``Instrumentation`` exists and the per-event path pays a single
``is None`` test. Configure the SDK before building publishers.

Spans (semantic conventions 1.44.0, named ``send {topic}``, kind PRODUCER, parent the caller's
current context):

* a lone ``publish``/``accept`` is a send of one message: its span starts when the publisher
  takes the event (with a spool: when the caller hands it to the spool, in the caller's
  context, not on the writer thread) and ends on the loop thread when its outcome is settled:
  partition and offset on success; status ERROR with ``error.type`` (the librdkafka code,
  else the error class) on failure;
* a ``publish_many``/``accept_many`` call is a batch send (``Telemetry.spans="batch"``, the
  default): one span per call and topic with ``messaging.batch.message_count``, started at
  the call's first event of that topic and ended when the call returns (every outcome
  settled); status ERROR if any of its messages failed (``error.type`` of the first,
  ``eventwire.batch.failed_count``). Every message carries the span's context as its
  creation context (the conventions: without a "create" span per message, the "send" span's
  context is injected), so a consumer of any message continues the trace under that span.
  ``spans="message"`` gives every message of a call a span of its own instead, at about the
  cost of an SDK span per message.

Retries, parking in the spool and dead-lettering are span events (on a batch span, with the
message's ``messaging.message.id``); a lone event the breaker refuses is an ERROR span of its
own. No payload and no secret is ever an attribute.

Sampling: when the caller's span is valid but not sampled and the tracer provider's sampler
is parent-based with unsampled parents dropping their children (the SDK's default), no span
is started per message: each message carries the caller's (unsampled) context, which is what
the sampler's decision would have produced, for the price of one injection per call.

Metrics: ``messaging.client.operation.duration`` (s) and ``messaging.client.sent.messages``
(with ``error.type`` on failures), one point and one count per operation: per lone
``publish``/``accept`` (from produce to outcome), and per ``publish_many``/``accept_many``
call, topic and outcome (the call's duration; the count of its messages with that outcome);
observable instruments for queue depth, outstanding events, retries, dead-letters, producer
recreations, breaker state, spool backlog/age, and librdkafka statistics (broker RTT,
internal queue latency, bytes sent, time throttled by quotas) when ``statistics_interval`` > 0.
"""

from eventwire._telemetry.calls import CallTelemetry
from eventwire._telemetry.carrier import Traced
from eventwire._telemetry.instrumentation import Instrumentation, instrumentation_for

__all__ = ["CallTelemetry", "Instrumentation", "Traced", "instrumentation_for"]
