"""Change events: what the event log records of every change, and which events a
subscriber or a webhook asked for."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from personas.domain.errors import InvalidInput
from personas.domain.filters import FilterSpec, PersonaQuery, QueryFields, persona_query
from personas.domain.labels import Label, LabelEvent, settable_label
from personas.domain.matching import matches
from personas.domain.personas import Operation, Revision

EVENT_ID_PATTERN: Final = r"[1-9][0-9]{0,17}"
"""An event id: its position in the tenant's log, 1 for the first event."""
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


class EventType(enum.Enum):
    CREATED = "persona.created"
    UPDATED = "persona.updated"
    DELETED = "persona.deleted"
    LABEL_MOVED = "persona.label_moved"


def event_type(operation: Operation) -> EventType:
    """The event a revision's change makes."""
    if operation is Operation.CREATE:
        return EventType.CREATED
    if operation is Operation.DELETE:
        return EventType.DELETED
    return EventType.UPDATED


@dataclass(frozen=True, slots=True)
class Event:
    """One change, as the log keeps it. `persona` is the revision the change left (for a
    deletion: the persona as it was; for a label move: the version the label points at, or
    pointed at before its removal). `label` is the label as a move left it (None when it
    was removed); `label_move` says from which version to which."""

    seq: int
    type: EventType
    persona_id: str
    version: int
    actor: str | None
    at: datetime
    persona: Revision | None
    label: Label | None = None
    label_move: LabelEvent | None = None

    @property
    def id(self) -> str:
        return str(self.seq)


@dataclass(frozen=True, slots=True)
class EventFields:
    """What an API calls the parts of an event filter, so that errors name its own fields."""

    types: str = "types"
    metadata_filter: str = "metadata_filter"
    label: str = "label"


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a subscriber or webhook wants: of these types, of personas matching
    the query (as the change left them), and with `label` only moves of that label."""

    types: frozenset[EventType] = frozenset(EventType)
    query: PersonaQuery = field(default_factory=PersonaQuery)
    label: str | None = None

    def accepts(self, event: Event) -> bool:
        if event.type not in self.types:
            return False
        if self.label is not None and (
            event.label_move is None or event.label_move.label != self.label
        ):
            return False
        if not (self.query.all_of or self.query.any_of):
            return True
        persona = event.persona
        return persona is not None and matches(self.query, persona.name, persona.metadata)


def event_filter(
    types: Sequence[EventType] | None = None,
    metadata_filter: Sequence[FilterSpec] = (),
    label: object = None,
    fields: EventFields | None = None,
) -> EventFilter:
    """A validated event filter: types (all when None), metadata filters in the listing's
    language, and a label (whose moves alone are then wanted)."""
    fields = fields or EventFields()
    if types is not None and not types:
        raise InvalidInput(fields.types, "give at least one event type, or leave it out for all")
    name = None if label is None else settable_label(label, fields.label)
    chosen = frozenset(EventType) if types is None else frozenset(types)
    if name is not None:
        if types is not None and EventType.LABEL_MOVED not in chosen:
            raise InvalidInput(fields.label, "a label selects label moves: add LABEL_MOVED")
        chosen = frozenset({EventType.LABEL_MOVED})
    query = persona_query(
        all_of=metadata_filter,
        fields=QueryFields(all_of=fields.metadata_filter),
    )
    return EventFilter(types=chosen, query=query, label=name)


def parse_event_id(raw: object, field: str = "after") -> int:
    """An event id as given: its position in the log."""
    if not isinstance(raw, str) or not _EVENT_ID.fullmatch(raw.strip()):
        raise InvalidInput(field, "not an event id (the id of an event this API sent)")
    return int(raw.strip())
