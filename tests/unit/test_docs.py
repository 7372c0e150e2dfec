"""The documented classification table is the code's table."""

from __future__ import annotations

from pathlib import Path

from eventwire._classify import CLASSIFICATION

DOC = Path(__file__).parents[2] / "docs" / "classification.md"


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
    ]
    return "\n".join(lines) + "\n"


def test_classification_doc_matches_the_code() -> None:
    assert DOC.read_text() == render(), "regenerate: python -m tests.unit.test_docs"


if __name__ == "__main__":
    DOC.write_text(render())
