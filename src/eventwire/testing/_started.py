"""What the kit's services share as context managers: started on entry, stopped on exit."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStop:
    """A service used as ``with Service(...) as service:``; ``start`` returns the service."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
