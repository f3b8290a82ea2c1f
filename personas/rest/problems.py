"""Problem details (RFC 9457): the one status table, and the exception handlers that turn
everything going wrong under /v1 into a problem, here and only here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from personas import domain
from personas.domain import DomainError, InvalidInput

log = logging.getLogger("personas.rest")

PROBLEM: Final = "application/problem+json"

STATUS: Final[Mapping[type[DomainError], int]] = {
    domain.InvalidInput: 400,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Unavailable: 503,
}
"""The status of each expected error. Bad bodies are 400 like every other bad input."""


class PreconditionFailed(Exception):
    """If-Match named another version than the persona's: 412, where GraphQL says CONFLICT."""

    status = 412

    def __init__(self, detail: str, current_version: int | None) -> None:
        self.detail = detail
        self.current_version = current_version
        super().__init__(detail)


class BodyTooLarge(Exception):
    status = 413

    def __init__(self, max_bytes: int) -> None:
        self.detail = f"the request body exceeds {max_bytes} bytes"
        super().__init__(self.detail)


def problem_body(status: int, title: str, detail: str, **extra: object) -> bytes:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return orjson.dumps(body)


def problem(
    status: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """An RFC 9457 problem; its title is the status phrase."""
    body = problem_body(status, HTTPStatus(status).phrase, detail, **extra)
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_of(error: DomainError) -> int:
    return next(code for kind, code in STATUS.items() if isinstance(error, kind))


async def domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    extra: dict[str, Any] = {}
    if isinstance(error, InvalidInput):
        extra["errors"] = domain.field_errors(error)
    if isinstance(error, domain.Conflict) and error.current_version is not None:
        extra["current_version"] = error.current_version
    return problem(status_of(error), error.message, **extra)


async def http_error(request: Request, error: Exception) -> Response:
    """Routing refusals: no such resource (404), method not allowed (405)."""
    assert isinstance(error, HTTPException)
    detail = error.detail
    if error.status_code == 404:
        detail = f"there is no resource at {request.url.path}"
    elif error.status_code == 405 and error.headers:
        detail = f"{request.method} is not allowed here; allowed: {error.headers['Allow']}"
    return problem(error.status_code, detail, error.headers)


async def precondition_failed(request: Request, error: Exception) -> Response:
    assert isinstance(error, PreconditionFailed)
    return problem(412, error.detail, current_version=error.current_version)


async def body_too_large(request: Request, error: Exception) -> Response:
    assert isinstance(error, BodyTooLarge)
    return problem(413, error.detail, {"Connection": "close"})


async def unexpected_error(request: Request, error: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(500, "Unexpected error.")


EXCEPTION_HANDLERS: Final = {
    HTTPException: http_error,
    DomainError: domain_error,
    PreconditionFailed: precondition_failed,
    BodyTooLarge: body_too_large,
    Exception: unexpected_error,
}
