"""Refusals sent before a request reaches its route, shaped for the API it addressed."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

PROBLEM = "application/problem+json"


def problem_body(status: int, title: str, detail: str, **extra: object) -> bytes:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return orjson.dumps(body)


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


class JsonBodies:
    """POST, PUT and PATCH bodies must be JSON (`application/json` or `application/*+json`);
    a request with neither body nor media type goes on, to be answered by its route.

    Refusing every other media type with 415 also stops cross-site form posts: a
    browser cannot send JSON to another origin without a preflight.
    """

    METHODS = frozenset({"POST", "PUT", "PATCH"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self.METHODS:
            media_type = ""
            has_body = False
            for name, value in scope["headers"]:
                if name == b"content-type":
                    media_type = value.decode("latin-1").partition(";")[0].strip().lower()
                elif name == b"transfer-encoding" or (
                    name == b"content-length" and value.strip() not in (b"", b"0")
                ):
                    has_body = True
            if (has_body or media_type) and not is_json(media_type):
                await refuse(
                    scope,
                    send,
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Unsupported media type",
                    f"send the request body as application/json, not {media_type or 'nothing'}",
                )
                return
        await self.app(scope, receive, send)


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
