"""The documented classification table is the code's table, and its column of codes proved on
Apache Kafka is the set ``tests/integration/test_classification_on_kafka.py`` provokes."""

from __future__ import annotations

import re
from pathlib import Path

from eventwire._classify import CLASSIFICATION
from eventwire.testing import KAFKA_VERSION
from tests.integration.test_classification_on_kafka import PROVED_ON_KAFKA

DOC = Path(__file__).parents[2] / "docs" / "classification.md"
UNIT_ONLY = "unit-tested only"


def render() -> str:
    lines = [
        "# Failure classification",
        "",
        "Generated from `eventwire._classify.CLASSIFICATION` (a test keeps it in sync).",
        "The `fatal()` flag of a `KafkaError` wins over the table; a code not listed is",
        "**permanent** (surfaced, never retried forever). `KafkaError.retriable()` is not used:",
        "librdkafka reports it `False` on delivery reports even for transient errors.",
        "A `_MSG_TIMED_OUT` of a message that never had a partition (no metadata for its topic,",
        "e.g. a missing topic with auto-creation off) is **retriable**: it was never sent.",
        "The class describes the event, not only its last attempt: once an attempt failed",
        "ambiguously, a later retriable failure is reported as **ambiguous** too",
        '("an earlier attempt may have been written: ...").',
        "",
        "| class | exception | what eventwire does | librdkafka codes |",
        "|---|---|---|---|",
    ]
    what = {
        "retriable": (
            "RetriablePublishError",
            "re-sent with backoff (RetryPolicy), order per key kept",
        ),
        "ambiguous": (
            "AmbiguousPublishError",
            "may have been written: re-sent if `retry_ambiguous` (same `ce_id`)",
        ),
        "permanent": ("PermanentPublishError", "dead-lettered if a DeadLetterPolicy is set"),
        "fatal": (
            "FatalPublishError",
            "producer replaced; its unacknowledged events re-sent in order as ambiguous",
        ),
    }
    for failure, (exc, action) in what.items():
        codes = ", ".join(f"`{n}`" for n, f in sorted(CLASSIFICATION.items()) if f == failure)
        lines.append(f"| {failure} | `{exc}` | {action} | {codes} |")
    lines += [
        "",
        "Permanent failures about this client's access are raised as a subclass:",
        "`AuthorizationError` (`TOPIC_AUTHORIZATION_FAILED`, `CLUSTER_AUTHORIZATION_FAILED`,",
        "`TRANSACTIONAL_ID_AUTHORIZATION_FAILED`; the message names the ACL to grant) and",
        "`AuthenticationError` (`SASL_AUTHENTICATION_FAILED`, `_AUTHENTICATION`, `_SSL`). A login",
        "or TLS handshake the cluster refuses comes as a client error, not a delivery report:",
        "see [When the cluster refuses](security.md#when-the-cluster-refuses).",
        "",
        "## Every code",
        "",
        f"A code marked *proved* was provoked on Apache Kafka {KAFKA_VERSION} in the situation",
        "named, and the class eventwire gave it checked against what that situation means",
        "(`tests/integration/test_classification_on_kafka.py`); every row is also unit-tested",
        "(`tests/unit/test_classify.py`). The others are the codes of situations this",
        "machine does not create, or that librdkafka keeps to itself (it retries them, or",
        "reports them only through `error_cb`): unit-tested only. With librdkafka's default",
        "`retries`, `NOT_ENOUGH_REPLICAS` and `REQUEST_TIMED_OUT` are retried inside",
        "librdkafka until `delivery_timeout` and then reported as `_MSG_TIMED_OUT`; the test",
        "sets `retries` to 1 so the broker's code reaches eventwire. With `retries` lowered,",
        "the code eventwire sees is the last attempt's, and an attempt librdkafka retried",
        "before it may have been written: a write answered `NOT_ENOUGH_REPLICAS_AFTER_APPEND`,",
        "retried once and answered `NOT_ENOUGH_REPLICAS`, is reported as never written, and",
        "its re-send duplicates it once the replicas catch up (seen on Apache Kafka). Keep",
        "librdkafka's default `retries`: eventwire bounds them with `delivery_timeout`.",
        "",
        "| librdkafka code | class | proved on Apache Kafka |",
        "|---|---|---|",
    ]
    for name, failure in sorted(CLASSIFICATION.items()):
        situation = PROVED_ON_KAFKA.get(name)
        proved = UNIT_ONLY if situation is None else f"proved: {situation}"
        lines.append(f"| `{name}` | {failure} | {proved} |")
    return "\n".join(lines) + "\n"


def test_classification_doc_matches_the_code() -> None:
    assert DOC.read_text() == render(), "regenerate: python -m tests.unit.test_docs"


def test_the_proved_column_names_exactly_the_codes_provoked_on_kafka() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (.+) \|$", DOC.read_text(), flags=re.MULTILINE)
    assert {name for name, _, _ in rows} == set(CLASSIFICATION)
    proved = {name for name, _, column in rows if column.startswith("proved: ")}
    assert proved == set(PROVED_ON_KAFKA)
    assert {name for name, _, column in rows if column == UNIT_ONLY} == (
        set(CLASSIFICATION) - proved
    )


if __name__ == "__main__":
    DOC.write_text(render())
