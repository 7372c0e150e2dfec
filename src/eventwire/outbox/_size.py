"""The size check librdkafka makes in ``produce()``, made at ``add`` instead.

``publish()`` learns at once that a record is larger than the producer's ``message.max.bytes``
(librdkafka refuses it in ``produce()``). A row the relay could never produce would only be
found there, after the caller's transaction committed: ``add`` makes the same check, with the
same arithmetic, so such an event is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from eventwire._codec import EncodedEvent, header_items
from eventwire._config import PublisherConfig
from eventwire._errors import PermanentPublishError
from eventwire._messages import too_large_error, too_large_for_queue_error

#: librdkafka's bound on a v2 record's framing (``RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD``): with
#: ``message.max.bytes`` = 1,000, the largest value it takes without key or headers is 964.
RECORD_OVERHEAD: Final = 36
_DEFAULT_MESSAGE_BYTES: Final = 1_000_000
_DEFAULT_QUEUE_KBYTES: Final = 1_048_576


def size_limits(config: PublisherConfig) -> tuple[int, int]:
    """``(message.max.bytes, the local queue in bytes)`` of a publisher built with ``config``."""
    settings: Mapping[str, object] = config._to_librdkafka()
    kbytes = settings.get("queue.buffering.max.kbytes", _DEFAULT_QUEUE_KBYTES)
    return int(str(settings.get("message.max.bytes", _DEFAULT_MESSAGE_BYTES))), int(
        str(kbytes)
    ) * 1024


def _varint_size(value: int) -> int:
    """Bytes of ``value`` as a zig-zag varint (the lengths in a record's headers)."""
    encoded = (value << 1) ^ (value >> 63)
    size = 1
    while encoded >= 0x80:
        encoded >>= 7
        size += 1
    return size


def wire_size(encoded: EncodedEvent) -> int:
    """The size librdkafka compares with ``message.max.bytes`` (before compression)."""
    size = RECORD_OVERHEAD + len(encoded.value) + (len(encoded.key or b""))
    for name, value in header_items(encoded.headers):
        raw = value.encode() if isinstance(value, str) else value
        name_size = len(name.encode())
        size += _varint_size(name_size) + name_size
        size += _varint_size(-1) if raw is None else _varint_size(len(raw)) + len(raw)
    return size


def too_large(encoded: EncodedEvent, limits: tuple[int, int]) -> PermanentPublishError | None:
    """The error ``publish()`` gives ``encoded`` for its size, or ``None`` if it fits."""
    max_message_bytes, max_queue_bytes = limits
    if wire_size(encoded) > max_message_bytes:
        return too_large_error(encoded, max_message_bytes, "MSG_SIZE_TOO_LARGE", None)
    if len(encoded.value) > max_queue_bytes:
        return too_large_for_queue_error(encoded, max_queue_bytes, None)
    return None
