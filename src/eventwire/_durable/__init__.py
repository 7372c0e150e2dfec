"""Durability: events kept in a store until Kafka acknowledged them, and the relay that
produces them (the durable spool today)."""
