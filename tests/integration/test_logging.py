"""A script using eventwire with Python's logging defaults: its stdout holds only its own
output, and only eventwire's warnings reach stderr (``logging.lastResort``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from eventwire.testing import LocalBroker

SCRIPT = """
import msgspec
import eventwire

@eventwire.event(topic={topic!r}, key="order_id", type="test.logged", version=1)
class Logged(msgspec.Struct, frozen=True):
    order_id: str

print("app: started")
publisher = eventwire.Publisher(eventwire.PublisherConfig(bootstrap_servers={servers!r}))
receipt = publisher.publish(Logged(order_id="ord-1"))
print(f"app: published at offset {{receipt.offset}}")
{ending}
print("app: done")
"""


def _run(broker: LocalBroker, ending: str) -> subprocess.CompletedProcess[str]:
    script = SCRIPT.format(
        topic=broker.unique_topic("logged"), servers=broker.bootstrap_servers, ending=ending
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONWARNINGS", "PYTHONDEV"))}
    return subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_a_script_with_the_library_defaults_prints_only_its_own_output(
    eventwire_broker: LocalBroker,
) -> None:
    result = _run(eventwire_broker, ending="publisher.close()")
    assert result.returncode == 0, result.stderr
    # Before: structlog's default logger printed publisher_started and publisher_closed here.
    assert result.stdout == "app: started\napp: published at offset 0\napp: done\n"
    assert result.stderr == ""  # a healthy run has no warning to show


def test_a_warning_goes_to_stderr_by_pythons_defaults(eventwire_broker: LocalBroker) -> None:
    # Left open at exit: eventwire delivers what it holds and warns (eventwire.closed_at_exit).
    result = _run(eventwire_broker, ending="")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "app: started\napp: published at offset 0\napp: done\n"
    assert result.stderr == (
        "eventwire.closed_at_exit client_id=eventwire undelivered=0"
        ' hint="close the publisher before the process exits"\n'
    )
