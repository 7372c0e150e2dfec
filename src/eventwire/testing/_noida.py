"""NoidaBroker: a local noida-db Kafka broker that keeps its data across a graceful restart.

Tansu (`LocalBroker`) is memory-only, so it cannot show what a producer does when a broker
restarts with its state. noida-db (PyPI ``noida-db``, in the ``dev`` extra) writes its data
to a directory and keeps it across SIGTERM; it cannot advertise another address than the one
it listens on, and it cannot read back a partition larger than ~100 MB from offset 0.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Self

from eventwire.testing._broker import (
    BrokerStartError,
    LocalBroker,
    _PortInUseError,
    _stop_leftovers,
)

#: Overrides the noida-db executable (a path); checked before the one in the noida-db wheel.
BINARY_ENV_VAR = "EVENTWIRE_NOIDA_BIN"

# Data directories of brokers still alive at interpreter exit; removed then.
_DATA_DIRS: set[Path] = set()


@atexit.register
def _remove_leftovers() -> None:
    # atexit runs this before _broker's hook (registered earlier): stop the processes first,
    # so no broker writes into a directory being removed.
    _stop_leftovers()
    for directory in list(_DATA_DIRS):
        shutil.rmtree(directory, ignore_errors=True)
        _DATA_DIRS.discard(directory)


def _resolve_noida(binary: str | os.PathLike[str] | None) -> Path:
    explicit = os.fspath(binary) if binary is not None else os.environ.get(BINARY_ENV_VAR)
    if explicit:
        path = Path(explicit)
    else:
        spec = importlib.util.find_spec("noida_db")
        if spec is None or spec.origin is None:
            raise BrokerStartError("NoidaBroker needs noida-db: pip install 'noida-db==0.2.3'")
        path = Path(spec.origin).with_name("noida-db")
    if not path.is_file():
        raise BrokerStartError(f"no noida-db executable at {path}")
    if not os.access(path, os.X_OK):
        with contextlib.suppress(OSError):  # wheels installed by some tools lose the bit
            path.chmod(path.stat().st_mode | 0o111)
    return path


class NoidaBroker(LocalBroker):
    """One noida-db process serving Kafka on a loopback port, with a throw-away data directory.

    Unlike `LocalBroker` (Tansu, memory only), `stop` and `restart` keep every topic, record
    and idempotent producer id: `restart` is a real broker restart with state. The data
    directory is removed on ``__exit__``, by `remove_data`, or at interpreter exit. Topic and
    read-back methods are `LocalBroker`'s (keep a partition below ~100 MB: noida-db cannot read
    a larger one back from offset 0).

    Args:
        partitions: partition count of topics created through this object when none is given.
        host: IPv4 loopback address to listen on (it is also the address advertised).
        port: fixed port; default a free one, kept by `restart`.
        binary: the noida-db executable; default ``$EVENTWIRE_NOIDA_BIN``, else the one in the
            ``noida-db`` wheel.
        startup_timeout: seconds `start` and `restart` wait for the broker to answer.

    Raises:
        ValueError: ``partitions`` < 1 or ``startup_timeout`` <= 0.
    """

    # Plain defaults instead of an __init__ of our own: LocalBroker's arguments apply as they are.
    _data_dir: Path | None = None
    #: noida-db picks its own cluster id; learnt at the first start, checked on restarts.
    _noida_cluster_id: str | None = None

    @property
    def data_dir(self) -> Path | None:
        """The broker's data directory, ``None`` before the first start or after removal."""
        return self._data_dir

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker with SIGTERM (SIGKILL after ``timeout``); the data is kept.

        Idempotent. noida-db saves its data and exits within milliseconds, clients connected.
        """
        self._discard_process(timeout)

    def restart(self) -> Self:
        """Stop the broker gracefully and start it again on the same port with the same data.

        Returns:
            ``self``.

        Raises:
            BrokerStartError: it was never started, or the port was taken in between.
        """
        return super().restart()

    def kill(self) -> None:
        """SIGKILL the broker process (by its PID, through its handle); the data dir stays."""
        process = self._process
        if process is not None and process.alive:
            process.popen.send_signal(signal.SIGKILL)
        self._discard_process(timeout=5.0)

    def remove_data(self) -> None:
        """Stop the broker and delete its data directory; the next start begins empty."""
        self.stop()
        directory, self._data_dir = self._data_dir, None
        self._noida_cluster_id = None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
            _DATA_DIRS.discard(directory)

    def __exit__(self, *exc_info: object) -> None:
        self.remove_data()

    # -- LocalBroker hooks -----------------------------------------------------------------

    def _executable(self) -> Path:
        return _resolve_noida(self._binary)

    def _command(self, binary: Path, port: int) -> list[str]:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="eventwire-noida-"))
            _DATA_DIRS.add(self._data_dir)
        return [
            os.fspath(binary),
            "start",
            "--data-dir",
            os.fspath(self._data_dir),
            "--host",
            self._host,
            "--only",
            "kafka",
            "--kafka-port",
            str(port),
        ]

    def _check_identity(self, cluster_id: str | None, port: int) -> None:
        if self._noida_cluster_id is None:
            self._noida_cluster_id = cluster_id
        elif cluster_id != self._noida_cluster_id:
            raise _PortInUseError(
                f"another broker (cluster id {cluster_id!r}) answers on {self._host}:{port}"
            )
