"""HTTP middleware, outermost first: the access log, which is also the last resort for
errors; the request body checks (JSON only, bounded in size). Refusals made here are shaped
for the API a request addressed."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from http import HTTPStatus

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personas.logs import log_fields
from personas.rest.problems import PROBLEM, BodyTooLarge, problem_body

access_log = logging.getLogger("personas.access")


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, without parameters, lowercased."""
    return content_type.partition(";")[0].strip().lower()


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def refuse(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """GraphQL callers get `{"errors": [...]}` with `extensions.code`; others a problem."""
    if scope["path"].startswith("/graphql"):
        content_type = b"application/json"
        body = orjson.dumps({"errors": [{"message": detail, "extensions": {"code": code}}]})
    else:
        content_type = PROBLEM.encode()
        body = problem_body(status, title, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AccessLog:
    """One structured log line per HTTP request, and the last resort for its errors, in place
    of the two error layers Starlette puts around every application (`Application`):

    - an `HTTPException` that reaches it (the router's 404 and 405 outside `/v1`) is answered
      as Starlette's exception layer answers it;
    - any other exception is answered `500 Internal Server Error`, as Starlette's server error
      layer answers it, and raised on, for the server to log.

    Either is answered only when no response has started, by Starlette's own handlers; the
    line records the status sent, or 500 when none was.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._answers = ExceptionMiddleware(app)  # only their handlers are called
        self._last_resort = ServerErrorMiddleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except HTTPException as error:
            if status is not None:
                raise
            answer = await self._answers.http_exception(Request(scope, receive), error)
            await answer(scope, receive, send_with_status)
        except Exception as error:
            if status is None:
                answer = self._last_resort.error_response(Request(scope, receive), error)
                await answer(scope, receive, send_with_status)
            raise
        finally:
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": 500 if status is None else status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            log_fields(access_log, logging.INFO, "request", fields, flush="soon")


class Application(Starlette):
    """Starlette, with the application's own middleware only: `AccessLog`, outermost, does
    what Starlette's server error and exception layers did (the application registers no
    exception handlers; routes and the REST resources answer their own errors)."""

    def build_middleware_stack(self) -> ASGIApp:
        if self.exception_handlers or self.max_body_size is not None:
            raise ValueError(
                "Application takes no exception handlers and no max_body_size: AccessLog "
                "answers errors, and RequestBodies bounds bodies"
            )
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


class RequestBodies:
    """What a request may send, checked before its route runs:

    - POST, PUT and PATCH bodies must be JSON (`application/json` or `application/*+json`),
      or 415; a request with neither body nor media type goes on, to be answered by its
      route. Refusing every other media type also stops cross-site form posts: a browser
      cannot send JSON to another origin without a preflight.
    - A body over `max_bytes` is refused with 413 before more of it is read: at once by
      its Content-Length, or as it arrives when it has none (chunked). A body of one valid
      Content-Length within the limit is not counted again: the server reads no more.
    """

    METHODS = frozenset({"POST", "PUT", "PATCH"})

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        has_body = False
        lengths = 0
        valid_length = False
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                valid_length = value.isdigit()
                if valid_length and int(value) > self.max_bytes:
                    await self._too_large(scope, send)
                    return
                has_body = has_body or value.strip() not in (b"", b"0")
                lengths += 1
            elif name == b"transfer-encoding":
                has_body = chunked = True
            elif name == b"content-type":
                given = media_type(value.decode("latin-1"))
        if scope["method"] in self.METHODS and (has_body or given) and not is_json(given):
            await refuse(
                scope,
                send,
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "Unsupported media type",
                f"send the request body as application/json, not {given or 'nothing'}",
            )
            return
        if not has_body or (lengths == 1 and valid_length and not chunked):
            # RFC 9112 §6.3: with neither header, the body is empty; with one Content-Length
            # (checked above) and no Transfer-Encoding, the server reads that many bytes
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await refuse(
            scope,
            send,
            413,
            "PAYLOAD_TOO_LARGE",
            HTTPStatus(413).phrase,
            BodyTooLarge(self.max_bytes).detail,
            [(b"connection", b"close")],
        )
