"""Exit codes of the ``eventwire`` command and the one error it raises to report a failure."""

from __future__ import annotations

from typing import Final

OK: Final = 0
#: The command failed; one line on stderr says why.
FAILURE: Final = 1
#: The command line was wrong (unknown option, bad value).
USAGE: Final = 2
#: ``produce``: some lines were rejected (invalid); every valid line was published.
REJECTED: Final = 3
#: ``produce``: some events could not be delivered (they are in the rejects file).
UNDELIVERED: Final = 4
#: Interrupted (Ctrl-C) before the work was done.
INTERRUPTED: Final = 130

EXIT_CODES_HELP: Final = (
    "exit codes: 0 success; 1 failure (one line on stderr says why); 2 usage error; 130 interrupted"
)


class CliError(Exception):
    """A failure the command reports as one line on stderr, exiting with ``code``."""

    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.code = code
