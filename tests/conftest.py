"""Fixtures: one database server for the whole run, one database per test."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from personas.app import create_app
from personas.auth import generate_key
from personas.domain import InvalidInput
from personas.embedded import EmbeddedDatabase
from personas.settings import ENVIRONMENT, Settings
from personas.store import PersonaStore


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """MONGODB_URI when set (a real MongoDB), else one embedded server for the run."""
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    # Without sync-on-commit: every test drops its database, which takes seconds with it.
    # Durability is tested by tests/test_faults.py, on servers with the default settings.
    with EmbeddedDatabase(tmp_path_factory.mktemp("embedded"), sync_on_commit=False) as database:
        assert database.uri is not None
        yield database.uri


@pytest.fixture
def settings(mongodb_uri: str, tmp_path: Path) -> Settings:
    return Settings(
        mongodb_uri=mongodb_uri,
        db_name=f"test_{uuid.uuid4().hex[:16]}",
        data_dir=tmp_path / "data",
        indexed_paths=("status", "deployment.environment"),
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        await application.state.store.drop_database()


@pytest.fixture
async def store(app: Starlette) -> PersonaStore:
    found: PersonaStore = app.state.store
    return found


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class GraphQLClient:
    """Runs operations with variables over HTTP, as a client would."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        request = json.dumps({"query": query, "variables": variables or {}})  # \u-escaped ASCII
        response = await self.http.post(
            "/graphql", content=request, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.execute(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.execute(query, variables)
        assert body.get("errors"), body
        error: dict[str, Any] = body["errors"][0]
        return error


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


@pytest.fixture
async def secured(settings: Settings) -> AsyncIterator[Starlette]:
    """An app that requires API keys."""
    application = create_app(settings.replace(auth="required"))
    async with application.router.lifespan_context(application):
        yield application
        await application.state.store.drop_database()


async def issue_key(store: PersonaStore, tenant: str, *scopes: str) -> tuple[str, str]:
    """A new API key of `tenant` with `scopes`: its id and its token."""
    new = generate_key()
    await store.keys.create(new.id, new.secret_hash, tenant, frozenset(scopes), tenant)
    return new.id, new.token


def keyed_client(app: Starlette, token: str) -> httpx.AsyncClient:
    """An HTTP client of `app` sending `token` as its API key."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}"},
    )


async def problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    """The RFC 9457 body of an error response, checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in response.text
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
        assert all(error["message"] for error in body["errors"])
    return body


def is_running(pid: int) -> bool:
    """A live process: not gone, and not a zombie waiting for its parent to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def processes_using(data_dir: Path) -> list[int]:
    """Pids of the processes whose command line names `data_dir`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(data_dir).encode() in command:
                found.append(int(entry.name))
    return found


def plan_stages(plan: dict[str, Any]) -> list[str]:
    stages = [plan["stage"]]
    for child in [plan.get("inputStage"), *plan.get("inputStages", [])]:
        if child:
            stages += plan_stages(child)
    return stages


def accepts(check: Callable[[], object]) -> bool:
    """Whether a rule takes what `check` gives it (it raises InvalidInput when not)."""
    try:
        check()
    except InvalidInput:
        return False
    return True


def lock_is_free(data_dir: Path) -> bool:
    with (data_dir / "lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


PERSONAS = str(Path(sys.executable).with_name("personas"))
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """This environment without the service's own variables: the test chooses them."""
    return {name: value for name, value in os.environ.items() if name not in ENVIRONMENT}


def run(*arguments: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PERSONAS, *arguments],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    data_dir: Path

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not become ready")

    def database_pid(self) -> int:
        pid: int = json.loads((self.data_dir / "server.json").read_text())["pid"]
        return pid

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, errors = self.process.communicate(timeout=20)
        return self.process.returncode, errors


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(
        [PERSONAS, "serve", "--port", str(port), "--data-dir", str(tmp_path)],
        env=clean_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Server(process, port, tmp_path)
    try:
        running.wait_until_ready()
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
