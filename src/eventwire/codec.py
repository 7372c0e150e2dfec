"""The event codec publishers use: validation, encoding, key and CloudEvents headers.

For tools that encode events themselves (the CLI's ``produce``, an outbox writer): the bytes,
key and headers are exactly those ``publish()`` sends.
"""

from eventwire._codec import EncodedEvent, EventCodec, Headers, UserHeaders, key_bytes

__all__ = ["EncodedEvent", "EventCodec", "Headers", "UserHeaders", "key_bytes"]
