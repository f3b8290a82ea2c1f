"""Keyset pages: opaque cursors bound to their listing, and the pages they lead through."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from personas.domain.errors import InvalidInput
from personas.domain.filters import PersonaQuery, SortKey
from personas.domain.labels import LabelEvent
from personas.domain.metadata import check_json
from personas.domain.personas import Revision, parse_id

T = TypeVar("T")


def _pack(payload: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _unpack(raw: str) -> Any:
    """The payload of a cursor; ValueError, TypeError or binascii.Error when it is none."""
    return orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def fingerprint(query: PersonaQuery) -> str:
    """Identifies the filter and order a cursor belongs to."""
    described = [
        [[c.field, c.op.value, c.value] for c in query.all_of],
        [[c.field, c.op.value, c.value] for c in query.any_of],
        query.search,
        [[key.field, key.descending] for key in query.order],
    ]
    digest = hashlib.sha256(orjson.dumps(described, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after one persona in one listing: its sort values and id."""

    values: tuple[Any, ...]
    id: str


def encode_cursors(query: PersonaQuery, positions: Sequence[Cursor]) -> list[str]:
    """Opaque cursors: the listing's fingerprint, the sort values and the id of a persona."""
    bound = fingerprint(query)
    return [_pack([bound, [_encoded(value) for value in at.values], at.id]) for at in positions]


def _encoded(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def decode_cursor(raw: str, query: PersonaQuery, field: str = "after") -> Cursor:
    try:
        bound, values, persona_id = _unpack(raw)
        if not isinstance(values, list) or len(values) != len(query.order):
            raise ValueError
        decoded = tuple(
            _decode_value(key, value) for key, value in zip(query.order, values, strict=True)
        )
        persona_id = parse_id(persona_id, field)
    except (ValueError, TypeError, binascii.Error, InvalidInput):
        raise InvalidInput(field, "not a valid cursor") from None
    if bound != fingerprint(query):
        raise InvalidInput(field, "this cursor belongs to a listing with another filter or order")
    return Cursor(decoded, persona_id)


def _decode_value(key: SortKey, value: Any) -> Any:
    if key.field in {"created_at", "updated_at"}:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment
    if key.field == "name" and not isinstance(value, str):
        raise ValueError("name must be a string")
    check_json(value, "after", depth=1, keys=False)
    return value


def encode_revision_cursor(revision: Revision) -> str:
    return _pack(["revisions", revision.persona_id, revision.version])


def decode_revision_cursor(raw: str, persona_id: str, field: str = "after") -> int:
    """The version a revision cursor points at."""
    try:
        kind, cursor_id, version = _unpack(raw)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput(field, "not a valid cursor") from None
    if kind != "revisions" or cursor_id != persona_id or not isinstance(version, int):
        raise InvalidInput(field, "not a cursor of this persona's revisions")
    return version


def encode_event_cursor(event: LabelEvent) -> str:
    return _pack(["labels", event.persona_id, event.id])


def decode_event_cursor(raw: str, persona_id: str, field: str = "after") -> str:
    """The id of the label event a history cursor points after."""
    try:
        kind, cursor_id, event_id = _unpack(raw)
        event_id = parse_id(event_id, field)
    except (ValueError, TypeError, binascii.Error, InvalidInput):
        raise InvalidInput(field, "not a valid cursor") from None
    if kind != "labels" or cursor_id != persona_id:
        raise InvalidInput(field, "not a cursor of this persona's label history")
    return str(event_id)


@dataclass(frozen=True, slots=True)
class Found(Generic[T]):
    """What the store found for one page of a listing: the items, their positions, and
    whether more follow."""

    items: list[T]
    positions: list[Cursor]
    has_next: bool


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing, with a cursor for each item, encoded only when asked for (a
    client that pages on needs the last one alone)."""

    items: list[T]
    has_next: bool
    encode: Callable[[int, int], list[str]]
    """The cursors of the items from `start` up to `stop`."""

    @property
    def cursors(self) -> list[str]:
        return self.encode(0, len(self.items))

    @property
    def end_cursor(self) -> str | None:
        count = len(self.items)
        return self.encode(count - 1, count)[0] if count else None


@dataclass(frozen=True, slots=True)
class RevisionPage:
    """What the store found for one page of revisions."""

    items: list[Revision]
    has_next: bool


@dataclass(frozen=True, slots=True)
class LabelEventPage:
    items: list[LabelEvent]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return encode_event_cursor(self.items[-1]) if self.items else None


@dataclass(frozen=True, slots=True)
class ValueCount:
    value: Any
    count: int
