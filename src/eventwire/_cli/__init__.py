"""The ``eventwire`` command. Each subcommand lives in its own module, imported only when run.

Every failure is reported as one line on stderr (``eventwire: error: ...``), never a
traceback, with a non-zero exit code (see ``errors.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence

from eventwire._cli.errors import (
    FAILURE,
    INTERRUPTED,
    OK,
    REJECTED,
    UNDELIVERED,
    USAGE,
    CliError,
)
from eventwire._cli.parser import BOOTSTRAP_ENV_VAR, DEFAULT_BOOTSTRAP, _parser
from eventwire._topics import topic_problem

__all__ = [
    "BOOTSTRAP_ENV_VAR",
    "DEFAULT_BOOTSTRAP",
    "FAILURE",
    "INTERRUPTED",
    "OK",
    "REJECTED",
    "UNDELIVERED",
    "USAGE",
    "_parser",
    "main",
]


class _CommandLineFormatter(logging.Formatter):
    """``eventwire: warning: eventwire.publish_failed topic=...``, like the command's errors."""

    def format(self, record: logging.LogRecord) -> str:
        return f"eventwire: {record.levelname.lower()}: {super().format(record)}"


@contextlib.contextmanager
def _library_logs_on_stderr() -> Iterator[None]:
    """The command is an application, so it decides where eventwire's log lines go: warnings
    and errors on stderr, as one line each; info lines nowhere (stdout is the output). A
    program that runs ``main`` after configuring logging keeps its own set-up; the handler
    is removed afterwards."""
    logger = logging.getLogger("eventwire")
    if logger.hasHandlers():
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_CommandLineFormatter())
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from eventwire._cli.demo import run_demo

        payments = args.payments if args.payments is not None else args.orders // 2
        return run_demo(orders=args.orders, payments=payments, partitions=args.partitions)
    if args.command == "broker":
        from eventwire._cli.broker import run_broker

        topics = [t.strip() for group in args.topic for t in group.split(",") if t.strip()]
        for name in topics:  # Tansu creates names that every publisher would then refuse
            problem = topic_problem(name)
            if problem is not None:
                raise CliError(
                    f"--topic {name!r} is not a legal Kafka topic name: {problem}", USAGE
                )
        return run_broker(port=args.port, partitions=args.partitions, topics=topics)
    if args.command == "produce":
        from eventwire._cli.produce import print_summary, run_produce

        summary = run_produce(
            event=args.event,
            file=args.file,
            topic=args.topic,
            bootstrap_servers=args.bootstrap_servers,
            config_file=args.config,
            rejects=args.rejects,
            encoding=args.encoding,
            preset=args.preset,
            chunk_size=args.chunk_size,
            chunk_wait=args.chunk_wait,
            forbid_unknown_fields=args.forbid_unknown_fields,
            delivery_timeout=args.delivery_timeout,
            connect_timeout=args.connect_timeout,
            show_progress=not args.no_progress,
        )
        print_summary(summary, as_json=args.json)
        return summary.exit_code
    if args.command == "bench":
        from eventwire._cli.bench import run_bench

        return run_bench(
            suite=args.suite,
            events=args.events,
            rounds=args.rounds,
            quick=args.quick,
            output=args.output,
            json_path=args.json_path,
            cases=args.cases,
        )
    if args.command == "schema":
        return _run_schema(args)
    if args.command == "outbox":
        from eventwire._cli.outbox import run_outbox

        return run_outbox(args.outbox_command, args)
    if args.command == "relay":
        from eventwire._cli.outbox import run_relay

        return run_relay(
            database_url=args.database_url,
            bootstrap_servers=args.bootstrap_servers,
            config_file=args.config,
            connect_timeout=args.connect_timeout,
            once=args.once,
            name=args.name,
            poll_interval=args.poll_interval,
            lease_ttl=args.lease_ttl,
            max_in_flight=args.max_in_flight,
            preset=args.preset,
            transactional_id=args.transactional_id,
            show_progress=not args.no_progress,
        )
    raise CliError(f"unknown command {args.command!r}", USAGE)  # pragma: no cover


def _run_schema(args: argparse.Namespace) -> int:
    if args.schema_command == "check":
        from eventwire._cli.schema_check import run_check

        return run_check(args.old, args.new, args.mode, as_json=args.json)
    if args.schema_command == "asyncapi":
        from eventwire._cli.asyncapi import render_asyncapi

        text = render_asyncapi(
            args.modules,
            as_yaml=args.yaml,
            title=args.title,
            version=args.app_version,
            encoding=args.encoding,
            servers=args.server,
            output=args.output,
        )
    else:
        from eventwire._cli.schema import export_schema

        text = export_schema(args.event, args.indent, output=args.output)
    if args.output is None:
        sys.stdout.write(text)
        return OK
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Exit codes: 0 success, 1 failure (one line on stderr), 2 usage error, 3 ``produce``
    rejected some lines, 4 ``produce`` could not deliver some events, 130 interrupted.
    """
    from eventwire import EventwireError

    args = _parser().parse_args(argv)
    try:
        with _library_logs_on_stderr():
            return _run(args)
    except CliError as exc:
        _error(str(exc))
        return exc.code
    except EventwireError as exc:
        _error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return FAILURE
    except KeyboardInterrupt:
        _error("interrupted")
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback, for any failure
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "rich":
            # the `eventwire` script comes with the base package; its output needs the extra
            _error("the command line needs rich: pip install 'eventwire[cli]'")
        else:
            _error(f"unexpected {type(exc).__name__}: {exc}")
        return FAILURE


def _error(message: str) -> None:
    sys.stderr.write(f"eventwire: error: {message}\n")
    sys.stderr.flush()


__all__ = ["FAILURE", "INTERRUPTED", "OK", "REJECTED", "UNDELIVERED", "USAGE", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
