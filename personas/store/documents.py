"""Stored documents turned into domain objects (the store never hands out a raw document)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from personas.domain import Label, LabelEvent, Operation, Persona, Revision

RELEASE_FIELDS: Final = ("name", "content", "metadata", "operation", "actor", "created_at")
"""The fields of a revision that its release document (one per label set) copies."""


def persona(document: Mapping[str, Any]) -> Persona:
    return Persona(
        id=str(document["_id"]),
        name=document["name"],
        content=document["content"],
        metadata=document.get("metadata"),
        version=document.get("version", 1),
        created_at=document["created_at"],
        updated_at=document.get("updated_at", document["created_at"]),
        labels=tuple(label(item) for item in document.get("labels", ())),
    )


def revision(document: Mapping[str, Any], persona_id: str | None = None) -> Revision:
    return Revision(
        persona_id=persona_id or str(document["persona_id"]),
        version=document["version"],
        name=document["name"],
        content=document["content"],
        metadata=document.get("metadata"),
        operation=Operation(document["operation"]),
        actor=document.get("actor"),
        created_at=document["created_at"],
    )


def label(document: Mapping[str, Any]) -> Label:
    return Label(
        name=document["name"],
        version=document["version"],
        set_by=document.get("set_by"),
        set_at=document["set_at"],
    )


def label_event(document: Mapping[str, Any]) -> LabelEvent:
    return LabelEvent(
        id=str(document["_id"]),
        persona_id=str(document["persona_id"]),
        label=document["label"],
        from_version=document.get("from_version"),
        to_version=document.get("to_version"),
        actor=document.get("actor"),
        at=document["at"],
    )
