"""The event log in MongoDB: every change appends one event in its own transaction. Each
tenant's events are numbered 1, 2, 3... by a counter document that the transaction
increments, so two changes of a tenant commit one after the other and the numbers follow
the commits: a reader that sees event n has seen every event before it. Events expire after
the retention period (a TTL index)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure, PyMongoError

from personas.domain import InvalidInput, LabelEvent, Principal, Unavailable, require
from personas.domain.events import Event, EventType
from personas.store import documents
from personas.store import query as q
from personas.store.database import Database
from personas.store.errors import translated

log = logging.getLogger("personas.store")

POSITION_INDEX: Final = [("tenant", 1), ("seq", 1)]
EXPIRY_INDEX: Final = "at_ttl"
_INDEX_OPTIONS_CONFLICT: Final = frozenset({85, 86})


@dataclass(frozen=True, slots=True)
class Appended:
    """An event as the change stream hands it over: whose it is, and the event."""

    tenant: str
    event: Event


class EventLog:
    def __init__(self, database: Database, retention_days: int = 7) -> None:
        self._database = database
        self._events = database.events
        self._counters = database.event_counters
        self.retention_seconds = retention_days * 86400

    async def ensure_indexes(self) -> None:
        with translated():
            await self._events.create_index(POSITION_INDEX, unique=True)
            try:
                await self._create_expiry()
            except OperationFailure as error:
                if error.code not in _INDEX_OPTIONS_CONFLICT:
                    raise
                # The retention setting changed since the index was made.
                await self._events.drop_index(EXPIRY_INDEX)
                await self._create_expiry()

    async def _create_expiry(self) -> None:
        await self._events.create_index(
            [("at", 1)], name=EXPIRY_INDEX, expireAfterSeconds=self.retention_seconds
        )

    async def append(
        self,
        session: AsyncClientSession,
        tenant: str,
        kind: EventType,
        revision: Mapping[str, Any],
        actor: str | None,
        at: datetime,
        label: Mapping[str, Any] | None = None,
        move: Mapping[str, Any] | None = None,
    ) -> int:
        """Append an event inside the change's transaction; its id."""
        counter = await self._counters.find_one_and_update(
            {"_id": tenant},
            q.next_event_id(),
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert counter is not None, "an upsert returns the document"
        seq: int = counter["seq"]
        await self._events.insert_one(
            {
                "tenant": tenant,
                "seq": seq,
                "type": kind.value,
                "persona_id": revision["persona_id"],
                "version": revision["version"],
                "actor": actor,
                "at": at,
                "persona": {
                    key: value for key, value in revision.items() if key not in ("_id", "tenant")
                },
                "label": None if label is None else dict(label),
                "move": None if move is None else dict(move),
            },
            session=session,
        )
        return seq

    async def after(self, principal: Principal, seq: int, limit: int) -> list[Event]:
        """The caller's events after `seq`, oldest first."""
        require(principal, "read")
        return await self.since(principal.tenant, seq, limit)

    async def since(
        self, tenant: str, seq: int, limit: int, until: int | None = None
    ) -> list[Event]:
        with translated():
            found = await self._events.find(
                q.events_after(tenant, seq, until), q.HIDDEN, sort=[("seq", 1)], limit=limit
            ).to_list(limit)
        return [event(item) for item in found]

    async def latest(self, tenant: str) -> int:
        """The id of the tenant's latest event (0 before its first)."""
        with translated():
            counter = await self._counters.find_one({"_id": tenant})
        return 0 if counter is None else int(counter["seq"])

    async def tenants(self) -> list[str]:
        """The tenants that have an event log."""
        with translated():
            found = await self._counters.distinct("_id")
        return sorted(str(item) for item in found)

    async def restore(self, tenant: str, latest: int, events: list[Event]) -> int:
        """Put a backup's events back (those missing) and move the tenant's counter up to
        `latest`, so that new events follow the restored ones; how many were missing."""
        added = 0
        with translated():
            for item in events:
                result = await self._events.update_one(
                    {"tenant": tenant, "seq": item.seq},
                    {"$setOnInsert": event_document(tenant, item)},
                    upsert=True,
                )
                added += 0 if result.upserted_id is None else 1
            await self._counters.update_one({"_id": tenant}, {"$max": {"seq": latest}}, upsert=True)
        return added

    async def check_resume(self, principal: Principal, after: int, field: str = "after") -> None:
        """Refuse to resume after an event that does not exist yet, or when events after it
        have expired (they could not be replayed)."""
        require(principal, "read")
        latest = await self.latest(principal.tenant)
        if after > latest:
            raise InvalidInput(field, f"there is no event {after}: the latest event is {latest}")
        if after == latest:
            return
        following = await self.since(principal.tenant, after, 1)
        if not following or following[0].seq != after + 1:
            oldest = following[0].seq if following else latest + 1
            days = self.retention_seconds // 86400
            raise InvalidInput(
                field,
                f"events after {after} are no longer kept (the log keeps {days} days); the "
                f"oldest kept is {oldest}: subscribe without `after` and reload what you show",
            )

    async def watch(self, wait_ms: int) -> AsyncIterator[Appended | None]:
        """Events as they are appended, from now on, in commit order; None whenever
        `wait_ms` pass without one. A failure of the stream raises Unavailable."""
        try:
            stream = await self._events.watch(q.event_inserts(), max_await_time_ms=wait_ms)
        except PyMongoError as error:
            raise Unavailable(f"the event log cannot be watched: {error}") from error
        try:
            while True:
                try:
                    change = await stream.try_next()
                except PyMongoError as error:
                    raise Unavailable(f"the event log's change stream failed: {error}") from error
                if change is None:
                    if not stream.alive:  # invalidated: the collection or database was dropped
                        raise Unavailable("the event log's change stream was closed")
                    yield None
                    continue
                document = change.get("fullDocument")
                if change.get("operationType") != "insert" or document is None:
                    raise Unavailable(f"the event log's change stream ended: {change!r:.200}")
                yield Appended(document["tenant"], event(document))
        finally:
            try:
                await stream.close()
            except PyMongoError as error:
                log.debug("closing the change stream: %s", error)


def event(document: Mapping[str, Any]) -> Event:
    persona_id = str(document["persona_id"])
    persona = document.get("persona")
    label = document.get("label")
    move = document.get("move")
    return Event(
        seq=document["seq"],
        type=EventType(document["type"]),
        persona_id=persona_id,
        version=document["version"],
        actor=document.get("actor"),
        at=document["at"],
        persona=None if persona is None else documents.revision(persona, persona_id),
        label=None if label is None else documents.label(label),
        label_move=None
        if move is None
        else LabelEvent(
            id=str(move["id"]),
            persona_id=persona_id,
            label=move["label"],
            from_version=move.get("from_version"),
            to_version=move.get("to_version"),
            actor=document.get("actor"),
            at=document["at"],
        ),
    )


def label_move(
    history_id: ObjectId, label: str, was: int | None, now: int | None
) -> dict[str, Any]:
    """What an event records of a label move."""
    return {"id": history_id, "label": label, "from_version": was, "to_version": now}


def event_document(tenant: str, event: Event) -> dict[str, Any]:
    """How the log stores `event` (for a restored backup)."""
    persona = event.persona
    label = event.label
    move = event.label_move
    return {
        "tenant": tenant,
        "seq": event.seq,
        "type": event.type.value,
        "persona_id": ObjectId(event.persona_id),
        "version": event.version,
        "actor": event.actor,
        "at": event.at,
        "persona": None
        if persona is None
        else {
            "persona_id": ObjectId(persona.persona_id),
            "version": persona.version,
            "name": persona.name,
            "content": persona.content,
            "metadata": persona.metadata,
            "operation": persona.operation.value,
            "actor": persona.actor,
            "created_at": persona.created_at,
        },
        "label": None
        if label is None
        else {
            "name": label.name,
            "version": label.version,
            "set_by": label.set_by,
            "set_at": label.set_at,
        },
        "move": None
        if move is None
        else label_move(ObjectId(move.id), move.label, move.from_version, move.to_version),
    }
