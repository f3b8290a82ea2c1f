"""The real `personas` command, run as a subprocess."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from personas.cli import DESCRIPTIONS
from personas.settings import ENVIRONMENT
from tests.conftest import (
    PERSONAS,
    START_TIMEOUT,
    Server,
    clean_environment,
    free_port,
    is_running,
    processes_using,
    run,
)


def test_sigterm_stops_the_server_and_its_database(server: Server) -> None:
    database = server.database_pid()
    assert is_running(database)

    code, errors = server.stop()

    assert code == 0, errors
    assert not is_running(database)
    assert processes_using(server.data_dir) == []
    assert not (server.data_dir / "server.json").exists()
    assert "using the embedded SecantusDB database" in errors
    assert "set MONGODB_URI" in errors
    assert "embedded database stopped" in errors


def test_a_second_server_on_the_same_data_directory_fails_clearly(server: Server) -> None:
    second = run("serve", "--port", str(free_port()), "--data-dir", str(server.data_dir))

    assert second.returncode == 1
    assert f"the data directory {server.data_dir.resolve()} is in use" in second.stderr
    assert f"pid {server.process.pid}" in second.stderr
    assert httpx.get(f"http://127.0.0.1:{server.port}/readyz").status_code == 200


def test_a_taken_http_port_exits_and_stops_the_database(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), "--data-dir", str(tmp_path))

    assert result.returncode != 0
    assert "using the embedded SecantusDB database" in result.stderr  # it had started
    assert "address already in use" in result.stderr
    assert "embedded database stopped" in result.stderr
    assert processes_using(tmp_path) == []
    assert not (tmp_path / "server.json").exists()


def test_a_bad_setting_exits_before_starting_anything(tmp_path: Path) -> None:
    result = subprocess.run(
        [PERSONAS, "serve", "--data-dir", str(tmp_path)],
        env={**clean_environment(), "PERSONAS_PORT": "eighty"},
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error: PERSONAS_PORT='eighty'" in result.stderr
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize("arguments", [["--help"], ["serve", "--help"]])
def test_help_documents_the_options_and_every_variable(arguments: list[str]) -> None:
    result = run(*arguments)
    assert result.returncode == 0
    for variable in ENVIRONMENT:
        assert variable in result.stdout
    for option in ("--host", "--port", "--data-dir", "--workers"):
        assert option in result.stdout
    assert "default: 8000" in result.stdout


def test_bad_options_are_refused_by_the_parser() -> None:
    result = run("serve", "--port", "70000")
    assert result.returncode == 2
    assert "--port: 70000 is not between 0 and 65535" in result.stderr


def test_every_variable_is_described() -> None:
    assert set(DESCRIPTIONS) == set(ENVIRONMENT)


def test_the_log_configuration_given_to_uvicorn_writes_json_lines() -> None:
    """uvicorn applies it in every worker process, where nothing else configures logging."""
    script = (
        "import logging.config, sys\n"
        "from personas.cli import uvicorn_log_config\n"
        "logging.config.dictConfig(uvicorn_log_config(sys.argv[1]))\n"
        "logging.getLogger('uvicorn.error').info('worker started')\n"
        "logging.getLogger('personas.access').debug('not at info level')\n"
        "import asyncio\n"
        "from personas.logs import log_fields\n"
        "async def requests():\n"
        "    access = logging.getLogger('personas.access')\n"
        "    log_fields(access, logging.INFO, 'request', {'status': 200}, flush='soon')\n"
        "    logging.getLogger('personas.guard').warning('request cut off')\n"
        "    log_fields(access, logging.INFO, 'request', {'status': 503}, flush='soon')\n"
        "asyncio.run(requests())\n"  # the process ends before the last line's flush is due
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "info"],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=True,
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["logger"], line["msg"]) for line in lines] == [
        ("uvicorn.error", "worker started"),
        ("personas.access", "request"),
        ("personas.guard", "request cut off"),
        ("personas.access", "request"),
    ]
    assert [line.get("status") for line in lines] == [None, 200, None, 503]


# -- API keys and secure-by-default start ----------------------------------------------


def created_token(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    key_id = lines[0].split()[3]
    return key_id, lines[-1]


def test_keys_are_managed_without_a_running_server(tmp_path: Path) -> None:
    created = run(
        "keys",
        "--data-dir",
        str(tmp_path),
        "create",
        "--tenant",
        "acme",
        "--scopes",
        "read,write",
        "--name",
        "billing",
    )
    key_id, token = created_token(created)
    assert token.startswith(f"pk_{key_id}_")
    assert len(token.split("_", 2)[2]) >= 22  # at least 128 random bits, url-safe base64
    listed = run("keys", "--data-dir", str(tmp_path), "list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith(key_id))
    assert row.split()[1:3] == ["acme", "read,write"]
    assert row.split()[-1] == "billing"
    assert token.split("_", 2)[2] not in listed.stdout
    revoked = run("keys", "--data-dir", str(tmp_path), "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in run("keys", "--data-dir", str(tmp_path), "list").stdout
    again = run("keys", "--data-dir", str(tmp_path), "revoke", key_id)
    assert again.returncode == 1
    assert processes_using(tmp_path) == []


def test_bad_key_options_are_refused(tmp_path: Path) -> None:
    bad_scope = run(
        "keys", "--data-dir", str(tmp_path), "create", "--tenant", "acme", "--scopes", "read,root"
    )
    assert bad_scope.returncode == 2
    assert "scopes" in bad_scope.stderr
    bad_tenant = run(
        "keys", "--data-dir", str(tmp_path), "create", "--tenant", "a b", "--scopes", "read"
    )
    assert bad_tenant.returncode == 2
    assert "tenant" in bad_tenant.stderr


def test_keys_reach_the_database_of_a_running_server(server: Server) -> None:
    anonymous = httpx.post(
        f"http://127.0.0.1:{server.port}/graphql",
        json={"query": '{ metadataValues(path: "tags") { count } }'},
    )
    assert anonymous.status_code == 200
    created = run(
        "keys", "--data-dir", str(server.data_dir), "create", "--tenant", "acme", "--scopes", "read"
    )
    _, token = created_token(created)
    query = {"query": '{ metadataValues(path: "tags") { count } }'}
    url = f"http://127.0.0.1:{server.port}/graphql"
    assert httpx.post(url, json=query).status_code == 401  # at once: the first key ends it
    authorized = httpx.post(url, json=query, headers={"authorization": f"Bearer {token}"})
    assert authorized.status_code == 200
    assert authorized.json() == {"data": {"metadataValues": []}}


def test_serving_beyond_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    result = run(
        "serve", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(tmp_path)
    )
    assert result.returncode == 1
    assert "refusing to serve on 0.0.0.0 without API keys" in result.stderr
    assert "embedded database stopped" in result.stderr
    assert processes_using(tmp_path) == []


def test_required_auth_without_keys_is_refused(tmp_path: Path) -> None:
    environment = {**clean_environment(), "PERSONAS_AUTH": "required"}
    result = subprocess.run(
        [PERSONAS, "serve", "--port", str(free_port()), "--data-dir", str(tmp_path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert "PERSONAS_AUTH=required but no API key exists" in result.stderr
