"""The GraphQL endpoint's HTTP side: persisted queries, GET revalidation, our GraphiQL page,
and every refusal as a GraphQL error with a code."""

from __future__ import annotations

from typing import Any, Final

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.ides import GraphQL_IDE
from strawberry.http.typevars import Context, RootValue
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from personas.graphql import graphiql
from personas.graphql.persisted import PersistedQueries, PersistedQueryError, revalidated
from personas.middleware import media_type

POST_OPERATIONS: Final = frozenset(OperationType.from_http("POST"))
QUERY_TYPE: Final = "The GraphQL operation's `query` must be a string or null, if provided."
VARIABLES_TYPE: Final = (
    "The GraphQL operation's `variables` must be an object or null, if provided."
)
EXTENSIONS_TYPE: Final = (
    "The GraphQL operation's `extensions` must be an object or null, if provided."
)
"""strawberry's refusals of request objects with members of the wrong type."""

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
        self.streams = any(
            protocol in self.stream_transport_classes_by_protocol for protocol in self.protocols
        )
        """Whether a POST may ask for a streaming protocol (strawberry's own way answers it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        method = scope["method"]
        response: Response | bytes
        try:
            if method == "POST":
                response = await self.post(request)
            else:
                response = await self.run(request)
        except PersistedQueryError as error:
            response = _graphql_errors(error.status, error.code, error.message)
        except HTTPException as error:
            code = REFUSAL_CODES.get(error.status_code, "BAD_REQUEST")
            response = _graphql_errors(error.status_code, code, error.reason)
            if error.status_code == 405:
                response.headers["allow"] = "GET, POST"
        if isinstance(response, bytes):
            await _answer_json(send, response)
            return
        if (
            method == "GET"
            and response.status_code == 200
            and response.media_type == "application/json"
        ):
            response = revalidated(request.headers, response)
        await response(scope, receive, send)

    async def post(self, request: Request) -> Response | bytes:
        """A POST request: what strawberry's view does with a JSON request object, in fewer
        steps (the middleware has already checked the media type and the body's size). The
        operation runs in `operation_context` and gets no sub-response: its answer is the
        result alone, JSON with status 200 (the bytes of its body). Anything else posted (a
        batch, another media type, a streaming protocol) takes strawberry's own way, to the
        same answer as before."""
        if self.streams or "application/json" not in media_type(
            request.headers.get("content-type", "")
        ):
            return await self.run(request)
        data = self.parse_json(await body_of(request))
        if not isinstance(data, dict):
            return await self.run(request)  # a batch: refused there, as batching is off
        query, variables, extensions = (
            data.get("query"),
            data.get("variables"),
            data.get("extensions"),
        )
        if not isinstance(query, str | None):
            raise HTTPException(400, QUERY_TYPE)
        if not isinstance(variables, dict | None):
            raise HTTPException(400, VARIABLES_TYPE)
        if not isinstance(extensions, dict | None):
            raise HTTPException(400, EXTENSIONS_TYPE)
        query = self.persisted.document(query, extensions)
        context = self.operation_context(request)
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                root_value=await self.get_root_value(request),
                operation_name=data.get("operationName"),
                allowed_operation_types=POST_OPERATIONS,
                operation_extensions=extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason("POST")) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        encoded = self.encode_json(response_data)
        return encoded if isinstance(encoded, bytes) else encoded.encode()

    def operation_context(self, request: Request) -> Context:
        """The context of an operation posted as JSON (the view's subclass knows its shape)."""
        raise NotImplementedError

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


async def body_of(request: Request) -> bytes:
    """What `request.body()` answers, read without the async generator it makes for every
    request (which the event loop registers and finalizes): the chunks joined, and kept on
    the request where Starlette keeps them, so that strawberry's own way reads the same body
    again; `ClientDisconnect` when the caller left first."""
    read: bytes | None = getattr(request, "_body", None)
    if read is not None:
        return read
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
    request._stream_consumed = True
    request._body = body = b"".join(chunks)
    return body


async def _answer_json(send: Send, body: bytes) -> None:
    """`Response(body, media_type="application/json")` as Starlette sends it: the same two
    messages, without building the response object."""
    headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _graphql_errors(status: int, code: str, message: str) -> Response:
    body: dict[str, Any] = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
