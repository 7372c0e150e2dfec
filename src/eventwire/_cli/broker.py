"""``eventwire broker``: a local Kafka-compatible broker (Tansu) in the foreground."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from eventwire._cli.errors import OK, CliError


def run_broker(*, port: int | None, partitions: int, topics: Sequence[str]) -> int:
    """Start the broker, print its address on stdout, and serve until SIGINT or SIGTERM.

    Returns:
        ``OK`` once stopped by a signal (the broker process has ended).

    Raises:
        CliError: the broker could not start, a topic could not be created, or the broker
            process died while serving.
    """
    from confluent_kafka import KafkaException

    from eventwire.testing import BrokerStartError, LocalBroker

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker = LocalBroker(partitions=partitions, port=port)
        try:
            broker.start()
        except BrokerStartError as exc:
            raise CliError(str(exc).splitlines()[0]) from None
        try:
            try:
                broker.create_topics(topics)
            except (KafkaException, TimeoutError) as exc:
                raise CliError(f"cannot create topics {', '.join(topics)}: {exc}") from None
            # stdout carries only the address: a script reads its first line while the
            # broker runs in the background.
            sys.stdout.write(broker.bootstrap_servers + "\n")
            sys.stdout.flush()
            created = f"; topics: {', '.join(topics)}" if topics else ""
            sys.stderr.write(
                f"local broker (Tansu, in memory) pid {broker.pid} on"
                f" {broker.bootstrap_servers}{created} ({partitions} partitions per topic"
                " created with --topic; one created on first use gets Tansu's default)."
                " Ctrl-C stops it.\n"
            )
            sys.stderr.flush()
            # Waking once a second notices a broker that died on its own.
            while not stop.wait(1.0):
                if not broker.running:
                    raise CliError("the local broker exited unexpectedly")
        finally:
            broker.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stderr.write("local broker stopped\n")
    return OK
