"""The `personas` command: serve the API, print the schema."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any

from personas import backup, logs
from personas.auth import generate_key, is_loopback
from personas.domain import (
    ApiKey,
    DomainError,
    InvalidInput,
    RestoreOutcome,
    Unavailable,
    parse_scopes,
    validate_tenant,
)
from personas.embedded import EmbeddedDatabase, EmbeddedDatabaseError, reach
from personas.serving import Service
from personas.settings import ENVIRONMENT, Settings, SettingsError
from personas.store import PersonaStore
from personas.supervision import Supervisor

log = logging.getLogger("personas")

DESCRIPTIONS: dict[str, str] = {
    "PERSONAS_HOST": "address to bind",
    "PERSONAS_PORT": "port to bind",
    "PERSONAS_WORKERS": "uvicorn worker processes",
    "PERSONAS_DATA_DIR": "embedded database data directory",
    "MONGODB_URI": "a MongoDB to use instead of the embedded database",
    "PERSONAS_DB_NAME": "database name",
    "PERSONAS_INDEXED_PATHS": "comma-separated metadata paths to index, e.g. status,owner.team",
    "PERSONAS_GRAPHIQL": "serve the GraphiQL IDE at /graphql (true/false)",
    "PERSONAS_ENV": "development or production",
    "PERSONAS_LOG_LEVEL": "debug, info, warning or error",
    "PERSONAS_DB_TIMEOUT_MS": "database operation timeout in milliseconds",
    "PERSONAS_EMBEDDED_START_TIMEOUT": "seconds the embedded database may take to start",
    "PERSONAS_EMBEDDED_SYNC_ON_COMMIT": "embedded database: flush every commit to disk before "
    "answering (true/false)",
    "PERSONAS_EMBEDDED_RESTARTS": "restarts of a failed embedded database tried in a row "
    "before the server gives up and exits",
    "PERSONAS_EMBEDDED_RESTART_BACKOFF": "seconds before the first restart of the embedded "
    "database; doubles with each failed one",
    "PERSONAS_SHUTDOWN_TIMEOUT": "seconds SIGTERM/SIGINT may take to stop everything",
    "PERSONAS_MAX_BODY_BYTES": "largest request body accepted, in bytes",
    "PERSONAS_AUTH": "auto (anonymous on loopback while no API key exists) or required",
    "PERSONAS_GRAPHQL_MAX_DEPTH": "deepest GraphQL selection accepted",
    "PERSONAS_GRAPHQL_MAX_ALIASES": "most aliases in one GraphQL operation",
    "PERSONAS_GRAPHQL_MAX_TOKENS": "most tokens in one GraphQL document",
    "PERSONAS_GRAPHQL_CACHE_SIZE": "parsed and validated GraphQL documents kept",
    "PERSONAS_PROTECTED_LABELS": "comma-separated labels only the approve scope may move",
    "PERSONAS_APPROVAL": "single, or two-person (nobody approves a version they made)",
    "PERSONAS_EVENT_RETENTION_DAYS": "days the event log keeps each event",
    "PERSONAS_SUBSCRIPTIONS_PER_CONNECTION": "most GraphQL operations open on one WebSocket",
    "PERSONAS_SUBSCRIPTIONS_PER_KEY": "most subscriptions one API key holds (per process)",
    "PERSONAS_SUBSCRIPTION_BUFFER": "events held for a subscriber before it is disconnected",
    "PERSONAS_WEBHOOK_ALLOW_LOOPBACK": "allow webhook URLs on loopback addresses (true/false)",
    "PERSONAS_WEBHOOK_TIMEOUT": "seconds one webhook delivery attempt may take",
    "PERSONAS_WEBHOOK_RETRY_BASE": "seconds before the first retry; each retry doubles it",
    "PERSONAS_WEBHOOK_RETRY_FOR": "seconds a delivery is retried before its endpoint is disabled",
    "PERSONAS_CORS_ORIGINS": "comma-separated origins whose browser pages may call the API",
    "PERSONAS_PERSISTED_QUERY_CACHE_SIZE": "automatic persisted queries kept (least recently "
    "used go first)",
    "PERSONAS_PERSISTED_QUERIES": "a JSON file of registered documents, {sha256: document}",
    "PERSONAS_PERSISTED_ONLY": "run only registered documents (true/false)",
}

EXAMPLES = """\
examples:
  personas serve                            embedded database, data in ./.personas
  personas serve --port 9000 --data-dir /var/lib/personas --workers 4
  MONGODB_URI='mongodb://localhost:27017/?replicaSet=rs0' PERSONAS_DB_NAME=personas \\
      personas serve --host 0.0.0.0
  personas schema > schema.graphql
  personas schema --check                   schema guard (in the repository)"""


def environment_help() -> str:
    """The epilog: every environment variable, what it sets and its default."""
    defaults = {field.name: field.default for field in dataclasses.fields(Settings)}
    lines = ["environment variables (command-line options take precedence):"]
    for variable, (field, _) in ENVIRONMENT.items():
        text = DESCRIPTIONS.get(variable, field.replace("_", " "))
        default = defaults.get(field)
        if default not in (None, (), ""):
            if isinstance(default, bool):
                shown = str(default).lower()
            elif isinstance(default, float):
                shown = f"{default:g}"
            else:
                shown = str(default)
            text = f"{text} (default: {shown})"
        lines.append(f"  {variable:<32} {text}")
    return "\n".join(lines)


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 0 and 65535")
    return port


def _workers(raw: str) -> int:
    try:
        workers = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if workers < 1:
        raise argparse.ArgumentTypeError(f"{workers} is not at least 1")
    return workers


def build_parser() -> argparse.ArgumentParser:
    epilog = f"{environment_help()}\n\n{EXAMPLES}"
    parser = argparse.ArgumentParser(
        prog="personas",
        description="Persona API: LLM personas with JSON metadata over GraphQL and REST.\n\n"
        "  personas serve [--host H] [--port P] [--data-dir D] [--workers N]\n"
        "  personas schema [--check]\n"
        "  personas keys create --tenant T --scopes read,write [--name N] | list | revoke ID\n"
        "  personas export [--output FILE] [--tenant T]\n"
        "  personas import FILE [--strict]\n\n"
        "Without MONGODB_URI, `serve` starts an embedded SecantusDB database with its\n"
        "data under the data directory; set MONGODB_URI (and PERSONAS_DB_NAME) to use\n"
        "MongoDB instead.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the API (starts the embedded database unless MONGODB_URI is set)",
        description="Serve GraphQL at /graphql, REST at /v1, health at /healthz and /readyz.\n"
        "Without MONGODB_URI an embedded SecantusDB server is started with its data under\n"
        "the data directory; with MONGODB_URI (and PERSONAS_DB_NAME) that MongoDB is used\n"
        "instead. SIGTERM or SIGINT stops the server and the embedded database.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host", metavar="H", help="address to bind (PERSONAS_HOST, default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", metavar="P", type=_port, help="port to bind (PERSONAS_PORT, default 8000)"
    )
    serve.add_argument(
        "--data-dir",
        metavar="D",
        type=Path,
        help="embedded database data directory (PERSONAS_DATA_DIR, default ./.personas)",
    )
    serve.add_argument(
        "--workers",
        metavar="N",
        type=_workers,
        help="uvicorn worker processes (PERSONAS_WORKERS, default 1)",
    )
    schema = commands.add_parser(
        "schema",
        help="print the GraphQL schema (SDL), or check it against the published one",
        description="Print the GraphQL schema (SDL). With --check, run the schema guard in the\n"
        "repository: schema.graphql must be the code's schema, and every breaking change since\n"
        "schema/released.graphql must be listed in CHANGELOG.md (exit status 1 otherwise).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    schema.add_argument(
        "--check", action="store_true", help="check schema.graphql and breaking changes"
    )
    keys = commands.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="Manage API keys in the database: MONGODB_URI's, or the embedded one of\n"
        "the data directory (the running server's, or one started for the command).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys.add_argument("--data-dir", metavar="D", type=Path, help="embedded database data directory")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key; its secret is shown once")
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument(
        "--scopes",
        required=True,
        help="comma-separated: read, write, approve, admin (e.g. read,write)",
    )
    create.add_argument("--name", help="a label, e.g. the service that uses the key")
    key_commands.add_parser("list", help="list keys (never their secrets)")
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id", help="the key id shown by create or list")
    reaching = (
        "Works on MONGODB_URI's database, or the embedded one of the data directory (the\n"
        "running server's, or one started for the command)."
    )
    export = commands.add_parser(
        "export",
        help="write every persona with all its revisions to a backup (JSON Lines)",
        description="Write a backup: every persona of every tenant (or of one), deleted ones\n"
        "included, with all its revisions, one JSON object per line (README: Backups).\n"
        f"{reaching}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="where to write (default: stdout)"
    )
    export.add_argument("--tenant", metavar="T", help="only the personas of this tenant")
    export.add_argument(
        "--data-dir", metavar="D", type=Path, help="embedded database data directory"
    )
    restore = commands.add_parser(
        "import",
        help="restore a backup written by export (importing twice changes nothing)",
        description="Restore a backup written by `personas export`, one persona at a time:\n"
        "what the database lacks is written, what it already holds is left alone. A bad\n"
        "line is reported with its number and nothing of its persona is written.\n"
        f"{reaching}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore.add_argument("file", metavar="FILE", help="the backup ('-': standard input)")
    restore.add_argument("--strict", action="store_true", help="stop at the first bad line")
    restore.add_argument(
        "--data-dir", metavar="D", type=Path, help="embedded database data directory"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    if arguments.command == "schema":
        return check_schema() if arguments.check else print_schema()
    try:
        settings = Settings.from_env().replace(
            host=getattr(arguments, "host", None),
            port=getattr(arguments, "port", None),
            data_dir=arguments.data_dir,
            workers=getattr(arguments, "workers", None),
        )
    except SettingsError as error:
        print(f"personas: configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        if arguments.command == "keys":
            return manage_keys(settings, arguments)
        if arguments.command == "export":
            return export_backup(settings, arguments)
        if arguments.command == "import":
            return import_backup(settings, arguments)
        return serve(settings)
    except EmbeddedDatabaseError as error:
        log.error("cannot start: %s", error)
        return 1
    except Unavailable as error:
        log.error("cannot start: %s", error.message)
        return 1
    except Stopped as stopped:
        log.warning("stopped by %s before a clean shutdown", stopped)
        return 1


def print_schema() -> int:
    from personas.graphql.schema import build_schema

    print(build_schema().as_str())
    return 0


def check_schema() -> int:
    from personas.graphql.guard import check_files
    from personas.graphql.schema import build_schema

    try:
        report = check_files(build_schema().as_str())
    except OSError as error:
        print(f"personas schema --check: {error}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line, file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived while uvicorn was not the one listening for it."""


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `Stopped`, so that cleanup code runs.

    uvicorn handles both while it serves, then re-raises the signal it got
    once it has shut down: without this, SIGTERM would end the process there.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signal.Signals(signum).name)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """JSON lines on stderr, applied by uvicorn in this process and in every worker."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": logs.JsonFormatter}},
        "handlers": {"stderr": {"()": logs.stderr_handler, "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """MONGODB_URI, or the embedded database of the data directory."""
    if settings.mongodb_uri is not None:
        yield settings.mongodb_uri
        return
    with reach(settings.data_dir, settings.embedded_start_timeout) as uri:
        yield uri


def manage_keys(settings: Settings, arguments: argparse.Namespace) -> int:
    with database(settings) as uri:
        return asyncio.run(_manage_keys(uri, settings, arguments))


async def _manage_keys(uri: str, settings: Settings, arguments: argparse.Namespace) -> int:
    store = PersonaStore.connect(uri, settings.db_name, settings.db_timeout_ms)
    try:
        if arguments.keys_command == "create":
            tenant = validate_tenant(arguments.tenant)
            scopes = parse_scopes(arguments.scopes)
            new = generate_key()
            key = await store.keys.create(new.id, new.secret_hash, tenant, scopes, arguments.name)
            print(f"created API key {key.id} for tenant {key.tenant} ({_scopes(key)})")
            print("send it as 'Authorization: Bearer <key>'; it is shown only this once:")
            print(new.token)
        elif arguments.keys_command == "list":
            print(f"{'ID':<18} {'TENANT':<20} {'SCOPES':<18} {'CREATED':<20} {'STATE':<8} NAME")
            for key in await store.keys.all():
                state = "revoked" if key.revoked_at else "active"
                created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
                print(
                    f"{key.id:<18} {key.tenant:<20} {_scopes(key):<18} {created:<20} "
                    f"{state:<8} {key.name or ''}"
                )
        else:
            key = await store.keys.revoke(arguments.id)
            print(f"revoked API key {key.id} of tenant {key.tenant}")
    except DomainError as error:
        print(f"personas keys: {error.message}", file=sys.stderr)
        return 2 if isinstance(error, InvalidInput) else 1
    finally:
        await store.close()
    return 0


def export_backup(settings: Settings, arguments: argparse.Namespace) -> int:
    try:
        tenant = None if arguments.tenant is None else validate_tenant(arguments.tenant)
    except InvalidInput as error:
        print(f"personas export: --{error.message}", file=sys.stderr)
        return 2
    with database(settings) as uri:
        return asyncio.run(_export(uri, settings, tenant, arguments.output))


async def _export(uri: str, settings: Settings, tenant: str | None, path: Path | None) -> int:
    store = PersonaStore.connect(uri, settings.db_name, settings.db_timeout_ms)
    shown = sys.stderr.isatty()
    try:
        total = await backup.count(store, tenant) if shown else None
        with (
            _written(path) as output,
            backup.progress_bar("exporting personas", total, shown) as advance,
        ):
            exported = await backup.export(store, output, tenant, advance)
    except DomainError as error:
        print(f"personas export: {error.message}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"personas export: cannot write {path}: {error.strerror or error}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    where = "standard output" if path is None else str(path)
    print(f"exported {exported} persona(s) to {where}", file=sys.stderr)
    return 0


@contextmanager
def _written(path: Path | None) -> Iterator[IO[bytes]]:
    """Standard output, or `path` written whole or not at all (through a `.partial` file)."""
    if path is None or str(path) == "-":
        yield sys.stdout.buffer
        return
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as output:
            yield output
            output.flush()
            os.fsync(output.fileno())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def import_backup(settings: Settings, arguments: argparse.Namespace) -> int:
    name: str = arguments.file
    try:
        source = sys.stdin.buffer if name == "-" else Path(name).open("rb")  # noqa: SIM115
    except OSError as error:
        print(f"personas import: cannot read {name}: {error.strerror or error}", file=sys.stderr)
        return 2
    with source, database(settings) as uri:
        return asyncio.run(_import(uri, settings, source, name, arguments.strict))


async def _import(uri: str, settings: Settings, source: IO[bytes], name: str, strict: bool) -> int:
    store = PersonaStore.connect(uri, settings.db_name, settings.db_timeout_ms)
    shown = sys.stderr.isatty()
    try:
        await store.ensure_indexes()
        total = os.fstat(source.fileno()).st_size if source.seekable() else None
        with backup.progress_bar("importing personas", total, shown) as advance:
            report = await backup.restore(store, source, strict, advance)
    except backup.BackupError as error:
        print(f"personas import: {name}: {error}", file=sys.stderr)
        return 2
    except DomainError as error:
        print(f"personas import: {error.message}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    for bad in report.errors:
        print(f"personas import: {name}:{bad.line}: {bad.message}", file=sys.stderr)
    if report.problem is not None:
        print(f"personas import: {name}: {report.problem}", file=sys.stderr)
    counts = report.outcomes
    print(
        f"imported {name}: {counts[RestoreOutcome.CREATED]} created, "
        f"{counts[RestoreOutcome.UPDATED]} updated, "
        f"{counts[RestoreOutcome.UNCHANGED]} unchanged, "
        f"{counts[RestoreOutcome.NEWER]} left as they are (newer in the database); "
        f"{len(report.errors)} bad line(s)"
        + ("; stopped at the first (--strict)" if strict and report.errors else ""),
        file=sys.stderr,
    )
    return 0 if report.ok else 1


def _scopes(key: ApiKey) -> str:
    return ",".join(sorted(key.scopes))


async def _has_keys(uri: str, settings: Settings) -> bool:
    store = PersonaStore.connect(uri, settings.db_name, settings.db_timeout_ms)
    try:
        return await store.keys.any()
    finally:
        await store.close()


def access_refusal(settings: Settings, keys_exist: bool) -> str | None:
    """Why the server must not start without API keys, if it must not."""
    if keys_exist:
        return None
    if settings.auth == "required":
        return (
            "PERSONAS_AUTH=required but no API key exists: create one with "
            "`personas keys create --tenant T --scopes read,write` first"
        )
    if not is_loopback(settings.host):
        return (
            f"refusing to serve on {settings.host} without API keys: anyone could read and "
            "change every persona. Create a key with `personas keys create --tenant T "
            "--scopes read,write`, or bind to 127.0.0.1"
        )
    return None


def serve(settings: Settings) -> int:
    embedded: EmbeddedDatabase | None = None
    supervisor: Supervisor | None = None
    service = Service(
        settings,
        uvicorn_log_config(settings.log_level),
        on_expiry=lambda: embedded.kill() if embedded is not None else None,
    )
    with stopped_by_signals():
        try:
            if settings.mongodb_uri is None:
                embedded = EmbeddedDatabase(
                    settings.data_dir,
                    settings.embedded_start_timeout,
                    sync_on_commit=settings.embedded_sync_on_commit,
                )
                uri = embedded.start()
                log.info(
                    "using the embedded SecantusDB database at %s with data in %s; "
                    "set MONGODB_URI (and PERSONAS_DB_NAME) to use MongoDB instead",
                    uri,
                    embedded.storage_path,
                )
                if not settings.embedded_sync_on_commit:
                    log.warning(
                        "PERSONAS_EMBEDDED_SYNC_ON_COMMIT=false: acknowledged writes may be "
                        "lost if the database process or the machine dies"
                    )
                os.environ["MONGODB_URI"] = uri
                os.environ["PERSONAS_DATA_DIR"] = str(embedded.data_dir)
            else:
                uri = settings.mongodb_uri
                log.info("using MongoDB from MONGODB_URI, database %s", settings.db_name)
            keys_exist = asyncio.run(_has_keys(uri, settings))
            refusal = access_refusal(settings, keys_exist)
            if refusal is not None:
                log.error("cannot start: %s", refusal)
                return 1
            if not keys_exist:
                log.warning(
                    "no API key exists: anonymous callers act for tenant 'default' with every "
                    "scope, because the server is bound to loopback (%s); create a key with "
                    "`personas keys create` or set PERSONAS_AUTH=required to require keys",
                    settings.host,
                )
            os.environ["PERSONAS_HOST"] = settings.host
            if embedded is not None:
                supervisor = Supervisor(
                    embedded,
                    settings.embedded_restarts,
                    settings.embedded_restart_backoff,
                    on_give_up=lambda reason: service.stop(),
                )
                supervisor.start()
            service.run()
        except Stopped as stopped:
            if supervisor is None or not supervisor.given_up:
                log.info("stopped by %s", stopped)
        finally:
            if supervisor is not None:
                supervisor.stop()
            if embedded is not None:
                embedded.stop(grace=service.left_until(service.plan.database))
                os.environ.pop("MONGODB_URI", None)
                log.info("embedded database stopped")
            service.watchdog.cancel()
    if supervisor is not None and supervisor.reason is not None:
        log.error("stopped: %s", supervisor.reason)
        return 1
    return 0
