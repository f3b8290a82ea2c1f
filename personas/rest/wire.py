"""The JSON shapes the REST API sends, typed once: handlers build them, and the OpenAPI
document's component schemas are generated from these types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict

from personas import domain


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


class LabelJson(TypedDict):
    name: str
    version: int
    set_by: str | None
    set_at: str


class LabelList(TypedDict):
    data: list[LabelJson]


class LabelEventJson(TypedDict):
    label: str
    from_version: int | None
    to_version: int | None
    actor: str | None
    at: str


class LabelEventList(TypedDict):
    data: list[LabelEventJson]
    next_cursor: str | None


class LabelMove(TypedDict):
    """The body of PUT /v1/personas/{id}/labels/{label}."""

    version: int


DiffJson = TypedDict(
    "DiffJson",
    {
        "from": int,
        "to": int,
        "name": list[str] | None,
        "content_diff": str | None,
        "metadata_patch": list[dict[str, Any]],
    },
)
"""What changed between two versions (`from` and `to` are keywords, hence this form)."""


def label_json(label: domain.Label) -> LabelJson:
    return {
        "name": label.name,
        "version": label.version,
        "set_by": label.set_by,
        "set_at": timestamp(label.set_at),
    }


def label_event_json(event: domain.LabelEvent) -> LabelEventJson:
    return {
        "label": event.label,
        "from_version": event.from_version,
        "to_version": event.to_version,
        "actor": event.actor,
        "at": timestamp(event.at),
    }


def diff_json(changes: domain.PersonaDiff) -> DiffJson:
    return {
        "from": changes.from_version,
        "to": changes.to_version,
        "name": None if changes.name is None else list(changes.name),
        "content_diff": changes.content_diff,
        "metadata_patch": changes.metadata_patch,
    }
