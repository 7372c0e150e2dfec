"""librdkafka's ``oauth_cb`` over an `OAuthBearer` token provider.

librdkafka asks for a token from a thread of its own (confluent-kafka runs the callback on
librdkafka's background thread), first while the producer is being built, which waits for
it: an asynchronous provider can therefore not run on the caller's event loop (that loop may
be the very thread waiting). It runs on an event loop of its own, in a thread this source
starts on first use and stops when the publisher stops. A provider that fails is logged (its
error scrubbed) and reported to librdkafka, which asks again 10 s later.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from eventwire._logs import log as _log
from eventwire._security import OAuthToken, TokenProvider

#: Seconds a provider may take (librdkafka waits as long for the first token).
TOKEN_TIMEOUT: Final = 10.0


class TokenSource:
    """The ``oauth_cb`` of a publisher's producers (one source for every replacement)."""

    def __init__(self, provider: TokenProvider, scrub: Callable[[str], str]) -> None:
        self._provider = provider
        self._scrub = scrub
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Tokens handed to librdkafka, and the provider's failures.
        self.refreshes = 0
        self.failures = 0
        #: The last failure (scrubbed), for the message of a publisher that could not start.
        self.last_failure: str | None = None

    def __call__(self, oauthbearer_config: str) -> tuple[str, float, str, dict[str, str]]:
        try:
            token = self._token()
        except Exception as exc:
            self.failures += 1
            self.last_failure = self._scrub(f"{type(exc).__name__}: {exc}")
            _log.warning("eventwire.token_failed", error=self.last_failure, failures=self.failures)
            raise
        self.refreshes += 1
        _log.info(
            "eventwire.token_refreshed",
            expires_in_s=round(token.expires_at - time.time(), 1),
            principal=token.principal,
            refreshes=self.refreshes,
        )
        return token.value.reveal(), token.expires_at, token.principal, dict(token.extensions)

    def _token(self) -> OAuthToken:
        result: Any = self._provider()
        if inspect.isawaitable(result):
            result = self._run(result)
        if not isinstance(result, OAuthToken):
            raise TypeError(
                f"the token provider returned {type(result).__name__}, not an "
                "eventwire.security.OAuthToken"
            )
        if result.expires_at <= time.time():
            raise ValueError(
                f"the token provider returned a token that expired "
                f"{time.time() - result.expires_at:.0f} s ago"
            )
        return result

    def _run(self, awaitable: Any) -> Any:
        try:
            loop = self._running_loop()
        except RuntimeError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never to run: not left for the collector to warn about
            raise

        async def wrapped() -> Any:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(wrapped(), loop)
        try:
            return future.result(TOKEN_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"the token provider gave no token within {TOKEN_TIMEOUT:g} s"
            ) from None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("the publisher is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="eventwire-token-provider", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Stop the provider's event loop (if one was started); idempotent."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5.0)
        if not thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.close()
