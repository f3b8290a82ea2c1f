"""The OpenAPI document: valid, complete, and true to the running API (schemathesis)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import unsupported_method
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from personas import domain, openapi
from personas.app import create_app
from personas.auth import generate_key
from personas.rest import handlers as rest
from personas.settings import Settings
from personas.store import PersonaStore

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


async def test_the_document_is_served_and_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert document == openapi.document()


def rest_operations(app: Starlette) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves under the REST prefix."""
    operations: set[tuple[str, str]] = set()
    for mount in app.routes:
        if not (isinstance(mount, Mount) and mount.path == rest.PREFIX):
            continue
        for route in mount.routes:
            assert isinstance(route, Route)
            assert route.methods is not None
            operations |= {
                (method.lower(), rest.PREFIX + route.path)
                for method in route.methods
                if method != "HEAD"
            }
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_the_document_describes_exactly_the_rest_routes(app: Starlette) -> None:
    served = rest_operations(app)
    assert ("post", "/v1/personas") in served
    assert ("delete", "/v1/personas/{id}") in served
    assert served == documented_operations(openapi.document())


# ---------------------------------------------------------------------------
# schemathesis: generated requests against the running app, checked against the document


class Deferred:
    """An ASGI app standing for one made later: the schema is loaded at import time, the app
    needs the database fixture."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the `api_key` fixture provides the app"
        await self.app(scope, receive, send)


DEFERRED = Deferred()
schema = schemathesis.openapi.from_dict(openapi.document())
HEADER_PATTERNS = {
    parameter["name"]: parameter["schema"]["pattern"]
    for parameter in openapi.document()["components"]["parameters"].values()
    if parameter["in"] == "header"
}
schema.app = DEFERRED


@pytest.fixture(scope="module")
async def api_key(mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """An app of its own behind DEFERRED, and an API key for it. schemathesis runs the app's
    lifespan (and so its store) on its own event loop."""
    configured = Settings(
        mongodb_uri=mongodb_uri,
        db_name=f"test_{uuid.uuid4().hex[:16]}",
        data_dir=Path(tmp_path_factory.mktemp("fuzz")),
        indexed_paths=("status",),
        # Room for the largest valid body even with every character \u-escaped.
        max_body_bytes=8 * 1024 * 1024,
    )
    store = PersonaStore.connect(mongodb_uri, configured.db_name, configured.db_timeout_ms)
    key = generate_key()
    await store.keys.create(key.id, key.secret_hash, "fuzz", frozenset({"read", "write"}), "fuzz")
    DEFERRED.app = create_app(configured)
    yield key.token
    asgi.shutdown_lifespans()
    DEFERRED.app = None
    try:
        fuzz = domain.Principal(tenant="fuzz", scopes=frozenset({"read"}))
        created = await store.count(fuzz, domain.persona_query())
        assert created > 0, "authenticated requests reached the database"
    finally:
        await store.drop_database()
        await store.close()


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_conforms_to_its_document(case: Any, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    response = case.call(headers=headers)
    excluded = []
    if case.query and "cursor" in case.query:
        # Only the server makes valid cursors: a generated one is rightly refused with 400.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if case.meta and any(info.mode.is_negative for info in case.meta.components.values()):
        # The coverage phase marks a case positive by its body even when a header it carries
        # was generated to break the schema (`If-Match: 0`), which is rightly refused with 400.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if any(name.split(".")[0] == "metadata" for name in case.query or ()):
        # The filters are one exploded object parameter. schemathesis sends it through
        # requests, which drops null values and turns numbers into text, so a generated
        # schema-violating object often arrives as a valid query string. Refusals of bad
        # filters are tested one by one in test_rest_errors.py.
        excluded.append(schemathesis.checks.negative_data_rejection)
    if any(
        not re.search(pattern, case.headers[name])
        for name, pattern in HEADER_PATTERNS.items()
        if name in (case.headers or {})
    ):
        # The coverage phase also combines optional headers with values that ignore their
        # pattern (`If-Match: 0` beside an Idempotency-Key) and still marks the case positive.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if response.status_code == 422 and "Idempotency-Key" in (case.headers or {}):
        # Generated cases share keys ("0") across different requests: rightly refused.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if response.status_code == 415 and case.method.upper() != case.operation.method.upper():
        # The app's JsonBodies middleware refuses a POST/PUT/PATCH without a JSON content
        # type before routing, so such an undeclared method gets 415 rather than 405.
        excluded.append(unsupported_method)
    case.validate_response(
        response, headers=headers, excluded_checks=excluded, transport_kwargs={"headers": headers}
    )
