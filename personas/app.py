"""The ASGI application: GraphQL, REST and health routes over one database client."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from personas import domain, rest
from personas.auth import Authentication, Authenticator, is_loopback
from personas.availability import RETRY_AFTER_SECONDS, DatabaseStatus, prepare
from personas.guard import RequestGuard
from personas.http import JsonBodies
from personas.resolvers import build_schema
from personas.schema import Context
from personas.settings import Settings
from personas.shutdown import Drain, shutdown_plan
from personas.store import PersonaStore

access_log = logging.getLogger("personas.access")
log = logging.getLogger("personas.app")


class PersonaGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Any, response: Any) -> Context:
        principal = getattr(request.state, "principal", domain.NOBODY)
        return Context(store=request.app.state.store, principal=principal)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            return  # the caller left before sending its request: nobody to answer


class AccessLog:
    """One structured log line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )


async def healthz(request: Request) -> Response:
    status: DatabaseStatus = request.app.state.database_status
    if status.failed:
        return JSONResponse({"status": "unhealthy", "database": "failed"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    store: PersonaStore = request.app.state.store
    status: DatabaseStatus = request.app.state.database_status
    if request.app.state.drain.draining:
        return _unready({"status": "stopping"})
    if status.unavailable:
        return _unready({"status": "unavailable", "database": status.state()})
    if await store.ping():
        return JSONResponse({"status": "ready", "database": "ok"})
    return _unready({"status": "unavailable", "database": "unreachable"})


def _unready(body: dict[str, Any]) -> Response:
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def anonymous_allowed(settings: Settings) -> bool:
    """Without keys, only a server bound to loopback serves anonymous callers."""
    return settings.auth == "auto" and is_loopback(settings.host)


def create_app(settings: Settings, stop_signals: bool = False) -> Starlette:
    """The application; with `stop_signals`, SIGTERM and SIGINT start its drain (the
    server's own handlers still run)."""
    if settings.mongodb_uri is None:
        raise ValueError("settings.mongodb_uri must be set (serve starts the embedded database)")
    uri = settings.mongodb_uri
    plan = shutdown_plan(settings.shutdown_timeout)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = PersonaStore.connect(
            uri, settings.db_name, settings.db_timeout_ms, settings.indexed_paths
        )
        app.state.store = store
        app.state.authenticator = Authenticator(store, anonymous_allowed(settings))
        if stop_signals:
            app.state.drain.install()
        preparing = None
        try:
            preparing = await prepare(store)
            yield
        finally:
            if preparing is not None:
                preparing.cancel()
            app.state.drain.uninstall()
            try:
                await asyncio.wait_for(store.close(), plan.close)
            except TimeoutError:
                log.warning("the database client did not close within %g s", plan.close)

    graphql = PersonaGraphQL(
        build_schema(settings),
        graphql_ide="graphiql" if settings.graphiql and not settings.production else None,
    )
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        *rest.routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.database_status = DatabaseStatus(settings.data_dir, uri)
    app.state.drain = Drain(plan.drain)
    app.add_middleware(Authentication)
    app.add_middleware(JsonBodies)
    app.add_middleware(rest.BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestGuard, limit=settings.db_timeout_ms / 1000)
    app.add_middleware(AccessLog)
    return app


def app_from_environment() -> Starlette:
    """The uvicorn factory: `serve` hands the configuration over in the environment."""
    return create_app(Settings.from_env(), stop_signals=True)
