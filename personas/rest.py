"""The REST API of the original design: /v1/personas over the same domain rules and store."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final, TypeVar

import orjson
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personas import domain, openapi
from personas.availability import RETRY_AFTER_SECONDS
from personas.domain import DomainError, FilterSpec, InvalidInput, Operator, SortField
from personas.http import PROBLEM, problem_body, refuse
from personas.store import PersonaStore

log = logging.getLogger("personas.rest")

T = TypeVar("T")

PREFIX: Final = "/v1"
FIELDS: Final = ("name", "content", "metadata")
"""What a POST or PUT body may hold."""
VERSION_MAX: Final = domain.INT64_MAX
MERGE_PATCH: Final = "application/merge-patch+json"
"""The one media type PATCH takes: a JSON merge patch (RFC 7396)."""

STATUS: Final[Mapping[type[DomainError], int]] = {
    domain.InvalidInput: 400,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Unavailable: 503,
}
"""The status of each expected error. Bad bodies are 400 like every other bad input."""


# ---------------------------------------------------------------------------
# Responses


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem(
    status: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """An RFC 9457 problem; its title is the status phrase."""
    body = problem_body(status, HTTPStatus(status).phrase, detail, **extra)
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC, to the millisecond MongoDB keeps: 2025-01-15T14:30:00.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def persona_json(persona: domain.Persona) -> dict[str, Any]:
    return {
        "id": persona.id,
        "name": persona.name,
        "content": persona.content,
        "metadata": persona.metadata,
        "version": persona.version,
        "created_at": timestamp(persona.created_at),
        "updated_at": timestamp(persona.updated_at),
    }


def revision_json(revision: domain.Revision) -> dict[str, Any]:
    return {
        "persona_id": revision.persona_id,
        "version": revision.version,
        "name": revision.name,
        "content": revision.content,
        "metadata": revision.metadata,
        "operation": revision.operation.value,
        "actor": revision.actor,
        "created_at": timestamp(revision.created_at),
    }


def location(persona_id: str) -> str:
    return f"{PREFIX}/personas/{persona_id}"


def entity_tag(version: int) -> str:
    """A persona's strong entity tag: its version in quotes."""
    return f'"{version}"'


