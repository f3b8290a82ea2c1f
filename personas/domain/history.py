"""What a backup holds of one persona: everything stored about it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from personas.domain.labels import LabelEvent
from personas.domain.personas import Persona, Revision


@dataclass(frozen=True, slots=True)
class PersonaHistory:
    """One persona's tenant, its current state with its labels (None once deleted), its
    revisions and its label moves, both oldest first."""

    tenant: str
    persona_id: str
    current: Persona | None
    revisions: tuple[Revision, ...]
    label_events: tuple[LabelEvent, ...] = ()


class RestoreOutcome(enum.Enum):
    """What restoring a persona's history did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    NEWER = "newer"
    """The database holds a later version: nothing was written."""
