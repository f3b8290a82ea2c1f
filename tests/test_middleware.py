"""The middleware on its own, around a bare endpoint: the access log, the body-size limit,
JSON-only bodies, and refusals shaped for the API a request addressed."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from personas.logs import JsonFormatter
from personas.middleware import AccessLog, RequestBodies, is_json, media_type


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"received": len(body)})


def wrapped(max_bytes: int = 100) -> Starlette:
    app = Starlette(
        routes=[
            Route("/graphql", echo, methods=["GET", "POST"]),
            Route("/v1/echo", echo, methods=["GET", "POST", "PUT"]),
        ]
    )
    app.add_middleware(RequestBodies, max_bytes=max_bytes)
    app.add_middleware(AccessLog)
    return app


@pytest.fixture
async def bare() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=wrapped())
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", "application/json"),
        ("Application/JSON; charset=utf-8", "application/json"),
        (" application/merge-patch+json ", "application/merge-patch+json"),
        ("", ""),
    ],
)
def test_the_media_type_is_read_once_without_parameters(header: str, expected: str) -> None:
    assert media_type(header) == expected


def test_json_media_types() -> None:
    assert is_json("application/json")
    assert is_json("application/problem+json")
    assert not is_json("text/plain")
    assert not is_json("application/x-www-form-urlencoded")


async def test_a_body_over_the_limit_is_413_in_the_shape_of_each_api(
    bare: httpx.AsyncClient,
) -> None:
    headers = {"content-type": "application/json"}
    rest = await bare.post("/v1/echo", content=b"x" * 101, headers=headers)
    assert rest.status_code == 413
    assert rest.headers["content-type"] == "application/problem+json"
    assert rest.headers["connection"] == "close"
    assert rest.json()["status"] == 413
    graphql = await bare.post("/graphql", content=b"x" * 101, headers=headers)
    assert graphql.status_code == 413
    assert graphql.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    within = await bare.post("/v1/echo", content=b"x" * 100, headers=headers)
    assert within.json() == {"received": 100}


async def test_a_streamed_body_over_the_limit_is_cut_off(bare: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 40

    response = await bare.post(
        "/v1/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_bodies_that_are_not_json_are_415(
    bare: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    for path in ("/v1/echo", "/graphql"):
        response = await bare.post(path, content=b"{}", headers=headers)
        assert response.status_code == 415, (path, content_type)
    refused = await bare.put("/v1/echo", content=b"{}", headers={"content-type": "text/plain"})
    assert refused.json()["detail"] == "send the request body as application/json, not text/plain"


async def test_requests_without_a_body_and_reads_pass(bare: httpx.AsyncClient) -> None:
    assert (await bare.post("/v1/echo")).json() == {"received": 0}
    assert (await bare.get("/v1/echo", headers={"content-type": "text/plain"})).status_code == 200


async def test_each_request_is_one_structured_access_log_line(
    bare: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="personas.access"):
        await bare.get("/v1/echo")
        await bare.post("/v1/echo", content=b"x", headers={"content-type": "text/plain"})
    records = [record for record in caplog.records if record.name == "personas.access"]
    lines = [json.loads(JsonFormatter().format(record)) for record in records]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/v1/echo", 200),
        ("POST", "/v1/echo", 415),
    ]
    assert all(line["duration_ms"] >= 0 and line["level"] == "info" for line in lines)
