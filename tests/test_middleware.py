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
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from personas.logs import JsonFormatter
from personas.middleware import AccessLog, Application, RequestBodies, is_json, media_type


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


async def fails(request: Request) -> Response:
    raise RuntimeError("a bug")


async def refuses(request: Request) -> Response:
    from starlette.exceptions import HTTPException

    raise HTTPException(int(request.query_params["status"]), headers={"X-Why": "asked"})


async def fails_after_starting(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("a bug after the response started")


def error_routes() -> list[BaseRoute]:
    return [
        Route("/fails", fails),
        Route("/refuses", refuses),
        Route("/health", echo, methods=["GET"]),
        Mount("/streams", fails_after_starting),
    ]


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nowhere"),  # the router's 404
        ("POST", "/health"),  # a route's 405, with Allow
        ("GET", "/refuses?status=409"),
        ("GET", "/refuses?status=304"),  # no body
        ("GET", "/fails"),  # 500
    ],
)
async def test_the_access_log_answers_errors_as_starlettes_error_layers_do(
    method: str, path: str
) -> None:
    ours = Application(routes=error_routes())
    ours.add_middleware(AccessLog)
    async with client(ours) as mine, client(Starlette(routes=error_routes())) as plain:
        got, expected = await mine.request(method, path), await plain.request(method, path)
    assert (got.status_code, got.content) == (expected.status_code, expected.content)
    assert got.headers == expected.headers


async def test_an_unexpected_error_is_answered_500_logged_and_raised_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Application(routes=error_routes())
    app.add_middleware(AccessLog)
    raising = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    with caplog.at_level(logging.INFO, logger="personas.access"):
        with pytest.raises(RuntimeError, match="a bug"):
            await raising.get("/fails")
        with pytest.raises(RuntimeError, match="after the response started"):
            await raising.get("/streams/x")
        async with client(app) as answered:
            response = await answered.get("/fails")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    records = [record for record in caplog.records if record.name == "personas.access"]
    statuses = [record.__dict__["status"] for record in records]
    assert statuses == [500, 200, 500]  # the status sent, or 500 when none was


def test_the_application_takes_no_exception_handlers() -> None:
    async def not_found(request: Request, error: Exception) -> Response:
        return Response(status_code=404)

    app = Application(routes=error_routes(), exception_handlers={404: not_found})
    with pytest.raises(ValueError, match="no exception handlers"):
        app.build_middleware_stack()


@pytest.mark.parametrize(
    ("headers", "counted"),
    [
        ([(b"content-length", b"60")], False),  # the server reads no more than 60 bytes
        ([(b"content-length", b"60"), (b"transfer-encoding", b"chunked")], True),
        ([(b"content-length", b"60"), (b"content-length", b"60")], True),
        ([(b"transfer-encoding", b"chunked")], True),
    ],
)
async def test_a_body_is_counted_unless_one_content_length_bounds_it(
    headers: list[tuple[bytes, bytes]], counted: bool
) -> None:
    """Three chunks of 60 bytes against a limit of 100: refused as they arrive when counted."""
    chunks = [b"x" * 60] * 3
    sent: list[Message] = []

    async def receive() -> Message:
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/echo",
        "headers": [(b"content-type", b"application/json"), *headers],
    }
    await RequestBodies(read_all, max_bytes=100)(scope, receive, send)
    assert sent[0]["status"] == (413 if counted else 200)


async def read_all(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})
