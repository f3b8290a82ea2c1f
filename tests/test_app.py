import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message


async def test_healthz_answers_while_the_process_lives(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_pings_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def graphql_post(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of a POST to /graphql from a loopback caller."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }


async def test_a_caller_leaving_before_its_body_is_not_an_error(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = graphql_post([(b"content-type", b"application/json"), (b"content-length", b"40")])
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not [message for message in sent if message["type"] == "http.response.start"]


async def call_in_chunks(app: Starlette, body: bytes, pieces: int) -> tuple[int, bytes]:
    """A POST to /graphql whose body arrives in `pieces` messages (no Content-Length)."""
    size = -(-len(body) // pieces)
    chunks = [body[start : start + size] for start in range(0, len(body), size)]
    sent: list[Message] = []

    async def receive() -> Message:
        if not chunks:
            return {"type": "http.disconnect"}
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = graphql_post([(b"content-type", b"application/json")])
    await app(scope, receive, send)
    [start] = [message for message in sent if message["type"] == "http.response.start"]
    body_sent = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body_sent


@pytest.mark.parametrize("pieces", [1, 3])
async def test_a_graphql_body_is_read_whole_however_it_arrives(app: Starlette, pieces: int) -> None:
    status, body = await call_in_chunks(app, b'{"query": "{ __typename }"}', pieces)
    assert (status, body) == (200, b'{"data":{"__typename":"Query"}}')
    # a batch is read once, then answered by strawberry's own way, which reads it again
    status, body = await call_in_chunks(app, b'[{"query": "{ __typename }"}]', pieces)
    assert status == 400
    assert b"Batching is not enabled" in body
