"""Problem details (RFC 9457): the one status table, and the exception handlers that turn
everything going wrong under /v1 into a problem, here and only here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from personas import domain
from personas.availability import RETRY_AFTER_SECONDS
from personas.domain import DomainError, InvalidInput, Unavailable

log = logging.getLogger("personas.rest")

PROBLEM: Final = "application/problem+json"


class PreconditionFailed(Exception):
    """If-Match named another version than the persona's: 412, where GraphQL says CONFLICT."""

    def __init__(self, detail: str, current_version: int | None) -> None:
        self.detail = detail
        self.current_version = current_version
        super().__init__(detail)


class BodyTooLarge(Exception):
    def __init__(self, max_bytes: int) -> None:
        self.detail = f"the request body exceeds {max_bytes} bytes"
        super().__init__(self.detail)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A status the REST API answers with a problem: what it means here, the errors shown
    with it, and the headers it carries."""

    status: int
    name: str
    description: str
    raised_by: tuple[type[Exception], ...] = ()
    headers: tuple[str, ...] = ()
    everywhere: bool = False
    """Any operation behind authentication may answer it."""


REFUSALS: Final = (
    Refusal(
        400,
        "BadRequest",
        "Bad input: malformed JSON, an unknown field or parameter, or a broken rule.",
        (domain.InvalidInput,),
    ),
    Refusal(
        401,
        "Unauthorized",
        "Missing, malformed, unknown or revoked API key.",
        (domain.Unauthenticated,),
        ("WWW-Authenticate",),
        everywhere=True,
    ),
    Refusal(
        403,
        "Forbidden",
        "The API key lacks the scope this needs.",
        (domain.Forbidden,),
        everywhere=True,
    ),
    Refusal(
        404,
        "NotFound",
        "No persona with this id (or no such version of it).",
        (domain.NotFound,),
    ),
    Refusal(
        405,
        "MethodNotAllowed",
        "The resource does not take this method; Allow lists those it takes.",
        headers=("Allow",),
    ),
    Refusal(
        409,
        "Conflict",
        "The persona changed while the change was applied.",
        (domain.Conflict,),
    ),
    Refusal(
        412,
        "PreconditionFailed",
        "If-Match named another version than the persona's (`current_version`); nothing was "
        "written.",
        (PreconditionFailed,),
    ),
    Refusal(
        413,
        "ContentTooLarge",
        "The request body is over the size limit.",
        (BodyTooLarge,),
    ),
    Refusal(
        415,
        "UnsupportedMediaType",
        "The body is not sent as application/json (for PATCH: not as "
        "application/merge-patch+json).",
        headers=("Accept-Patch",),
    ),
    Refusal(
        422,
        "UnprocessableContent",
        "The Idempotency-Key was already used for a different request; nothing was written.",
        (domain.KeyReused,),
    ),
    Refusal(
        500,
        "InternalServerError",
        "Unexpected error (details are logged).",
        everywhere=True,
    ),
    Refusal(
        503,
        "ServiceUnavailable",
        "The database is unavailable; try again.",
        (domain.Unavailable,),
        everywhere=True,
    ),
)
"""The one status table: every problem the REST API answers with. Expected errors take the
status of the row that names them; routing answers 404, 405 and 415 itself. Bad bodies are
400 like every other bad input."""


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


def status_of(error: Exception) -> int:
    """The status of an expected error, from the status table: the row naming its most
    specific class (an idempotency key reused is bad input, but answered 422)."""
    return next(
        refusal.status
        for kind in type(error).__mro__
        for refusal in REFUSALS
        if kind in refusal.raised_by
    )


async def domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    extra: dict[str, Any] = {}
    if isinstance(error, InvalidInput):
        extra["errors"] = domain.field_errors(error)
    if isinstance(error, domain.Conflict) and error.current_version is not None:
        extra["current_version"] = error.current_version
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(error, Unavailable) else None
    return problem(status_of(error), error.message, headers, **extra)


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
    known: dict[str, Any] = {}
    if error.current_version is not None:
        known["current_version"] = error.current_version
    return problem(status_of(error), error.detail, None, **known)


async def body_too_large(request: Request, error: Exception) -> Response:
    assert isinstance(error, BodyTooLarge)
    return problem(status_of(error), error.detail, {"Connection": "close"})


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


async def answer(request: Request, error: Exception) -> Response:
    """The answer to an error a REST handler raised: the handler of its most specific class
    in `EXCEPTION_HANDLERS` (`Exception` last: logged, and answered 500)."""
    handler = next(
        EXCEPTION_HANDLERS[kind] for kind in type(error).__mro__ if kind in EXCEPTION_HANDLERS
    )
    return await handler(request, error)
