"""The ASGI application: GraphQL, REST and health routes over one database client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from personas import domain
from personas.auth import Authentication, Authenticator, is_loopback
from personas.graphql.schema import build_schema
from personas.graphql.types import Context
from personas.middleware import AccessLog, BodyLimit, JsonBodies
from personas.notifications import runtime
from personas.rest.routes import routes as rest_routes
from personas.settings import Settings
from personas.store import PersonaStore


class PersonaGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Any, response: Any) -> Context:
        state = request.app.state
        if isinstance(request, WebSocket):
            authenticator: Authenticator = state.authenticator
            return Context(
                store=state.store,
                principal=domain.NOBODY,
                notifications=state.notifications,
                disconnect=lambda code, reason: request.close(code, reason),
                authenticate=authenticator.principal,
                cache_labels=False,
            )
        principal = getattr(request.state, "principal", domain.NOBODY)
        return Context(store=state.store, principal=principal, notifications=state.notifications)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """The API key comes in connection_init: {"Authorization": "Bearer <key>"}; without
        one, the rules of anonymous access apply. Refused: closed with 4403."""
        params = context.connection_params or {}
        authorization = params.get("Authorization", params.get("authorization"))
        if authorization is not None and not isinstance(authorization, str):
            raise ConnectionRejectionError({"message": "Authorization must be a string"})
        assert context.authenticate is not None
        try:
            context.principal = await context.authenticate(authorization)
        except (domain.Unauthenticated, domain.Unavailable) as error:
            raise ConnectionRejectionError({"message": error.message}) from None
        return await super().on_ws_connect(context)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            return  # the caller left before sending its request: nobody to answer


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    store: PersonaStore = request.app.state.store
    if await store.ping():
        return JSONResponse({"status": "ready", "database": "ok"})
    return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)


def anonymous_allowed(settings: Settings) -> bool:
    """Without keys, only a server bound to loopback serves anonymous callers."""
    return settings.auth == "auto" and is_loopback(settings.host)


def create_app(settings: Settings) -> Starlette:
    if settings.mongodb_uri is None:
        raise ValueError("settings.mongodb_uri must be set (serve starts the embedded database)")
    uri = settings.mongodb_uri

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = PersonaStore.connect(
            uri,
            settings.db_name,
            settings.db_timeout_ms,
            settings.indexed_paths,
            settings.approval_policy,
            settings.event_retention_days,
        )
        app.state.store = store
        app.state.authenticator = Authenticator(store, anonymous_allowed(settings))
        try:
            await store.prepare()
            async with runtime.running(store, settings) as notifications:
                app.state.notifications = notifications
                yield
        finally:
            await store.close()

    graphql = PersonaGraphQL(
        build_schema(settings),
        graphql_ide="graphiql" if settings.graphiql and not settings.production else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        max_subscriptions_per_connection=settings.subscriptions_per_connection,
        connection_init_wait_timeout=timedelta(seconds=10),
    )
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *rest_routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(Authentication)
    app.add_middleware(JsonBodies)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    return app


def app_from_environment() -> Starlette:
    """The uvicorn factory: `serve` hands the configuration over in the environment."""
    return create_app(Settings.from_env())
