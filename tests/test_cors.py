"""CORS: the configured origins' pages may call the API; no other origin gets CORS headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from personas.app import create_app
from personas.settings import Settings

APP_ORIGIN = "http://localhost:3000"


@pytest.fixture
async def cors(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.replace(cors_origins=(APP_ORIGIN, "https://app.example.com")))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http
        await app.state.store.drop_database()


def preflight(origin: str, method: str = "POST", headers: str = "") -> dict[str, str]:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers:
        asked["access-control-request-headers"] = headers
    return asked


@pytest.mark.parametrize(
    ("path", "method"),
    [("/graphql", "POST"), ("/v1/personas", "POST"), ("/v1/personas/abc", "PATCH")],
)
async def test_a_preflight_from_an_allowed_origin_is_answered(
    cors: httpx.AsyncClient, path: str, method: str
) -> None:
    asked = "authorization, content-type, idempotency-key, if-match, if-none-match"
    response = await cors.options(path, headers=preflight(APP_ORIGIN, method, asked))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert method in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "idempotency-key", "if-match", "if-none-match"):
        assert header in allowed
    assert "access-control-allow-credentials" not in response.headers


async def test_a_disallowed_origin_gets_no_cors_headers(cors: httpx.AsyncClient) -> None:
    refused = await cors.options("/graphql", headers=preflight("https://evil.example"))
    assert refused.status_code == 400
    assert not [name for name in refused.headers if name.startswith("access-control-")]
    simple = await cors.post(
        "/graphql",
        json={"query": "{ personas { totalCount } }"},
        headers={"origin": "https://evil.example"},
    )
    assert not [name for name in simple.headers if name.startswith("access-control-")]


async def test_a_header_not_allowed_is_refused(cors: httpx.AsyncClient) -> None:
    response = await cors.options("/graphql", headers=preflight(APP_ORIGIN, "POST", "x-custom"))
    assert response.status_code == 400


async def test_answers_to_an_allowed_origin_expose_the_etag(cors: httpx.AsyncClient) -> None:
    created = await cors.post(
        "/v1/personas", json={"name": "n", "content": "c"}, headers={"origin": APP_ORIGIN}
    )
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "etag" in created.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-credentials" not in created.headers
    answered = await cors.get(
        "/graphql",
        params={"query": "{ personas { totalCount } }"},
        headers={"origin": APP_ORIGIN},
    )
    assert answered.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "Origin" in answered.headers["vary"]


async def test_without_origins_there_is_no_cors(client: httpx.AsyncClient) -> None:
    response = await client.options("/graphql", headers=preflight(APP_ORIGIN))
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers
