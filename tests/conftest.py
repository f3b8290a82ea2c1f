"""Fixtures: one database server for the whole run, one database per test."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from personas.app import create_app
from personas.embedded import EmbeddedDatabase
from personas.settings import Settings
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