def persona_response(
    persona: domain.Persona, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A persona, with its version as the ETag."""
    return JSONResponse(
        persona_json(persona),
        status_code=status_code,
        headers={**(headers or {}), "ETag": entity_tag(persona.version)},
    )


# ---------------------------------------------------------------------------
# Errors: everything that goes wrong under /v1 becomes a problem here, and only here


async def domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    status = next(code for kind, code in STATUS.items() if isinstance(error, kind))
    extra: dict[str, Any] = {}
    if isinstance(error, InvalidInput):
        extra["errors"] = domain.field_errors(error)
    if isinstance(error, domain.Conflict) and error.current_version is not None:
        extra["current_version"] = error.current_version
    headers = (
        {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(error, domain.Unavailable) else None
    )
    return problem(status, error.message, headers, **extra)


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


class BodyTooLarge(Exception):
    def __init__(self, max_bytes: int) -> None:
        self.detail = f"the request body exceeds {max_bytes} bytes"
        super().__init__(self.detail)


class PreconditionFailed(Exception):
    """If-Match named another version than the persona's: 412, where GraphQL says CONFLICT."""

    def __init__(self, detail: str, current_version: int) -> None:
        self.detail = detail
        self.current_version = current_version
        super().__init__(detail)


EXCEPTION_HANDLERS: Final = {
    HTTPException: http_error,
    DomainError: domain_error,
    PreconditionFailed: precondition_failed,
    BodyTooLarge: body_too_large,
    Exception: unexpected_error,
}


# ---------------------------------------------------------------------------
# Request bodies (the app's JsonBodies middleware has already refused other media types)


async def json_body(request: Request) -> object:
    """The request body: any JSON value, read strictly."""
    raw = await request.body()
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInput("body", f"not valid JSON ({error})") from None
    # orjson checked the text strictly (UTF-8, no NaN, no lone surrogates) but reads integers
    # beyond 64 bits as floats; json keeps them exact, so the domain refuses them as in GraphQL.
    body: object = json.loads(raw)
    return body


async def json_object(request: Request) -> dict[str, Any]:
    """The request body: a JSON object holding only FIELDS."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field; the body takes {', '.join(FIELDS)}")
    return body


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


# ---------------------------------------------------------------------------
# Preconditions: If-Match with the ETag a response carried

_ENTITY_TAG = re.compile(r'"([1-9][0-9]{0,17})"')


def if_match(values: Sequence[str]) -> int | None:
    """The version If-Match requires: None when there is no header or it is `*` (any current
    persona). We only send strong tags, one per persona, so a list or a weak tag (which never
    matches under the strong comparison If-Match uses) is a mistake worth saying so: 400."""
    if not values:
        return None
    raw = ",".join(values).strip()
    if raw == "*":
        return None
    if "," in raw:
        raise InvalidInput("If-Match", 'give one entity tag, e.g. "3", or *; lists are not taken')
    if raw.startswith("W/"):
        raise InvalidInput(
            "If-Match",
            f"weak entity tags never match (If-Match compares strongly); send {raw[2:]}, the ETag "
            "as it was sent",
        )
    match = _ENTITY_TAG.fullmatch(raw)
    if match is None:
        raise InvalidInput(
            "If-Match",
            'must be * or the ETag of a persona response: its version in quotes, e.g. "3"',
        )
    return int(match[1])


async def conditional(request: Request, write: Callable[[int | None], Awaitable[T]]) -> T:
    """`write` given the version If-Match requires; a persona at another version is 412."""
    expected = if_match(request.headers.getlist("if-match"))
    try:
        return await write(expected)
    except domain.Conflict as conflict:
        if expected is None or conflict.current_version is None:
            raise
        raise PreconditionFailed(conflict.message, conflict.current_version) from None


# ---------------------------------------------------------------------------
# Query strings: metadata.<path>[<op>]=<value>, q, sort, limit, cursor

_FILTER = re.compile(r"metadata\.(?P<path>.*?)(?:\[(?P<op>[^\[\]]*)\])?", re.DOTALL)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?P<real>\.[0-9]+)?(?P<exponent>[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_KEYWORDS: Final[Mapping[str, object]] = {"true": True, "false": False, "null": None}
_PERSONA_QUERY_FIELDS: Final = {"orderBy": "sort", "search": "q"}


def number(raw: str) -> int | float | None:
    """The JSON number `raw` reads as, when it is one MongoDB can hold."""
    match = _NUMBER.fullmatch(raw)
    if match is None:
        return None
    if match["real"] is None and match["exponent"] is None:
        value = int(raw)
        return value if domain.INT64_MIN <= value <= domain.INT64_MAX else None
    real = float(raw)
    return real if math.isfinite(real) else None


def readings(raw: str) -> list[object]:
    """What a query-string value stands for: the number, boolean or null it reads as (if
    any), then the string itself."""
    if raw in _KEYWORDS:
        return [_KEYWORDS[raw], raw]
    value = number(raw)
    return [raw] if value is None else [value, raw]


def _matching(path: str, raw: str) -> FilterSpec:
    values = readings(raw)
    return (
        FilterSpec(path, values[0]) if len(values) == 1 else FilterSpec(path, values, Operator.IN)
    )


def _not_matching(path: str, raw: str) -> FilterSpec:
    values = readings(raw)
    if len(values) == 1:
        return FilterSpec(path, values[0], Operator.NE)
    return FilterSpec(path, values, Operator.NIN)


def _specs(path: str, op: Operator, raw: str) -> list[FilterSpec]:
    items = raw.split(",")
    if op is Operator.EQ:
        return [_matching(path, raw)]
    if op is Operator.NE:
        return [_not_matching(path, raw)]
    if op in (Operator.IN, Operator.NIN):
        return [FilterSpec(path, [value for item in items for value in readings(item)], op)]
    if op is Operator.ALL:
        # Typed-looking items may match either reading, so each is a filter of its own.
        strings = [item for item in items if len(readings(item)) == 1]
        typed = [_matching(path, item) for item in items if len(readings(item)) > 1]
        return [FilterSpec(path, strings, op), *typed] if strings else typed
    if op is Operator.EXISTS:
        return [FilterSpec(path, {"true": True, "false": False}.get(raw, raw), op)]
    if op in domain.RANGE_OPERATORS:
        value = number(raw)
        return [FilterSpec(path, raw if value is None else value, op)]
    return [FilterSpec(path, raw, op)]


def filter_specs(name: str, raw: str) -> list[FilterSpec]:
    """The filters one `metadata.<path>[<op>]=<value>` parameter stands for, validated
    (errors name the parameter)."""
    match = _FILTER.fullmatch(name)
    assert match is not None, "callers pass metadata.* parameters only"
    path, op_name = match["path"], match["op"]
    if "[" in path or "]" in path:
        raise InvalidInput(name, "write filters as metadata.<path>[<op>]; paths cannot hold [ or ]")
    try:
        op = Operator.EQ if op_name is None else Operator(op_name)
    except ValueError:
        known = ", ".join(item.value for item in Operator)
        raise InvalidInput(name, f"unknown operator [{op_name}]; use one of {known}") from None
    specs = _specs(path, op, raw)
    for spec in specs:
        domain.condition(spec, name)
    return specs


def sort_keys(raw: str) -> list[domain.SortKey]:
    """`sort=metadata.last_tested,-created_at`: keys in order, a leading '-' for descending."""
    keys: list[domain.SortKey] = []
    for item in raw.split(","):
        descending = item.startswith("-")
        name = item.removeprefix("-")
        if name.startswith("metadata."):
            path = name.removeprefix("metadata.")
            keys.append(domain.sort_key(SortField.METADATA, path, descending, "sort"))
            continue
        try:
            kind = SortField(name)
        except ValueError:
            raise InvalidInput(
                "sort",
                f"cannot sort by {name!r}; use created_at, updated_at, name or metadata.<path>",
            ) from None
        keys.append(domain.sort_key(kind, None, descending, "sort"))
    return keys


def integer(raw: str | None, field: str) -> int | None:
    if raw is None:
        return None
    if not _INTEGER.fullmatch(raw):
        raise InvalidInput(field, "must be an integer")
    return int(raw)


def plain_parameters(items: Sequence[tuple[str, str]], allowed: Sequence[str]) -> dict[str, str]:
    """The parameters, each from `allowed` and given at most once."""
    plain: dict[str, str] = {}
    for name, value in items:
        if name not in allowed:
            raise InvalidInput(name, "unknown query parameter")
        if name in plain:
            raise InvalidInput(name, "given more than once")
        plain[name] = value
    return plain


def split_parameters(
    items: Sequence[tuple[str, str]], allowed: Sequence[str]
) -> tuple[dict[str, str], list[FilterSpec]]:
    """The plain parameters (from `allowed`, each at most once) and the metadata filters."""
    specs: list[FilterSpec] = []
    others: list[tuple[str, str]] = []
    for name, value in items:
        if name.startswith("metadata."):
            specs += filter_specs(name, value)
        else:
            others.append((name, value))
    return plain_parameters(others, allowed), specs


def persona_query(
    specs: Sequence[FilterSpec], search: str | None = None, sort: str | None = None
) -> domain.PersonaQuery:
    """domain.persona_query, its errors naming the query parameters."""
    try:
        return domain.persona_query(
            all_of=specs,
            search=search,
            order=() if sort is None else sort_keys(sort),
            filter_field="metadata",
        )
    except InvalidInput as error:
        field = _PERSONA_QUERY_FIELDS.get(error.field, error.field)
        raise InvalidInput(field, error.errors[0].message) from None


# ---------------------------------------------------------------------------
# Handlers


def _store(request: Request) -> PersonaStore:
    store: PersonaStore = request.app.state.store
    return store


def _principal(request: Request) -> domain.Principal:
    principal: domain.Principal = getattr(request.state, "principal", domain.NOBODY)
    return principal


def _persona_id(request: Request) -> str:
    return domain.parse_id(request.path_params["id"])


def revision_number(raw: str, field: str = "version") -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= VERSION_MAX):
        raise InvalidInput(field, f"must be a version: an integer from 1 to {VERSION_MAX}")
    return int(raw)


async def create_persona(request: Request) -> Response:
    body = await json_object(request)
    for field in ("name", "content"):
        if field not in body:
            raise InvalidInput(field, "is required")
    new = domain.new_persona(body["name"], body["content"], body.get("metadata"))
    created = await _store(request).create(_principal(request), new)
    return persona_response(created, 201, {"Location": location(created.id)})


async def list_personas(request: Request) -> Response:
    plain, specs = split_parameters(
        request.query_params.multi_items(), ("q", "sort", "limit", "cursor")
    )
    query = persona_query(specs, plain.get("q"), plain.get("sort"))
    size = domain.page_size(integer(plain.get("limit"), "limit"), "limit")
    cursor = plain.get("cursor")
    after = None if cursor is None else domain.decode_cursor(cursor, query, "cursor")
    page = await _store(request).find(_principal(request), query, size, after)
    return JSONResponse(
        {
            "data": [persona_json(item) for item in page.items],
            "next_cursor": page.end_cursor if page.has_next else None,
        }
    )


async def get_persona(request: Request) -> Response:
    persona_id = _persona_id(request)
    found = await _store(request).get(_principal(request), persona_id)
    if found is None:
        raise domain.NotFound(f"persona {persona_id} not found")
    return persona_response(found)


async def update_persona(request: Request) -> Response:
    persona_id = _persona_id(request)
    body = await json_object(request)
    changes = domain.persona_changes(**{field: body.get(field, domain.UNSET) for field in FIELDS})
    store, principal = _store(request), _principal(request)
    updated = await conditional(
        request, lambda expected: store.update(principal, persona_id, changes, expected)
    )
    return persona_response(updated)


async def patch_persona(request: Request) -> Response:
    persona_id = _persona_id(request)
    given = media_type(request)
    if given != MERGE_PATCH:
        raise HTTPException(
            415,
            f"send a PATCH body as {MERGE_PATCH} (RFC 7396), not {given or 'nothing'}",
            {"Accept-Patch": MERGE_PATCH},
        )
    patch = await json_body(request)
    store, principal = _store(request), _principal(request)
    patched = await conditional(
        request, lambda expected: store.patch(principal, persona_id, patch, expected)
    )
    return persona_response(patched)


async def delete_persona(request: Request) -> Response:
    persona_id = _persona_id(request)
    store, principal = _store(request), _principal(request)
    await conditional(request, lambda expected: store.delete(principal, persona_id, expected))
    return Response(status_code=204)


async def list_revisions(request: Request) -> Response:
    persona_id = _persona_id(request)
    plain = plain_parameters(request.query_params.multi_items(), ("limit", "cursor"))
    size = domain.page_size(integer(plain.get("limit"), "limit"), "limit")
    cursor = plain.get("cursor")
    before = None if cursor is None else domain.decode_revision_cursor(cursor, persona_id, "cursor")
    page = await _store(request).revisions(_principal(request), persona_id, size, before)
    return JSONResponse(
        {
            "data": [revision_json(item) for item in page.items],
            "next_cursor": page.end_cursor if page.has_next else None,
        }
    )


async def get_revision(request: Request) -> Response:
    persona_id = _persona_id(request)
    version = revision_number(request.path_params["version"])
    found = await _store(request).revision(_principal(request), persona_id, version)
    if found is None:
        raise domain.NotFound(f"persona {persona_id} has no version {version}")
    return JSONResponse(revision_json(found))


async def metadata_values(request: Request) -> Response:
    plain, specs = split_parameters(request.query_params.multi_items(), ("path", "limit"))
    if "path" not in plain:
        raise InvalidInput("path", "is required")
    stored = domain.validate_path(plain["path"], "path")
    query = persona_query(specs)
    size = domain.facet_size(integer(plain.get("limit"), "limit"), "limit")
    counts = await _store(request).metadata_values(_principal(request), stored, query, size)
    return JSONResponse({"data": [{"value": item.value, "count": item.count} for item in counts]})


async def openapi_document(request: Request) -> Response:
    return JSONResponse(openapi.document())


# ---------------------------------------------------------------------------
# Routing

Endpoint = Callable[[Request], Awaitable[Response]]


def resource(path: str, name: str, handlers: Mapping[str, Endpoint]) -> Route:
    """One URL with a handler per method; other methods are refused with 405 and Allow."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return Route(path, endpoint, methods=list(handlers), name=name)


class Prefix(Mount):
    """A Mount owning every path under its prefix: Mount's own pattern stops at a newline,
    so /v1/personas/%0A would fall through to the application's plain-text 404."""

    def __init__(
        self, path: str, app: ASGIApp, name: str, middleware: Sequence[Middleware]
    ) -> None:
        super().__init__(path, app=app, name=name, middleware=middleware)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def routes() -> list[BaseRoute]:
    api = Router(
        routes=[
            resource("/personas", "personas", {"GET": list_personas, "POST": create_persona}),
            resource(
                "/personas/{id}",
                "persona",
                {
                    "GET": get_persona,
                    "PUT": update_persona,
                    "PATCH": patch_persona,
                    "DELETE": delete_persona,
                },
            ),
            resource("/personas/{id}/revisions", "persona_revisions", {"GET": list_revisions}),
            resource(
                "/personas/{id}/revisions/{version}", "persona_revision", {"GET": get_revision}
            ),
            resource("/metadata/values", "metadata_values", {"GET": metadata_values}),
            resource("/openapi.json", "openapi", {"GET": openapi_document}),
        ],
        redirect_slashes=False,
    )
    handle_errors = Middleware(ExceptionMiddleware, handlers=EXCEPTION_HANDLERS)
    return [Prefix(PREFIX, app=api, name="rest", middleware=[handle_errors])]


# ---------------------------------------------------------------------------
# Request body size (for every route: the app installs it)


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413, before reading more of them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, send)
                return
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
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await refuse(
            scope,
            send,
            413,
            "PAYLOAD_TOO_LARGE",
            HTTPStatus(413).phrase,
            BodyTooLarge(self.max_bytes).detail,
            [(b"connection", b"close")],
        )
