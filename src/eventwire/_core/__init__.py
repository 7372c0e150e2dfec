"""The producer core: one place for each concern between accepting an event and settling
its outcome (see docs/architecture.md)."""
