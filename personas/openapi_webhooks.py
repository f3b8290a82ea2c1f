"""The OpenAPI description of /v1/webhooks: its paths and component schemas, which the
document (`personas.openapi`) merges into its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from personas import domain
from personas.domain.events import EventType
from personas.domain.webhooks import URL_MAX, DeliveryStatus

Problems = Callable[..., dict[str, Any]]


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def schemas() -> dict[str, Any]:
    timestamp = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."}
    moment = {**timestamp, "type": ["string", "null"]}
    types = {"type": "array", "items": {"enum": [kind.value for kind in EventType]}}
    condition = {
        "type": "object",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "description": 'A metadata path: "tags", "owner.team".'},
            "op": {"enum": [op.value for op in domain.Operator], "default": "eq"},
            "value": {"description": "What the operator compares with (a list for in/nin/all)."},
        },
    }
    return {
        "WebhookCreate": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {
                "url": {
                    "type": "string",
                    "maxLength": URL_MAX,
                    "description": (
                        "https only (http and loopback addresses only with "
                        "PERSONAS_WEBHOOK_ALLOW_LOOPBACK); private addresses are refused."
                    ),
                },
                "types": {
                    **types,
                    "minItems": 1,
                    "description": "The event types to deliver; all when left out.",
                },
                "metadata_filter": {
                    "type": "array",
                    "maxItems": domain.FILTERS_MAX,
                    "items": condition,
                    "description": "Conditions the persona as the change left it must meet.",
                },
                "label": {
                    "type": "string",
                    "description": "Only moves of this label (types must then allow them).",
                },
            },
        },
        "Webhook": {
            "type": "object",
            "required": [
                "id",
                "url",
                "types",
                "metadata_filter",
                "label",
                "secret",
                "created_at",
                "disabled_at",
                "disabled_reason",
            ],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
                "url": {"type": "string"},
                "types": types,
                "metadata_filter": {"type": "array", "items": condition},
                "label": {"type": ["string", "null"]},
                "secret": {
                    "type": ["string", "null"],
                    "description": (
                        "whsec_ and the base64 signing key: only in the answer of creating the "
                        "webhook or rotating its secret."
                    ),
                },
                "created_at": timestamp,
                "disabled_at": moment,
                "disabled_reason": {
                    "type": ["string", "null"],
                    "description": "Why deliveries stopped; null while enabled.",
                },
            },
        },
        "WebhookList": {
            "type": "object",
            "required": ["data"],
            "additionalProperties": False,
            "properties": {"data": {"type": "array", "items": _ref("schemas", "Webhook")}},
        },
        "WebhookDelivery": {
            "type": "object",
            "required": [
                "id",
                "event_id",
                "type",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
                "delivered_at",
            ],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "description": "Sent as webhook-id: msg_<id>."},
                "event_id": {"type": "string"},
                "type": {"enum": [kind.value for kind in EventType]},
                "status": {"enum": [status.value for status in DeliveryStatus]},
                "attempts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["at", "status_code", "duration_ms", "error"],
                        "additionalProperties": False,
                        "properties": {
                            "at": timestamp,
                            "status_code": {"type": ["integer", "null"]},
                            "duration_ms": {"type": "number"},
                            "error": {"type": ["string", "null"]},
                        },
                    },
                },
                "next_attempt_at": moment,
                "created_at": timestamp,
                "delivered_at": moment,
            },
        },
        "WebhookDeliveryList": {
            "type": "object",
            "required": ["data", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "data": {"type": "array", "items": _ref("schemas", "WebhookDelivery")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
    }


def paths(problems: Problems) -> dict[str, Any]:
    """The webhook paths; `problems(*statuses)` gives an operation's error responses."""
    webhook_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
    }
    webhook = _json(_ref("schemas", "Webhook"))
    admin = "Scope admin."
    return {
        "/v1/webhooks": {
            "post": {
                "operationId": "createWebhook",
                "summary": "Deliver the events after now to a URL, signed (Standard Webhooks)",
                "description": admin,
                "requestBody": {
                    "required": True,
                    "content": _json(_ref("schemas", "WebhookCreate")),
                },
                "responses": {
                    "201": {
                        "description": "Created; the only answer that shows the secret.",
                        "headers": {
                            "Location": {
                                "description": "/v1/webhooks/{id}",
                                "schema": {"type": "string"},
                            }
                        },
                        "content": webhook,
                    },
                    **problems(400, 413, 415),
                },
            },
            "get": {
                "operationId": "listWebhooks",
                "summary": "The tenant's webhooks, oldest first",
                "description": admin,
                "responses": {
                    "200": {
                        "description": "Every webhook (a tenant has few).",
                        "content": _json(_ref("schemas", "WebhookList")),
                    },
                    **problems(),
                },
            },
        },
        "/v1/webhooks/{id}": {
            "parameters": [webhook_id],
            "get": {
                "operationId": "getWebhook",
                "summary": "A webhook",
                "description": admin,
                "responses": {
                    "200": {"description": "The webhook.", "content": webhook},
                    **problems(400, 404),
                },
            },
            "delete": {
                "operationId": "deleteWebhook",
                "summary": "Delete a webhook and its deliveries",
                "description": admin,
                "responses": {"204": {"description": "Deleted."}, **problems(400, 404)},
            },
        },
        "/v1/webhooks/{id}/rotate-secret": {
            "parameters": [webhook_id],
            "post": {
                "operationId": "rotateWebhookSecret",
                "summary": "A new secret; the old one also signs for 24 hours",
                "description": admin,
                "responses": {
                    "200": {"description": "The webhook with its new secret.", "content": webhook},
                    **problems(400, 404),
                },
            },
        },
        "/v1/webhooks/{id}/deliveries": {
            "parameters": [webhook_id],
            "get": {
                "operationId": "listWebhookDeliveries",
                "summary": "A webhook's deliveries, newest first, each with its attempts",
                "description": admin,
                "parameters": [_ref("parameters", "Limit"), _ref("parameters", "Cursor")],
                "responses": {
                    "200": {
                        "description": "One page.",
                        "content": _json(_ref("schemas", "WebhookDeliveryList")),
                    },
                    **problems(400, 404),
                },
            },
        },
    }
