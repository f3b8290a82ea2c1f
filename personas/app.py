"""The ASGI application: GraphQL, REST and health routes over one database client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
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
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from personas import bodies, domain
from personas.auth import Authentication, Authenticator, is_loopback, principal_of
from personas.availability import RETRY_AFTER_SECONDS, DatabaseStatus, prepare
from personas.cors import Cors
from personas.graphql import graphiql
from personas.graphql.persisted import PersistedQueries, load_registered
from personas.graphql.schema import build_schema
from personas.graphql.types import Context
from personas.graphql.view import PersistedGraphQL
from personas.guard import RequestGuard
from personas.middleware import AccessLog, Application, RequestBodies
from personas.notifications import runtime
from personas.rest.routes import routes as rest_routes
from personas.settings import Settings
from personas.shutdown import Drain, shutdown_plan
from personas.store import PersonaStore

log = logging.getLogger("personas.app")


class PersonaGraphQL(PersistedGraphQL[Context, None]):
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
        return self.operation_context(request)

    def operation_context(self, request: Request) -> Context:
        state = request.app.state
        principal = principal_of(request.scope)
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

    def decode_json(self, data: str | bytes) -> object:
        return bodies.parse_json(data, strict=False)

    def parse_json(self, data: str | bytes) -> Any:
        """A request body: a JSON object (a list is a batch, refused by strawberry)."""
        body = self.decode_json(data)
        if not isinstance(body, dict | list):
            raise domain.InvalidInput("body", 'must be a JSON object: {"query": "..."}')
        return body

    def parse_query_params(self, params: Mapping[str, str | None]) -> dict[str, Any]:
        """GET parameters; `variables` and `extensions` are JSON, read by the same parser."""
        parsed: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if parsed.get(name):
                parsed[name] = bodies.parse_json(parsed[name], name, strict=False)
        return parsed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            return  # the caller left before sending its request: nobody to answer
        except domain.InvalidInput as error:  # a request refused before it was GraphQL
            await bad_request(error)(scope, receive, send)


def bad_request(error: domain.InvalidInput) -> Response:
    """A request refused before it was a GraphQL operation (e.g. a body too deep), as a
    GraphQL error with its code and field."""
    extensions = {"code": error.code, "field": error.field}
    body = orjson.dumps({"errors": [{"message": error.message, "extensions": extensions}]})
    return Response(body, status_code=400, media_type="application/json")


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


def create_app(settings: Settings, stop_signals: bool = False) -> Application:
    """The application; with `stop_signals`, SIGTERM and SIGINT start its drain (the
    server's own handlers still run)."""
    if settings.mongodb_uri is None:
        raise ValueError("settings.mongodb_uri must be set (serve starts the embedded database)")
    uri = settings.mongodb_uri
    plan = shutdown_plan(settings.shutdown_timeout)

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
        if stop_signals:
            app.state.drain.install()
        preparing = None
        try:
            preparing = await prepare(store)
            async with runtime.running(store, settings) as notifications:
                app.state.notifications = notifications
                yield
        finally:
            if preparing is not None:
                preparing.cancel()
            app.state.drain.uninstall()
            try:
                await asyncio.wait_for(store.close(), plan.close)
            except TimeoutError:
                log.warning("the database client did not close within %g s", plan.close)

    with_graphiql = settings.graphiql and not settings.production
    registered = settings.persisted_queries
    graphql = PersonaGraphQL(
        build_schema(settings),
        graphql_ide="graphiql" if with_graphiql else None,
        persisted=PersistedQueries(
            settings.persisted_query_cache_size,
            None if registered is None else load_registered(registered),
            only=settings.persisted_only,
        ),
    )
    graphql.protocols = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
    graphql.max_subscriptions_per_connection = settings.subscriptions_per_connection
    graphql.connection_init_wait_timeout = timedelta(seconds=10)
    # The router tries routes in order and no two of these paths overlap: the busiest first.
    routes: list[BaseRoute] = [
        Route("/graphql", graphql),  # GET and POST; the view refuses others in GraphQL's shape
        *rest_routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        WebSocketRoute("/graphql", graphql),  # subscriptions: graphql-transport-ws
    ]
    if with_graphiql:
        routes.append(graphiql.assets())
    app = Application(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.database_status = DatabaseStatus(settings.data_dir, uri)
    app.state.drain = Drain(plan.drain)
    app.add_middleware(Authentication)
    app.add_middleware(RequestBodies, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestGuard, limit=settings.db_timeout_ms / 1000)
    if settings.cors_origins:
        app.add_middleware(Cors, origins=settings.cors_origins)
    app.add_middleware(AccessLog)  # outermost: it is also the last resort for errors
    return app


def app_from_environment() -> Starlette:
    """The uvicorn factory: `serve` hands the configuration over in the environment."""
    return create_app(Settings.from_env(), stop_signals=True)
