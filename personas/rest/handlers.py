"""REST handlers: each reads its request, calls the services or the store, and answers
the typed wire shapes. Errors are raised as domain errors; `problems` shows them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol, TypeVar

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from personas import auth, bodies, domain, services
from personas.domain import InvalidInput
from personas.middleware import media_type
from personas.rest import querystring, wire
from personas.rest.problems import PreconditionFailed
from personas.store import PersonaStore

T = TypeVar("T")
Item = TypeVar("Item", covariant=True)

PREFIX: Final = "/v1"
MERGE_PATCH: Final = "application/merge-patch+json"
"""The one media type PATCH takes: a JSON merge patch (RFC 7396)."""
IDEMPOTENCY_KEY: Final = "Idempotency-Key"
ENTITY_TAG_PATTERN: Final = f'"({domain.VERSION_PATTERN})"'
"""A persona's strong entity tag: its version in quotes."""
_ENTITY_TAG = re.compile(ENTITY_TAG_PATTERN)
IF_MATCH_PATTERN: Final = rf"\*|{ENTITY_TAG_PATTERN}"
DIGEST_BYTES: Final = 12
DIGEST_TAG_PATTERN: Final = f'"[0-9a-f]{{{2 * DIGEST_BYTES}}}"'
"""The ETag of an answer that has no version of its own: a digest of its body."""
"""What If-Match takes: * or one strong entity tag (surrounding whitespace aside)."""


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def location(persona_id: str) -> str:
    return f"{PREFIX}/personas/{persona_id}"


def entity_tag(version: int) -> str:
    return f'"{version}"'


def persona_response(
    persona: domain.Persona, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A persona, with its version as the ETag."""
    return JSONResponse(
        wire.persona_json(persona),
        status_code=status_code,
        headers={**(headers or {}), "ETag": entity_tag(persona.version)},
    )


def none_match(values: Sequence[str], tag: str) -> bool:
    """Whether If-None-Match names `tag` (or `*`): compared weakly, as RFC 9110 says."""
    given = [item.strip().removeprefix("W/") for value in values for item in value.split(",")]
    return "*" in given or tag.removeprefix("W/") in given


class Listed(Protocol[Item]):
    """A page of any listing."""

    @property
    def items(self) -> Sequence[Item]: ...

    @property
    def has_next(self) -> bool: ...

    @property
    def end_cursor(self) -> str | None: ...


def listing(page: Listed[Item], shown: Callable[[Item], Any]) -> Any:
    """A page as REST lists it: `{"data": [...], "next_cursor": ...}` (null on the last)."""
    return {
        "data": [shown(item) for item in page.items],
        "next_cursor": page.end_cursor if page.has_next else None,
    }


def read_response(request: Request, content: Any, tag: str | None = None) -> Response:
    """A GET answer with an ETag (`tag`, or a digest of the body), or 304 with no body when
    If-None-Match already holds it: polling costs a header."""
    body = orjson.dumps(content)
    tag = tag or f'"{hashlib.blake2b(body, digest_size=DIGEST_BYTES).hexdigest()}"'
    headers = {"ETag": tag}
    if none_match(request.headers.getlist("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSONResponse.media_type, headers=headers)


async def json_body(request: Request) -> object:
    """The request body: any JSON value, read by the one bounded parser (the middleware has
    already refused other media types)."""
    return bodies.parse_json(await request.body())


async def json_object(request: Request) -> dict[str, Any]:
    """The request body: a JSON object holding only persona fields."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    return domain.known_fields(body, "the body takes")


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
    return domain.parse_version(match[1], "If-Match")


def idempotency_key(request: Request) -> domain.IdempotencyKey | None:
    """The Idempotency-Key header, if sent: one key, bare or as a quoted string (the form
    of the IETF draft, `"<key>"`)."""
    values = request.headers.getlist(IDEMPOTENCY_KEY)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput(IDEMPOTENCY_KEY, "send one key, in one header")
    raw = values[0].strip()
    if len(raw) > 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1]
    return domain.idempotency_key(raw, IDEMPOTENCY_KEY)


async def conditional(request: Request, write: Callable[[int | None], Awaitable[T]]) -> T:
    """`write` given the version If-Match requires; a persona at another version is 412."""
    expected = if_match(request.headers.getlist("if-match"))
    try:
        return await write(expected)
    except domain.Conflict as conflict:
        if expected is None or conflict.current_version is None:
            raise
        raise PreconditionFailed(conflict.message, conflict.current_version) from None


