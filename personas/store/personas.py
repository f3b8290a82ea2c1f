"""Persona storage: the only code that reads and writes personas and their revisions,
scoped to the caller's tenant. Every change and its revision share one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Self, TypeVar

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure, PyMongoError

from personas.domain import (
    ANONYMOUS,
    TAGS,
    ApprovalPolicy,
    Conflict,
    Cursor,
    DomainError,
    Found,
    NewPersona,
    NotFound,
    Once,
    Operation,
    Persona,
    PersonaChanges,
    PersonaQuery,
    Principal,
    Revision,
    RevisionPage,
    ValueCount,
    now,
    patch_changes,
    require,
    validate_metadata,
)
from personas.domain.events import event_type
from personas.store import documents, transport
from personas.store import query as q
from personas.store.backups import BackupStore
from personas.store.connection import client_options
from personas.store.database import PERSONAS, Database
from personas.store.errors import translated
from personas.store.events import EventLog
from personas.store.keys import KeyStore
from personas.store.labels import LabelStore
from personas.store.webhooks import WebhookStore

log = logging.getLogger("personas.store")

REVISION_INDEX: Final = [("tenant", 1), ("persona_id", 1), ("version", -1)]
ALWAYS_INDEXED: Final = ("tags",)
T = TypeVar("T")
Update = Mapping[str, Any] | Callable[[Persona], Mapping[str, Any]]
"""A change: an update document, or one made from the persona as it is now."""


class PersonaStore:
    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        db_name: str,
        indexed_paths: Iterable[str] = (),
        approval: ApprovalPolicy | None = None,
        event_retention_days: int = 7,
    ) -> None:
        self._client = client
        self._database = Database(client, db_name)
        self._db = self._database.db
        self._personas = self._database.personas
        self._revisions = self._database.revisions
        self.indexed_fields = tuple(
            dict.fromkeys(f"metadata.{path}" for path in (*ALWAYS_INDEXED, *indexed_paths))
        )
        self.keys = KeyStore(self._database.api_keys)
        self.backups = BackupStore(self._database)
        self.events = EventLog(self._database, event_retention_days)
        self.labels = LabelStore(
            self._database, self.indexed_fields, approval or ApprovalPolicy(), self.events
        )
        self.webhooks = WebhookStore(self._database, self.events)

    @classmethod
    def connect(
        cls,
        uri: str,
        db_name: str,
        timeout_ms: int,
        indexed_paths: Iterable[str] = (),
        approval: ApprovalPolicy | None = None,
        event_retention_days: int = 7,
    ) -> Self:
        transport.install()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, **client_options(timeout_ms)
        )
        return cls(client, db_name, indexed_paths, approval, event_retention_days)

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    async def drop_database(self) -> None:
        await self._client.drop_database(self._db.name)

    async def prepare(self) -> None:
        """Bring stored data up to the current shape and create the indexes (idempotent)."""
        await self.adopt_legacy_personas()
        await self.ensure_indexes()

    async def adopt_legacy_personas(self) -> int:
        """Personas stored before tenants and versions existed join `default` at version 1,
        last updated when created."""
        with translated():
            tenants = await self._personas.update_many(
                {"tenant": {"$exists": False}}, {"$set": {"tenant": ANONYMOUS.tenant}}
            )
            versions = await self._personas.update_many(
                {"version": {"$exists": False}}, {"$set": {"version": 1}}
            )
            nulls = await self._personas.update_many(
                {"metadata": {"$type": "null"}}, {"$unset": {"metadata": ""}}
            )
            updated = await self._personas.update_many(
                {"updated_at": {"$exists": False}}, [{"$set": {"updated_at": "$created_at"}}]
            )
        return sum(result.modified_count for result in (tenants, versions, nulls, updated))

    async def ensure_indexes(self) -> None:
        """Create the indexes listings need (idempotent)."""
        specs = [*q.ORDER_INDEXES.values(), *(q.path_index(field) for field in self.indexed_fields)]
        with translated():
            for keys in specs:
                await self._personas.create_index(keys)
            await self._revisions.create_index(REVISION_INDEX, unique=True)
            await self.labels.ensure_indexes()
            await self.events.ensure_indexes()
            await self.webhooks.ensure_indexes()
            await self._database.idempotency.ensure_indexes()
            try:
                await self._personas.create_index([("metadata.$**", 1)])
            except OperationFailure as error:
                log.info("wildcard index on metadata not created: %s", error)

    async def index_keys(self) -> list[list[tuple[str, Any]]]:
        """The key patterns of the persona indexes."""
        with translated():
            information = await self._personas.index_information()
        return [
            [(name, direction) for name, direction in spec["key"]] for spec in information.values()
        ]

    # reads

    async def get(self, principal: Principal, persona_id: str) -> Persona | None:
        require(principal, "read")
        with translated():
            document = await self._personas.find_one(
                q.scoped(principal.tenant, {"_id": ObjectId(persona_id)}), q.HIDDEN
            )
        return None if document is None else documents.persona(document)

    async def find(
        self, principal: Principal, query: PersonaQuery, first: int, after: Cursor | None = None
    ) -> Found[Persona]:
        """One page of a listing, after `after`; keyset-paginated under any order."""
        require(principal, "read")
        pipeline = q.listing_pipeline(principal.tenant, query, first, after)
        with translated():
            cursor = await self._personas.aggregate(pipeline, **q.hint(query, self.indexed_fields))
            found = await cursor.to_list(first + 1)
        items = found[:first]
        return Found(
            items=[documents.persona(document) for document in items],
            positions=[q.position(document, query) for document in items],
            has_next=len(found) > first,
        )

    async def count(self, principal: Principal, query: PersonaQuery) -> int:
        require(principal, "read")
        with translated():
            return await self._personas.count_documents(
                q.listing_filter(principal.tenant, query), **q.hint(query, self.indexed_fields)
            )

    async def metadata_values(
        self, principal: Principal, stored: str, query: PersonaQuery, first: int
    ) -> list[ValueCount]:
        """How many personas have each value at `stored`, arrays unwound, most frequent first."""
        require(principal, "read")
        pipeline = q.values_pipeline(principal.tenant, stored, query, first)
        with translated():
            cursor = await self._personas.aggregate(pipeline, **q.hint(query, self.indexed_fields))
            rows = await cursor.to_list(first)
        return [ValueCount(row["_id"], row["count"]) for row in rows]

    async def explain(self, principal: Principal, query: PersonaQuery) -> dict[str, Any]:
        """The server's execution statistics for a listing's filter (for index checks)."""
        with translated():
            result: dict[str, Any] = await self._db.command(
                "explain",
                {
                    "find": PERSONAS,
                    "filter": q.listing_filter(principal.tenant, query),
                    **q.hint(query, self.indexed_fields),
                },
                verbosity="executionStats",
            )
        return result

    # writes: each change and its revision in one transaction

    async def _record(
        self,
        principal: Principal,
        document: Mapping[str, Any],
        operation: Operation,
        session: AsyncClientSession,
        version: int | None = None,
    ) -> None:
        """The revision of a change, and its event in the log."""
        revision = {
            "tenant": principal.tenant,
            "persona_id": document["_id"],
            "version": version or document["version"],
            "name": document["name"],
            "content": document["content"],
            "metadata": document.get("metadata"),
            "operation": operation.value,
            "actor": principal.key_id,
            "created_at": now(),
        }
        await self._revisions.insert_one(dict(revision), session=session)
        await self.events.append(
            session,
            principal.tenant,
            event_type(operation),
            revision,
            principal.key_id,
            revision["created_at"],
        )

    async def _refusal(
        self,
        principal: Principal,
        persona_id: str,
        expected_version: int | None,
        session: AsyncClientSession,
    ) -> DomainError:
        """Why a conditional write matched nothing: no such persona, or another version."""
        current = await self._personas.find_one(
            q.scoped(principal.tenant, {"_id": ObjectId(persona_id)}),
            {"version": True},
            session=session,
        )
        if current is None:
            return NotFound(f"persona {persona_id} not found")
        version = current.get("version", 1)
        return Conflict(
            f"persona {persona_id} is at version {version}, not {expected_version}",
            current_version=version,
        )

    @staticmethod
    def _target(
        principal: Principal, persona_id: str, expected_version: int | None
    ) -> dict[str, Any]:
        target: dict[str, Any] = {"_id": ObjectId(persona_id)}
        if expected_version is not None:
            target["version"] = expected_version
        return q.scoped(principal.tenant, target)

    async def _change(
        self,
        principal: Principal,
        persona_id: str,
        expected_version: int | None,
        update: Update,
        operation: Operation,
        field: str = "metadata",
        once: Once | None = None,
    ) -> Persona:
        """The one write path of a persona: an atomic update (version +1, updated now) and
        its revision, in one transaction. An update made from the persona as it is now
        reads it in the same transaction, so that nothing written meanwhile is lost."""
        require(principal, "write")

        async def work(session: AsyncClientSession) -> dict[str, Any]:
            target = self._target(principal, persona_id, expected_version)
            if callable(update):
                current = await self._personas.find_one(target, session=session)
                if current is None:
                    raise await self._refusal(principal, persona_id, expected_version, session)
                changes = update(documents.persona(current))
                target = {"_id": current["_id"], "version": current["version"]}
            else:
                changes = update
            stamped = {
                **changes,
                "$set": {**changes.get("$set", {}), "updated_at": now()},
                "$inc": {"version": 1},
            }
            result = await self._personas.update_one(target, stamped, session=session)
            if result.matched_count == 0:
                raise await self._refusal(principal, persona_id, expected_version, session)
            document = await self._changed(persona_id, session)
            validate_metadata(document.get("metadata"))
            await self._record(principal, document, operation, session)
            return document

        return documents.persona(
            await self._database.transaction(
                self._database.once(principal.tenant, once, work), path_field=field
            )
        )

    async def _changed(self, persona_id: str, session: AsyncClientSession) -> dict[str, Any]:
        """A persona as this transaction just wrote it."""
        document = await self._personas.find_one(
            {"_id": ObjectId(persona_id)}, q.HIDDEN, session=session
        )
        assert document is not None, "read inside the transaction that wrote it"
        return document

    async def create(
        self, principal: Principal, persona: NewPersona, once: Once | None = None
    ) -> Persona:
        require(principal, "write")
        moment = now()
        document: dict[str, Any] = {
            "_id": ObjectId(),
            "tenant": principal.tenant,
            "name": persona.name,
            "content": persona.content,
            "version": 1,
            "created_at": moment,
            "updated_at": moment,
        }
        if persona.metadata is not None:
            document["metadata"] = persona.metadata

        attempts = 0

        async def work(session: AsyncClientSession) -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and await self._personas.find_one(
                {"_id": document["_id"]}, {"_id": True}, session=session
            ):
                return document  # an earlier attempt committed, and its answer was lost
            await self._personas.insert_one(document, session=session)
            await self._record(principal, document, Operation.CREATE, session)
            return document

        return documents.persona(
            await self._database.transaction(self._database.once(principal.tenant, once, work))
        )

    async def update(
        self,
        principal: Principal,
        persona_id: str,
        changes: PersonaChanges,
        expected_version: int | None = None,
        operation: Operation = Operation.UPDATE,
        once: Once | None = None,
    ) -> Persona:
        """Replace the given fields; metadata given as None is removed."""
        update = q.changes_update(changes.given())
        return await self._change(
            principal, persona_id, expected_version, update, operation, once=once
        )

    async def patch(
        self,
        principal: Principal,
        persona_id: str,
        patch: object,
        expected_version: int | None = None,
        once: Once | None = None,
    ) -> Persona:
        """Apply a JSON merge patch to the persona as it is when the change is made."""

        def update(current: Persona) -> Mapping[str, Any]:
            return q.changes_update(patch_changes(current, patch).given())

        return await self._change(
            principal, persona_id, expected_version, update, Operation.PATCH, once=once
        )

    async def set_metadata(
        self,
        principal: Principal,
        persona_id: str,
        stored: str,
        value: Any,
        expected_version: int | None = None,
        once: Once | None = None,
    ) -> Persona:
        update = {"$set": {stored: value}}
        return await self._change(
            principal, persona_id, expected_version, update, Operation.SET_METADATA, "path", once
        )

    async def unset_metadata(
        self,
        principal: Principal,
        persona_id: str,
        stored: str,
        expected_version: int | None = None,
        once: Once | None = None,
    ) -> Persona:
        update = {"$unset": {stored: ""}}
        return await self._change(
            principal, persona_id, expected_version, update, Operation.UNSET_METADATA, "path", once
        )

    async def add_tags(
        self,
        principal: Principal,
        persona_id: str,
        tags: list[str],
        expected_version: int | None = None,
        once: Once | None = None,
    ) -> Persona:
        update = {"$addToSet": {TAGS: {"$each": tags}}}
        return await self._change(
            principal, persona_id, expected_version, update, Operation.ADD_TAGS, "tags", once
        )

    async def remove_tags(
        self,
        principal: Principal,
        persona_id: str,
        tags: list[str],
        expected_version: int | None = None,
        once: Once | None = None,
    ) -> Persona:
        update = {"$pull": {TAGS: {"$in": tags}}}
        return await self._change(
            principal, persona_id, expected_version, update, Operation.REMOVE_TAGS, "tags", once
        )

    async def restore(
        self,
        principal: Principal,
        persona_id: str,
        version: int,
        expected_version: int | None = None,
        once: Once | None = None,
    ) -> Persona:
        """A new version equal to an old one; history is never rewritten."""
        require(principal, "write")
        revision = await self.revision(principal, persona_id, version)
        if revision is None:
            raise NotFound(f"persona {persona_id} has no version {version}")
        changes = PersonaChanges(
            name=revision.name, content=revision.content, metadata=revision.metadata
        )
        return await self.update(
            principal, persona_id, changes, expected_version, Operation.RESTORE, once
        )

    async def delete(
        self,
        principal: Principal,
        persona_id: str,
        expected_version: int | None = None,
        once: Once | None = None,
    ) -> str:
        """Delete a persona; its revisions stay, the last one recording the deletion."""
        require(principal, "write")

        async def work(session: AsyncClientSession) -> dict[str, Any]:
            target = self._target(principal, persona_id, expected_version)
            document = await self._personas.find_one(target, session=session)
            if document is None:
                raise await self._refusal(principal, persona_id, expected_version, session)
            await self._personas.delete_one({"_id": document["_id"]}, session=session)
            version = document.get("version", 1) + 1
            await self._record(principal, document, Operation.DELETE, session, version)
            await self.labels.remove_all(principal, document, session)
            return {"_id": document["_id"]}

        await self._database.transaction(self._database.once(principal.tenant, once, work))
        return persona_id

    # revisions

    async def revision(
        self, principal: Principal, persona_id: str, version: int
    ) -> Revision | None:
        require(principal, "read")
        with translated():
            document = await self._revisions.find_one(
                q.scoped(principal.tenant, {"persona_id": ObjectId(persona_id), "version": version})
            )
        return None if document is None else documents.revision(document)

    async def count_revisions(self, principal: Principal, persona_id: str) -> int:
        require(principal, "read")
        with translated():
            return await self._revisions.count_documents(
                q.scoped(principal.tenant, {"persona_id": ObjectId(persona_id)}),
                hint=dict(REVISION_INDEX),
            )

    async def revisions(
        self, principal: Principal, persona_id: str, first: int, before_version: int | None = None
    ) -> RevisionPage:
        """A persona's revisions, newest first."""
        require(principal, "read")
        condition: dict[str, Any] = {"persona_id": ObjectId(persona_id)}
        if before_version is not None:
            condition["version"] = {"$lt": before_version}
        with translated():
            found = await self._revisions.find(
                q.scoped(principal.tenant, condition),
                sort=[("version", -1)],
                limit=first + 1,
                hint=dict(REVISION_INDEX),
            ).to_list(first + 1)
        return RevisionPage(
            items=[documents.revision(document) for document in found[:first]],
            has_next=len(found) > first,
        )
