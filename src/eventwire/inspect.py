"""Introspection: what a declared event is, and how failures are classified."""

from eventwire._classify import CLASSIFICATION
from eventwire._events import EventSpec, declared_events, is_event, spec_of

__all__ = ["CLASSIFICATION", "EventSpec", "declared_events", "is_event", "spec_of"]
