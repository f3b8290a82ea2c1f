"""The JSON shapes the REST API sends, typed once: handlers build them, and the OpenAPI
document's component schemas are generated from these types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict

from personas import domain
from personas.domain.events import EventType
from personas.domain.webhooks import Delivery, Webhook


class PersonaJson(TypedDict):
    id: str
    name: str
    content: str
    metadata: dict[str, Any] | None
    version: int
    created_at: str
    updated_at: str


class RevisionJson(TypedDict):
    persona_id: str
    version: int
    name: str
    content: str
    metadata: dict[str, Any] | None
    operation: str
    actor: str | None
    created_at: str


class PersonaList(TypedDict):
    data: list[PersonaJson]
    next_cursor: str | None


class RevisionList(TypedDict):
    data: list[RevisionJson]
    next_cursor: str | None


class ValueCountJson(TypedDict):
    value: Any
    count: int


class ValueCountList(TypedDict):
    data: list[ValueCountJson]


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC, to the millisecond MongoDB keeps: 2025-01-15T14:30:00.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def persona_json(persona: domain.Persona) -> PersonaJson:
    return {
        "id": persona.id,
        "name": persona.name,
        "content": persona.content,
        "metadata": persona.metadata,
        "version": persona.version,
        "created_at": timestamp(persona.created_at),
        "updated_at": timestamp(persona.updated_at),
    }


def revision_json(revision: domain.Revision) -> RevisionJson:
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


class MetadataFilterJson(TypedDict):
    path: str
    op: str
    value: Any


class WebhookJson(TypedDict):
    id: str
    url: str
    types: list[str]
    metadata_filter: list[MetadataFilterJson]
    label: str | None
    secret: str | None
    """Only in the answers of creating it and rotating its secret."""
    created_at: str
    disabled_at: str | None
    disabled_reason: str | None


class WebhookList(TypedDict):
    data: list[WebhookJson]


class AttemptJson(TypedDict):
    at: str
    status_code: int | None
    duration_ms: float
    error: str | None


class DeliveryJson(TypedDict):
    id: str
    event_id: str
    type: str
    status: str
    attempts: list[AttemptJson]
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None


class DeliveryList(TypedDict):
    data: list[DeliveryJson]
    next_cursor: str | None


def _moment(moment: datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)


def webhook_json(webhook: Webhook) -> WebhookJson:
    wanted = webhook.filter
    return {
        "id": webhook.id,
        "url": webhook.url,
        "types": [kind.value for kind in EventType if kind in wanted.types],
        "metadata_filter": [
            {"path": item.field.removeprefix("metadata."), "op": item.op.value, "value": item.value}
            for item in wanted.query.all_of
        ],
        "label": wanted.label,
        "secret": webhook.secret,
        "created_at": timestamp(webhook.created_at),
        "disabled_at": _moment(webhook.disabled_at),
        "disabled_reason": webhook.disabled_reason,
    }


def delivery_json(delivery: Delivery) -> DeliveryJson:
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "type": delivery.type,
        "status": delivery.status.value,
        "attempts": [
            {
                "at": timestamp(item.at),
                "status_code": item.status_code,
                "duration_ms": item.duration_ms,
                "error": item.error,
            }
            for item in delivery.attempts
        ],
        "next_attempt_at": _moment(delivery.next_attempt_at),
        "created_at": timestamp(delivery.created_at),
        "delivered_at": _moment(delivery.delivered_at),
    }
