"""Real servers for tests that need sockets: an ASGI app served by uvicorn on 127.0.0.1 in
the test's event loop, a graphql-transport-ws client, and a webhook receiver."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[int]:
    """`app` served on 127.0.0.1 (its lifespan run by uvicorn); yields the port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.02)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    """Wait until `condition` holds (a bounded wait, never a speed assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


class Subscriber:
    """One graphql-transport-ws connection."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, port: int, token: str | None = None, **options: Any
    ) -> AsyncIterator[Subscriber]:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/graphql", subprotocols=[PROTOCOL], **options
        ) as connection:
            subscriber = cls(connection)
            payload = {} if token is None else {"Authorization": f"Bearer {token}"}
            await subscriber.send({"type": "connection_init", "payload": payload})
            acknowledged = await subscriber.receive()
            assert acknowledged["type"] == "connection_ack", acknowledged
            yield subscriber

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, seconds: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), seconds)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, operation: str = "1"
    ) -> None:
        await self.send(
            {
                "id": operation,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    async def events(self, count: int, seconds: float = 10.0) -> list[dict[str, Any]]:
        """The next `count` events (the `personaEvents` data of `next` messages)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            message = await self.receive(seconds)
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            found.append(message["payload"]["data"]["personaEvents"])
        return found


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A webhook endpoint that records what it receives and answers `status` (as it was when
    each request arrived)."""

    status: int = 204
    received: list[Received] = field(default_factory=list)
    delay: float = 0.0
    """Seconds to wait before answering."""
    location: str | None = None
    """A Location header to answer with (for redirects)."""
    elsewhere: int = 0
    """Requests that reached /elsewhere (where a followed redirect would go)."""

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            # the answer is the one set when the request arrived: a test that changes it on
            # seeing the request arrive changes the next answer, not this one
            status, location, delay = self.status, self.location, self.delay
            self.received.append(Received(dict(request.headers), body, time.monotonic()))
            await asyncio.sleep(delay)
            headers = {} if location is None else {"location": location}
            return Response(status_code=status, headers=headers)

        async def elsewhere(request: Request) -> Response:
            self.elsewhere += 1
            return Response(status_code=204)

        return Starlette(
            routes=[
                Route("/hook", hook, methods=["POST"]),
                Route("/elsewhere", elsewhere, methods=["GET", "POST"]),
            ]
        )
