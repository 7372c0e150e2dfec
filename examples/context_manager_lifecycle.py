"""Context-manager lifecycle: open, publish, close — and what closing reports.

What it shows:

* ``with eventwire.Publisher(config) as publisher:`` and ``async with
  eventwire.AsyncPublisher(config) as publisher:`` start the producer (and its poll thread)
  and close it on the way out, also when the block raises;
* closing is bounded: ``close(timeout)`` / ``aclose(timeout)`` stop intake, wait up to
  ``timeout`` seconds for outstanding deliveries and return a ``CloseReport`` (delivered,
  failed, undelivered, timed_out);
* a closed publisher refuses new events with ``PublisherClosedError`` ("create a new one");
  closing twice is harmless;
* an application that cannot use ``with`` (a framework's startup/shutdown hooks) calls
  ``aclose()`` itself.

Run it: ``python -m examples.context_manager_lifecycle --bootstrap-servers HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import msgspec

import eventwire
from examples import _common


@eventwire.event(topic="sessions", key="user_id", type="app.user.signed_in", version=1)
class UserSignedIn(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    at: dt.datetime
    method: str


def sign_in(n: int, method: str) -> UserSignedIn:
    return UserSignedIn(
        user_id=f"user-{n}",
        at=dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=n),
        method=method,
    )


class App:
    """A service with explicit startup and shutdown hooks, as web frameworks have."""

    def __init__(self, config: eventwire.PublisherConfig) -> None:
        self.publisher = eventwire.AsyncPublisher(config)

    async def handle_sign_in(self, n: int) -> None:
        await self.publisher.publish(sign_in(n, "app-hook"))

    async def shutdown(self) -> eventwire.CloseReport:
        return await self.publisher.aclose(timeout=10.0)


def sync_block(config: eventwire.PublisherConfig) -> eventwire.CloseReport:
    with eventwire.Publisher(config) as publisher:
        for n in range(3):
            publisher.publish(sign_in(n, "sync-with"))
    report = publisher.close()  # already closed by the block: returns the same counts
    try:
        publisher.publish(sign_in(99, "too-late"))
    except eventwire.PublisherClosedError as exc:
        print(f"after the block: {exc}")
    return report


async def async_block(config: eventwire.PublisherConfig) -> None:
    try:
        async with eventwire.AsyncPublisher(config) as publisher:
            await publisher.publish(sign_in(10, "async-with"))
            raise LookupError("the handler failed after publishing")
    except LookupError:
        # The publisher was still closed: what it accepted was delivered first.
        print(f"the block raised; publisher closed: {publisher.closed}")


async def hooks(config: eventwire.PublisherConfig) -> eventwire.CloseReport:
    app = App(config)
    for n in range(20, 22):
        await app.handle_sign_in(n)
    return await app.shutdown()


def run(config: eventwire.PublisherConfig) -> list[eventwire.CloseReport]:
    """The three lifecycles; returns the close reports of the sync block and the hooks."""
    reports = [sync_block(config)]
    asyncio.run(async_block(config))
    reports.append(asyncio.run(hooks(config)))
    for report in reports:
        print(
            f"closed: delivered={report.delivered} failed={report.failed}"
            f" undelivered={report.undelivered} timed_out={report.timed_out}"
        )
    return reports


def main(argv: Sequence[str] | None = None) -> None:
    args = _common.parser(__doc__).parse_args(argv)
    run(_common.config(args))


if __name__ == "__main__":
    main()
