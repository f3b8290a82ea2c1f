"""Backups in MongoDB: every persona that exists or existed, with everything stored about
it (revisions, labels and their releases, label moves), read for `personas export` and
written back, idempotently, for `personas import`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from personas.domain import (
    Conflict,
    LabelEvent,
    Persona,
    PersonaHistory,
    RestoreOutcome,
    Revision,
)
from personas.store import documents
from personas.store.database import Database
from personas.store.errors import translated

REVISION_INDEX: Final = [("tenant", 1), ("persona_id", 1), ("version", -1)]


class BackupStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def tenants(self) -> list[str]:
        """Every tenant with a persona or a revision."""
        database = self._database
        with translated():
            found = {
                *await database.personas.distinct("tenant"),
                *await database.revisions.distinct("tenant"),
            }
        return sorted(found)

    async def count_histories(self, tenant: str) -> int:
        """How many personas of `tenant` exist or existed (the length of `histories`)."""
        count = 0
        with translated():
            async for _ in self._ids(tenant):
                count += 1
        return count

    async def histories(self, tenant: str) -> AsyncIterator[PersonaHistory]:
        """Every persona of `tenant` that exists or existed, by id, with its history.

        Each one is read persona first, then its revisions up to the persona's version,
        so a change made meanwhile never gives a history that does not fit together."""
        with translated():
            async for persona_id in self._ids(tenant):
                yield await self._history(tenant, persona_id)

    async def _ids(self, tenant: str) -> AsyncIterator[ObjectId]:
        """The ids of the personas and of the revised personas of `tenant`, merged, in order."""
        database = self._database
        personas = database.personas.find({"tenant": tenant}, {"_id": True}, sort=[("_id", 1)])
        revised = await database.revisions.aggregate(
            [
                {"$match": {"tenant": tenant}},
                {"$group": {"_id": "$persona_id"}},
                {"$sort": {"_id": 1}},
            ]
        )
        sources = {"personas": personas, "revised": revised}
        pending = {name: await _next_id(source) for name, source in sources.items()}
        while any(value is not None for value in pending.values()):
            smallest = min(value for value in pending.values() if value is not None)
            yield smallest
            for name, value in pending.items():
                if value == smallest:
                    pending[name] = await _next_id(sources[name])

    async def _history(self, tenant: str, persona_id: ObjectId) -> PersonaHistory:
        database = self._database
        document = await database.personas.find_one({"_id": persona_id, "tenant": tenant})
        condition: dict[str, Any] = {"tenant": tenant, "persona_id": persona_id}
        events = await database.label_events.find(condition, sort=[("_id", 1)]).to_list(None)
        if document is not None:
            condition["version"] = {"$lte": document.get("version", 1)}
        revisions = await database.revisions.find(
            condition, sort=[("version", -1)], hint=dict(REVISION_INDEX)
        ).to_list(None)
        return PersonaHistory(
            tenant=tenant,
            persona_id=str(persona_id),
            current=None if document is None else documents.persona(document),
            revisions=tuple(documents.revision(revision) for revision in reversed(revisions)),
            label_events=tuple(documents.label_event(event) for event in events),
        )

    async def restore_history(self, history: PersonaHistory) -> RestoreOutcome:
        """Write what is missing of `history`, in one transaction; idempotent.

        Revisions already stored must equal those given (else `Conflict`, nothing
        written); a database holding a later version is left alone (`NEWER`)."""
        database = self._database
        persona_id = ObjectId(history.persona_id)
        top = max(
            [revision.version for revision in history.revisions]
            + ([history.current.version] if history.current else [])
        )

        async def work(session: AsyncClientSession) -> RestoreOutcome:
            stored = {
                document["version"]: documents.revision(document)
                async for document in database.revisions.find(
                    {"tenant": history.tenant, "persona_id": persona_id}, session=session
                )
            }
            for revision in history.revisions:
                if revision.version in stored and stored[revision.version] != revision:
                    raise Conflict(
                        f"persona {history.persona_id} version {revision.version} differs "
                        "from the one stored"
                    )
            document = await database.personas.find_one({"_id": persona_id}, session=session)
            if document is not None and document.get("tenant") != history.tenant:
                raise Conflict(f"persona {history.persona_id} belongs to another tenant")
            current = None if document is None else documents.persona(document)
            if max(stored, default=0) > top or (current is not None and current.version > top):
                return RestoreOutcome.NEWER
            missing = [revision for revision in history.revisions if revision.version not in stored]
            events = await self._missing_events(history, session)
            if not missing and not events and current == history.current:
                return RestoreOutcome.UNCHANGED
            given = history.current
            if (
                current is not None
                and given is not None
                and current.version == given.version
                and not _labels_only(current, given)
            ):
                raise Conflict(
                    f"persona {history.persona_id} version {top} differs from the one stored"
                )
            if missing:
                await database.revisions.insert_many(
                    [revision_document(history.tenant, revision) for revision in missing],
                    session=session,
                )
            if events:
                await database.label_events.insert_many(events, session=session)
            if current != history.current:
                await self._write_current(history, session)
            created = document is None and not stored
            return RestoreOutcome.CREATED if created else RestoreOutcome.UPDATED

        return await database.transaction(work)

    async def _missing_events(
        self, history: PersonaHistory, session: AsyncClientSession
    ) -> list[dict[str, Any]]:
        """The label moves of `history` not stored yet, as documents."""
        ids = [ObjectId(event.id) for event in history.label_events]
        known = {
            str(found["_id"])
            async for found in self._database.label_events.find(
                {"_id": {"$in": ids}}, {"_id": True}, session=session
            )
        }
        return [
            label_event_document(history.tenant, history.persona_id, event)
            for event in history.label_events
            if event.id not in known
        ]

    async def _write_current(self, history: PersonaHistory, session: AsyncClientSession) -> None:
        """The persona as `history` has it now, with its labels and their releases."""
        database = self._database
        persona_id = ObjectId(history.persona_id)
        current = history.current
        scope = {"tenant": history.tenant, "persona_id": persona_id}
        await database.releases.delete_many(scope, session=session)
        if current is None:
            await database.personas.delete_one({"_id": persona_id}, session=session)
            return
        await database.personas.replace_one(
            {"_id": persona_id},
            persona_document(history.tenant, current),
            upsert=True,
            session=session,
        )
        by_version = {revision.version: revision for revision in history.revisions}
        for label in current.labels:
            revision = by_version.get(label.version)
            if revision is None:
                raise Conflict(
                    f"persona {history.persona_id}: label {label.name!r} points at version "
                    f"{label.version}, which the backup does not hold"
                )
            release = revision_document(history.tenant, revision)
            await database.releases.insert_one(
                {
                    **{field: release[field] for field in documents.RELEASE_FIELDS},
                    **scope,
                    "label": label.name,
                    "version": label.version,
                    "set_by": label.set_by,
                    "updated_at": label.set_at,
                },
                session=session,
            )


def _labels_only(stored: Persona, given: Persona) -> bool:
    """Whether two states of the same version differ at most in their labels (labels move
    without a new version; the backup's are restored)."""

    def described(persona: Persona) -> tuple[Any, ...]:
        return (
            persona.name,
            persona.content,
            persona.metadata,
            persona.created_at,
            persona.updated_at,
        )

    return described(stored) == described(given)


async def _next_id(source: Any) -> ObjectId | None:
    """The next `_id` of a cursor, None once it is exhausted."""
    try:
        document = await source.next()
    except StopAsyncIteration:
        return None
    found: ObjectId = document["_id"]
    return found


def persona_document(tenant: str, persona: Persona) -> dict[str, Any]:
    document: dict[str, Any] = {
        "_id": ObjectId(persona.id),
        "tenant": tenant,
        "name": persona.name,
        "content": persona.content,
        "version": persona.version,
        "created_at": persona.created_at,
        "updated_at": persona.updated_at,
    }
    if persona.metadata is not None:
        document["metadata"] = persona.metadata
    if persona.labels:
        document["labels"] = [
            {
                "name": label.name,
                "version": label.version,
                "set_by": label.set_by,
                "set_at": label.set_at,
            }
            for label in persona.labels
        ]
    return document


def revision_document(tenant: str, revision: Revision) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "persona_id": ObjectId(revision.persona_id),
        "version": revision.version,
        "name": revision.name,
        "content": revision.content,
        "metadata": revision.metadata,
        "operation": revision.operation.value,
        "actor": revision.actor,
        "created_at": revision.created_at,
    }


def label_event_document(tenant: str, persona_id: str, event: LabelEvent) -> dict[str, Any]:
    return {
        "_id": ObjectId(event.id),
        "tenant": tenant,
        "persona_id": ObjectId(persona_id),
        "label": event.label,
        "from_version": event.from_version,
        "to_version": event.to_version,
        "actor": event.actor,
        "at": event.at,
    }
