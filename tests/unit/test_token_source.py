"""The OAUTHBEARER token source (librdkafka's ``oauth_cb``): sync and async providers, what
it refuses, and what it logs (no token, no secret)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from eventwire._core.tokens import TokenSource
from eventwire.security import OAuthToken, Secret
from eventwire.testing import capture_logs

TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJvcmRlcnMifQ."


def _scrub(text: str) -> str:
    return text.replace("hunter2", "***")


def test_a_sync_provider_hands_librdkafka_its_token() -> None:
    expires = time.time() + 60
    source = TokenSource(
        lambda: OAuthToken(
            value=Secret(TOKEN), expires_at=expires, principal="orders", extensions={"a": "b"}
        ),
        _scrub,
    )
    with capture_logs() as logs:
        assert source("") == (TOKEN, expires, "orders", {"a": "b"})
    assert source.refreshes == 1
    [line] = logs
    assert line["event"] == "eventwire.token_refreshed"
    assert TOKEN not in repr(line)


def test_an_async_provider_runs_on_a_loop_of_its_own_even_from_a_busy_loop() -> None:
    seen: list[str] = []

    async def provider() -> OAuthToken:
        seen.append(threading.current_thread().name)
        await asyncio.sleep(0.01)
        return OAuthToken(value=Secret(TOKEN), expires_at=time.time() + 60)

    source = TokenSource(provider, _scrub)

    async def caller() -> tuple[str, float, str, dict[str, str]]:
        # librdkafka's thread asks while this loop's thread waits (building the publisher).
        return source("")

    try:
        assert asyncio.run(caller())[0] == TOKEN
        assert source("")[0] == TOKEN
    finally:
        source.close()
    assert seen == ["eventwire-token-provider"] * 2
    assert not any(t.name == "eventwire-token-provider" for t in threading.enumerate())


@pytest.mark.parametrize(
    ("provider", "error"),
    [
        (lambda: TOKEN, "TypeError: the token provider returned str, not an "),
        (
            lambda: OAuthToken(value=Secret(TOKEN), expires_at=time.time() - 30),
            "ValueError: the token provider returned a token that expired 30 s ago",
        ),
        (lambda: 1 / 0, "ZeroDivisionError: division by zero"),
    ],
)
def test_a_failing_provider_is_logged_and_reported_to_librdkafka(
    provider: object, error: str
) -> None:
    source = TokenSource(provider, _scrub)  # type: ignore[arg-type]
    with capture_logs() as logs, pytest.raises(Exception):  # noqa: B017, PT011 - any failure
        source("")
    assert source.failures == 1
    assert source.last_failure is not None
    assert source.last_failure.startswith(error)
    [line] = logs
    assert line["event"] == "eventwire.token_failed"
    assert TOKEN not in repr(line)


def test_a_provider_error_is_scrubbed() -> None:
    def provider() -> OAuthToken:
        raise RuntimeError("login as svc:hunter2 refused")

    source = TokenSource(provider, _scrub)
    with capture_logs() as logs, pytest.raises(RuntimeError):
        source("")
    assert source.last_failure == "RuntimeError: login as svc:*** refused"
    assert "hunter2" not in repr(logs)


def test_a_closed_source_runs_no_async_provider() -> None:
    async def provider() -> OAuthToken:
        return OAuthToken(value=Secret(TOKEN), expires_at=time.time() + 60)

    source = TokenSource(provider, _scrub)
    source.close()
    with pytest.raises(RuntimeError, match="the publisher is closed"), capture_logs():
        source("")
