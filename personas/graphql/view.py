"""The GraphQL endpoint's HTTP side: persisted queries, GET revalidation, our GraphiQL page,
and every refusal as a GraphQL error with a code."""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.ides import GraphQL_IDE
from strawberry.http.typevars import Context, RootValue
from strawberry.schema import BaseSchema

from personas.graphql import graphiql
from personas.graphql.persisted import PersistedQueries, PersistedQueryError, revalidated

REFUSAL_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
"""The code of a request strawberry refuses before it is a GraphQL operation."""


class PersistedGraphQL(GraphQL[Context, RootValue]):
    def __init__(
        self,
        schema: BaseSchema,
        graphql_ide: GraphQL_IDE | None,
        persisted: PersistedQueries,
    ) -> None:
        super().__init__(schema, graphql_ide=graphql_ide)
        self.persisted = persisted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        response: Response
        try:
            response = await self.run(request)
        except PersistedQueryError as error:
            response = _graphql_errors(error.status, error.code, error.message)
        except HTTPException as error:
            code = REFUSAL_CODES.get(error.status_code, "BAD_REQUEST")
            response = _graphql_errors(error.status_code, code, error.reason)
            if error.status_code == 405:
                response.headers["allow"] = "GET, POST"
        if (
            request.method == "GET"
            and response.status_code == 200
            and response.media_type == "application/json"
        ):
            response = revalidated(request.headers, response)
        await response(scope, receive, send)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):
            data.query = self.persisted.document(data.query, data.extensions)
        return data

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """A browser asking for a page, not a GET operation (with `query` or a hash only)."""
        parameters = request.query_params
        return (
            request.method == "GET"
            and parameters.get("query") is None
            and parameters.get("extensions") is None
            and "text/html" in request.headers.get("accept", "")
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql.page()


def _graphql_errors(status: int, code: str, message: str) -> Response:
    body: dict[str, Any] = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
