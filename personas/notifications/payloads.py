"""The JSON an event is sent as: the data of a webhook delivery (Standard Webhooks'
`{"type", "timestamp", "data"}`)."""

from __future__ import annotations

from typing import TypedDict

import orjson

from personas.domain import iso_timestamp as timestamp
from personas.domain.events import Event
from personas.rest.wire import Revision as RevisionJson
from personas.rest.wire import revision_json


class LabelJson(TypedDict):
    name: str
    version: int
    set_by: str | None
    set_at: str


class LabelMoveJson(TypedDict):
    id: str
    """The move's entry in the label history."""
    label: str
    from_version: int | None
    to_version: int | None


class EventJson(TypedDict):
    id: str
    type: str
    persona_id: str
    version: int
    actor: str | None
    at: str
    persona: RevisionJson | None
    label: LabelJson | None
    label_move: LabelMoveJson | None


class DeliveryJson(TypedDict):
    type: str
    timestamp: str
    data: EventJson


def event_json(event: Event) -> EventJson:
    label = event.label
    move = event.label_move
    shown_label: LabelJson | None = None
    if label is not None:
        shown_label = {
            "name": label.name,
            "version": label.version,
            "set_by": label.set_by,
            "set_at": timestamp(label.set_at),
        }
    shown_move: LabelMoveJson | None = None
    if move is not None:
        shown_move = {
            "id": move.id,
            "label": move.label,
            "from_version": move.from_version,
            "to_version": move.to_version,
        }
    return {
        "id": event.id,
        "type": event.type.value,
        "persona_id": event.persona_id,
        "version": event.version,
        "actor": event.actor,
        "at": timestamp(event.at),
        "persona": None if event.persona is None else revision_json(event.persona),
        "label": shown_label,
        "label_move": shown_move,
    }


def delivery_body(event: Event) -> str:
    """The body of a webhook delivery of `event`, as sent (and signed)."""
    payload: DeliveryJson = {
        "type": event.type.value,
        "timestamp": timestamp(event.at),
        "data": event_json(event),
    }
    return orjson.dumps(payload).decode()
