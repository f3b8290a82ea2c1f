"""The `personas` command: serve the API, print the schema."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from personas import logs
from personas.embedded import EmbeddedDatabase, EmbeddedDatabaseError
from personas.settings import ENVIRONMENT, Settings, SettingsError

log = logging.getLogger("personas")

ENVIRONMENT_HELP = "environment variables (command-line options take precedence):\n" + "\n".join(
    f"  {variable:<32} {field}" for variable, (field, _) in ENVIRONMENT.items()
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="personas",
        description="Persona API: LLM personas with JSON metadata over GraphQL and REST.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the API (starts the embedded database unless MONGODB_URI is set)",
        description="Serve GraphQL at /graphql, REST at /v1, health at /healthz and /readyz. "
        "Without MONGODB_URI an embedded SecantusDB server is started with its data "
        "under the data directory; with MONGODB_URI (and PERSONAS_DB_NAME) that "
        "MongoDB is used instead.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to bind (PERSONAS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (PERSONAS_PORT, default 8000)")
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="embedded database data directory (PERSONAS_DATA_DIR, default ./.personas)",
    )
    serve.add_argument(
        "--workers", type=int, help="uvicorn worker processes (PERSONAS_WORKERS, default 1)"
    )
    commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if arguments.command == "schema":
            return print_schema()
        settings = settings.replace(
            host=arguments.host,
            port=arguments.port,
            data_dir=arguments.data_dir,
            workers=arguments.workers,
        )
    except SettingsError as error:
        print(f"personas: configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        return serve(settings)
    except EmbeddedDatabaseError as error:
        log.error("cannot start: %s", error)
        return 1


def print_schema() -> int:
    from personas.resolvers import build_schema

    print(build_schema().as_str())
    return 0


def serve(settings: Settings) -> int:
    embedded: EmbeddedDatabase | None = None
    if settings.mongodb_uri is None:
        embedded = EmbeddedDatabase(settings.data_dir, settings.embedded_start_timeout)
        uri = embedded.start()
        log.info(
            "using the embedded SecantusDB database at %s with data in %s; "
            "set MONGODB_URI (and PERSONAS_DB_NAME) to use MongoDB instead",
            uri,
            embedded.storage_path,
        )
        os.environ["MONGODB_URI"] = uri
    else:
        log.info("using MongoDB from MONGODB_URI, database %s", settings.db_name)
    try:
        uvicorn.run(
            "personas.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            access_log=False,
            server_header=False,
        )
    finally:
        if embedded is not None:
            embedded.stop()
            log.info("embedded database stopped")
    return 0
