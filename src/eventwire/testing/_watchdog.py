"""A watchdog process that kills the test kit's brokers when the Python process that started
them dies without stopping them (SIGKILL, a crash, ``os._exit``).

``atexit`` and the pytest plugin stop brokers on every orderly exit, Ctrl-C included; nothing
in the process itself runs after SIGKILL. So the first broker started also starts one small
Python process (in a session of its own, deaf to SIGINT) that reads registrations from a pipe.
When the pipe reaches end of file, the parent is gone: it SIGKILLs every process still
registered (checked by start time, so a recycled PID is never hit) and removes every
directory still registered. ``prctl(PR_SET_PDEATHSIG)`` would fire when the *thread* that
started the broker ends (a worker of ``asyncio.to_thread``), killing a broker still in use.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from pathlib import Path

# Runs in the watchdog process (python -I -c). Lines: "+pid START", "-pid START",
# "+dir PATH", "-dir PATH". Everything still registered at end of file is cleaned up.
_SCRIPT = r"""
import os, shutil, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
pids, dirs = {}, set()
for line in sys.stdin.buffer:
    op, kind, value = line.decode().rstrip("\n").split(" ", 2)
    if kind == "dir":
        (dirs.add if op == "+" else dirs.discard)(value)
    elif op == "+":
        pids[kind] = value
    else:
        pids.pop(kind, None)
for pid, start in pids.items():
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[19] == start:
                os.kill(int(pid), signal.SIGKILL)
    except (OSError, IndexError, ValueError):
        pass
for path in dirs:
    shutil.rmtree(path, ignore_errors=True)
"""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class _Watchdog:
    """The watchdog process, started with the first registration; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def send(self, line: str) -> None:
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                if line.startswith("-"):
                    return  # nothing to forget: that watchdog is gone
                try:
                    process = self._process = subprocess.Popen(  # noqa: S603 - our own script
                        [sys.executable, "-I", "-c", _SCRIPT],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,  # Ctrl-C in a terminal does not reach it
                    )
                except OSError:
                    return  # no watchdog: atexit still stops the brokers on an orderly exit
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.write(line.encode() + b"\n")
                    process.stdin.flush()

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5.0)


_WATCHDOG = _Watchdog()


def watch_process(pid: int) -> None:
    """Kill ``pid`` if this process dies before calling `unwatch_process`."""
    start = _start_time(pid)
    if start is not None:
        _WATCHDOG.send(f"+ {pid} {start}")


def unwatch_process(pid: int) -> None:
    """Forget ``pid`` (it was stopped and reaped)."""
    _WATCHDOG.send(f"- {pid} -")


def watch_directory(path: Path) -> None:
    """Remove ``path`` if this process dies before calling `unwatch_directory`."""
    _WATCHDOG.send(f"+ dir {path}")


def unwatch_directory(path: Path) -> None:
    """Forget ``path`` (it was removed, or is to be kept)."""
    _WATCHDOG.send(f"- dir {path}")


def stop_watchdog() -> None:
    """End the watchdog, which cleans up whatever is still registered; for interpreter exit."""
    _WATCHDOG.stop()
