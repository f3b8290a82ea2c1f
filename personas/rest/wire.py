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
