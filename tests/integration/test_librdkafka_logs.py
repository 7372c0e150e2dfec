"""librdkafka's own log lines go through eventwire's logger, not to raw stderr."""

from __future__ import annotations

import pytest

import eventwire
from eventwire.testing import capture_logs
from tests.events import order


async def test_librdkafka_log_lines_are_eventwire_events(capfd: pytest.CaptureFixture[str]) -> None:
    config = eventwire.PublisherConfig(
        bootstrap_servers="127.0.0.1:9",  # discard port: nothing listens, connect is refused
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="app",
        sasl_password="hunter2-not-logged",  # noqa: S106 - a fake secret to look for
        delivery_timeout=1.0,
        retry=eventwire.RetryPolicy.never(),
        breaker=None,
    )
    with capture_logs() as logs:
        async with eventwire.AsyncPublisher(config) as publisher:
            with pytest.raises(eventwire.PublishError):
                await publisher.publish(order(1))
    lines = [log for log in logs if log["event"] == "eventwire.librdkafka"]
    assert lines, "librdkafka reported the refused connection"
    assert {"FAIL"} <= {line["facility"] for line in lines}
    assert all("127.0.0.1:9" in line["text"] for line in lines if line["facility"] == "FAIL")
    assert {line["logger"] for line in lines} == {"eventwire.librdkafka"}
    assert "hunter2" not in repr(logs)
    assert "|FAIL|" not in capfd.readouterr().err
