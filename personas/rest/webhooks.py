"""REST webhooks under /v1/webhooks (scope admin): create (the answer alone shows the
secret), list, get, delete, rotate the secret, and list deliveries."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from personas import domain
from personas.domain import FilterSpec, InvalidInput, Operator
from personas.domain.events import EventFields, EventType
from personas.notifications import services
from personas.notifications.runtime import Notifications
from personas.rest import querystring, wire
from personas.rest.handlers import PREFIX, JSONResponse, json_body, principal_of, store_of
from personas.rest.parameters import Header, Parameter

FIELDS: Final = ("url", "types", "metadata_filter", "label")
EVENT_FIELDS: Final = EventFields(types="types", metadata_filter="metadata_filter", label="label")
_TYPES: Final = ", ".join(kind.value for kind in EventType)
_OPERATORS: Final = ", ".join(op.value for op in Operator)


WEBHOOK_ID: Final = Parameter(
    "WebhookId",
    "id",
    "path",
    Annotated[str, Field(pattern=f"^{domain.ID_INPUT_PATTERN}$")],
    "24 hexadecimal characters.",
    required=True,
)
WEBHOOK_LOCATION: Final = Header("WebhookLocation", "Location", str, "/v1/webhooks/{id}")


def _location(webhook_id: str) -> str:
    return f"{PREFIX}/webhooks/{webhook_id}"


def event_types(raw: object) -> list[EventType] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidInput("types", f"must be a list of event types: {_TYPES}")
    found = []
    for index, item in enumerate(raw):
        try:
            found.append(EventType(item))
        except (ValueError, TypeError):
            raise InvalidInput(f"types.{index}", f"not an event type; one of {_TYPES}") from None
    return found


def filter_specs(raw: object) -> list[FilterSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("metadata_filter", "must be a list of {path, op, value} objects")
    specs = []
    for index, item in enumerate(raw):
        field = f"metadata_filter.{index}"
        if not isinstance(item, dict) or not set(item) <= {"path", "op", "value"}:
            raise InvalidInput(field, "must be an object with path, op (default eq) and value")
        try:
            op = Operator(item.get("op", "eq"))
        except (ValueError, TypeError):
            raise InvalidInput(f"{field}.op", f"not an operator; one of {_OPERATORS}") from None
        specs.append(FilterSpec(item.get("path"), item.get("value"), op))
    return specs


async def create_webhook(request: Request) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field; the body takes {', '.join(FIELDS)}")
    if "url" not in body:
        raise InvalidInput("url", "is required")
    notifications: Notifications = request.app.state.notifications
    created = await services.create_webhook(
        store_of(request),
        principal_of(request),
        body["url"],
        event_types(body.get("types")),
        filter_specs(body.get("metadata_filter")),
        body.get("label"),
        notifications.policy.allow_loopback,
        EVENT_FIELDS,
    )
    return JSONResponse(
        wire.webhook_json(created), status_code=201, headers={"Location": _location(created.id)}
    )


async def list_webhooks(request: Request) -> Response:
    found = await store_of(request).webhooks.all(principal_of(request))
    listed: wire.WebhookList = {"data": [wire.webhook_json(item) for item in found]}
    return JSONResponse(listed)


async def get_webhook(request: Request) -> Response:
    found = await services.get_webhook(
        store_of(request), principal_of(request), request.path_params["id"]
    )
    return JSONResponse(wire.webhook_json(found))


async def delete_webhook(request: Request) -> Response:
    await services.delete_webhook(
        store_of(request), principal_of(request), request.path_params["id"]
    )
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    rotated = await services.rotate_secret(
        store_of(request), principal_of(request), request.path_params["id"]
    )
    return JSONResponse(wire.webhook_json(rotated))


async def list_deliveries(request: Request) -> Response:
    plain = querystring.plain_parameters(request.query_params.multi_items(), ("limit", "cursor"))
    limit = querystring.integer(plain.get("limit"), "limit")
    page = await services.list_deliveries(
        store_of(request),
        principal_of(request),
        request.path_params["id"],
        limit,
        plain.get("cursor"),
        "id",
        "limit",
        "cursor",
    )
    listed: wire.WebhookDeliveryList = {
        "data": [wire.delivery_json(item) for item in page.items],
        "next_cursor": page.end_cursor if page.has_next else None,
    }
    return JSONResponse(listed)
