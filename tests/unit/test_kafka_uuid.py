"""The Kafka ids `KafkaCluster` formats its storage with."""

from __future__ import annotations

import base64

from eventwire.testing._kafka_node import new_uuid


def test_no_cluster_id_starts_with_a_dash() -> None:
    # One random id in 64 did: the storage tool took "--cluster-id -xyz..." for an option and
    # the cluster failed to start (seen once in a session's kafka_cluster fixture).
    ids = [new_uuid() for _ in range(5_000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
