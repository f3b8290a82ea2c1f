"""REST releases: a persona's labels, the version a label points at, moving and removing
labels, their history, the releases of one label, and diffs between versions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from personas import domain, services
from personas.domain import InvalidInput
from personas.rest import querystring, wire
from personas.rest.handlers import (
    JSONResponse,
    entity_tag,
    idempotency_key,
    if_match,
    json_body,
    listing,
    persona_id_of,
    principal_of,
    read_response,
    store_of,
)
from personas.rest.problems import PreconditionFailed
from personas.store.labels import LabelConflict


def _label(request: Request) -> str:
    return domain.validate_label(request.path_params["label"])


async def list_labels(request: Request) -> Response:
    persona_id = persona_id_of(request)
    found = await store_of(request).get(principal_of(request), persona_id)
    if found is None:
        raise domain.NotFound(f"persona {persona_id} not found")
    listed: wire.LabelList = {"data": [wire.label_json(label) for label in found.labels]}
    return read_response(request, listed)


async def get_label_target(request: Request) -> Response:
    persona_id, label = persona_id_of(request), _label(request)
    found = await services.get_revision(
        store_of(request), principal_of(request), persona_id, label=label
    )
    if found is None:
        raise domain.NotFound(f"persona {persona_id} has no label {label!r}")
    return read_response(request, wire.revision_json(found), entity_tag(found.version))


async def set_label(request: Request) -> Response:
    persona_id, label = persona_id_of(request), _label(request)
    body = await json_body(request)
    if not isinstance(body, dict) or set(body) != {"version"}:
        raise InvalidInput("body", 'must be a JSON object holding only "version"')
    version = body["version"]
    if isinstance(version, float) and version.is_integer():
        version = int(version)  # JSON has one number type: 3.0 is the integer 3
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput("version", "must be an integer")
    expected = if_match(request.headers.getlist("if-match"))
    key = idempotency_key(request)
    try:
        moved = await services.set_label(
            store_of(request), principal_of(request), persona_id, label, version, expected, key=key
        )
    except LabelConflict as conflict:
        raise _stale(conflict) from None
    return JSONResponse(wire.label_json(moved), headers={"ETag": entity_tag(moved.version)})


async def remove_label(request: Request) -> Response:
    persona_id, label = persona_id_of(request), _label(request)
    expected = if_match(request.headers.getlist("if-match"))
    key = idempotency_key(request)
    try:
        await services.remove_label(
            store_of(request), principal_of(request), persona_id, label, expected, key=key
        )
    except LabelConflict as conflict:
        raise _stale(conflict) from None
    return Response(status_code=204)


def _stale(conflict: LabelConflict) -> PreconditionFailed:
    """A compare-and-set from If-Match found the label elsewhere: 412."""
    return PreconditionFailed(conflict.message, conflict.current_version)


async def label_history(request: Request) -> Response:
    persona_id, label = persona_id_of(request), _label(request)
    plain = querystring.plain_parameters(request.query_params.multi_items(), ("limit", "cursor"))
    page = await services.label_history(
        store_of(request),
        principal_of(request),
        persona_id,
        label,
        querystring.integer(plain.get("limit"), "limit"),
        plain.get("cursor"),
        "limit",
        "cursor",
    )
    return read_response(request, listing(page, wire.label_event_json))


async def list_releases(request: Request) -> Response:
    plain, specs = querystring.split_parameters(
        request.query_params.multi_items(), ("label", "q", "sort", "limit", "cursor")
    )
    if "label" not in plain:
        raise InvalidInput("label", "is required")
    query = querystring.persona_query(specs, plain.get("q"), plain.get("sort"))
    page = await services.list_releases(
        store_of(request),
        principal_of(request),
        plain["label"],
        query,
        querystring.integer(plain.get("limit"), "limit"),
        plain.get("cursor"),
        "limit",
        "cursor",
    )
    return read_response(request, listing(page, wire.revision_json))


async def persona_diff(request: Request) -> Response:
    persona_id = persona_id_of(request)
    plain = querystring.plain_parameters(request.query_params.multi_items(), ("from", "to"))
    for field in ("from", "to"):
        if field not in plain:
            raise InvalidInput(field, "is required")
    found = await services.persona_diff(
        store_of(request),
        principal_of(request),
        persona_id,
        domain.parse_version(plain["from"], "from"),
        domain.parse_version(plain["to"], "to"),
    )
    if found is None:
        raise domain.NotFound(f"persona {persona_id} lacks one of these versions")
    return read_response(request, wire.diff_json(found))