def store_of(request: Request) -> PersonaStore:
    store: PersonaStore = request.app.state.store
    return store


def principal_of(request: Request) -> domain.Principal:
    return auth.principal_of(request.scope)


def persona_id_of(request: Request) -> str:
    return domain.parse_id(request.path_params["id"])


async def create_persona(request: Request) -> Response:
    key = idempotency_key(request)
    body = await json_object(request)
    for field in ("name", "content"):
        if field not in body:
            raise InvalidInput(field, "is required")
    new = domain.new_persona(body["name"], body["content"], body.get("metadata"))
    created = await services.create_persona(store_of(request), principal_of(request), new, key)
    return persona_response(created, 201, {"Location": location(created.id)})


async def list_personas(request: Request) -> Response:
    plain, specs = querystring.split_parameters(
        request.query_params.multi_items(), ("q", "sort", "limit", "cursor")
    )
    query = querystring.persona_query(specs, plain.get("q"), plain.get("sort"))
    limit = querystring.integer(plain.get("limit"), "limit")
    page = await services.list_personas(
        store_of(request),
        principal_of(request),
        query,
        limit,
        plain.get("cursor"),
        "limit",
        "cursor",
    )
    return read_response(request, listing(page, wire.persona_json))


async def get_persona(request: Request) -> Response:
    persona_id = persona_id_of(request)
    found = await store_of(request).get(principal_of(request), persona_id)
    if found is None:
        raise domain.NotFound(f"persona {persona_id} not found")
    return read_response(request, wire.persona_json(found), entity_tag(found.version))


async def update_persona(request: Request) -> Response:
    persona_id = persona_id_of(request)
    key = idempotency_key(request)
    body = await json_object(request)
    changes = domain.persona_changes(
        **{field: body.get(field, domain.UNSET) for field in domain.FIELDS}
    )
    store, principal = store_of(request), principal_of(request)
    updated = await conditional(
        request,
        lambda expected: services.update_persona(
            store, principal, persona_id, changes, expected, key
        ),
    )
    return persona_response(updated)


async def patch_persona(request: Request) -> Response:
    persona_id = persona_id_of(request)
    given = media_type(request.headers.get("content-type", ""))
    if given != MERGE_PATCH:
        raise HTTPException(
            415,
            f"send a PATCH body as {MERGE_PATCH} (RFC 7396), not {given or 'nothing'}",
            {"Accept-Patch": MERGE_PATCH},
        )
    key = idempotency_key(request)
    patch = await json_body(request)
    store, principal = store_of(request), principal_of(request)
    patched = await conditional(
        request,
        lambda expected: services.patch_persona(store, principal, persona_id, patch, expected, key),
    )
    return persona_response(patched)


async def delete_persona(request: Request) -> Response:
    persona_id = persona_id_of(request)
    key = idempotency_key(request)
    store, principal = store_of(request), principal_of(request)
    await conditional(
        request,
        lambda expected: services.delete_persona(store, principal, persona_id, expected, key),
    )
    return Response(status_code=204)


async def list_revisions(request: Request) -> Response:
    persona_id = persona_id_of(request)
    plain = querystring.plain_parameters(request.query_params.multi_items(), ("limit", "cursor"))
    limit = querystring.integer(plain.get("limit"), "limit")
    page = await services.list_revisions(
        store_of(request),
        principal_of(request),
        persona_id,
        limit,
        plain.get("cursor"),
        "limit",
        "cursor",
    )
    return read_response(request, listing(page, wire.revision_json))


async def get_revision(request: Request) -> Response:
    persona_id = persona_id_of(request)
    version = domain.parse_version(request.path_params["version"], "version")
    found = await services.get_revision(
        store_of(request), principal_of(request), persona_id, version
    )
    if found is None:
        raise domain.NotFound(f"persona {persona_id} has no version {version}")
    return read_response(request, wire.revision_json(found), entity_tag(found.version))


async def metadata_values(request: Request) -> Response:
    plain, specs = querystring.split_parameters(
        request.query_params.multi_items(), ("path", "limit")
    )
    if "path" not in plain:
        raise InvalidInput("path", "is required")
    stored = domain.validate_path(plain["path"], "path")
    query = querystring.persona_query(specs)
    size = domain.facet_size(querystring.integer(plain.get("limit"), "limit"), "limit")
    counts = await store_of(request).metadata_values(principal_of(request), stored, query, size)
    listed: wire.ValueCountList = {
        "data": [{"value": item.value, "count": item.count} for item in counts]
    }
    return read_response(request, listed)
