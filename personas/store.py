"""The only module that talks to MongoDB: persona storage, scoped to the caller's tenant."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, Self, TypeVar

import pymongo
from bson import ObjectId
from pymongo import AsyncMongoClient, MongoClient, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
)

from personas.domain import (
    ANONYMOUS,
    ApiKey,
    Conflict,
    Cursor,
    DomainError,
    InvalidInput,
    NewPersona,
    NotFound,
    Operation,
    Page,
    Persona,
    PersonaChanges,
    PersonaHistory,
    PersonaQuery,
    Principal,
    RestoreOutcome,
    Revision,
    RevisionPage,
    Unavailable,
    ValueCount,
    encode_cursor,
    keyset_expression,
    keyset_filter,
    merge,
    now,
    patch_changes,
    require,
    sort_expression,
    validate_metadata,
)

log = logging.getLogger("personas.store")

PERSONAS = "personas"
REVISIONS = "persona_revisions"
API_KEYS = "api_keys"
REVISION_INDEX = [("tenant", 1), ("persona_id", 1), ("version", -1)]
T = TypeVar("T")
ALWAYS_INDEXED = ("tags",)
_PROJECTION = {"tenant": False}


def client_options(timeout_ms: int) -> dict[str, Any]:
    """Every write is acknowledged only once a majority has it in its journal, and reads
    see only majority-committed data, from the primary (README: Durability)."""
    return {
        "tz_aware": True,
        "timeoutMS": timeout_ms,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "appname": "personas",
        "w": "majority",
        "journal": True,
        "readConcernLevel": "majority",
        "readPreference": "primary",
    }


def time_limit(seconds: float | None) -> AbstractContextManager[None]:
    """Every database operation started inside shares one deadline, `seconds` from now
    (retries and transactions included); nested limits only shorten it."""
    return pymongo.timeout(seconds)


def wait_until_ready(uri: str, timeout: float) -> bool:
    """Ping `uri` until it answers or `timeout` seconds pass; True when it answered."""
    deadline = time.monotonic() + timeout
    while True:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, **client_options(500))
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        finally:
            client.close()


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Turn driver failures into domain errors the adapters know how to show."""
    try:
        yield
    except (ConnectionFailure, ExecutionTimeout) as error:
        log.warning("database unavailable: %s", error)
        raise Unavailable("the database is unavailable; try again shortly") from error
    except PyMongoError as error:
        if getattr(error, "timeout", False):
            log.warning("database timeout: %s", error)
            raise Unavailable("the database did not answer in time; try again") from error
        raise


def _persona(document: Mapping[str, Any]) -> Persona:
    return Persona(
        id=str(document["_id"]),
        name=document["name"],
        content=document["content"],
        metadata=document.get("metadata"),
        version=document.get("version", 1),
        created_at=document["created_at"],
        updated_at=document.get("updated_at", document["created_at"]),
    )


RECENCY = [("created_at", -1), ("_id", -1)]
ORDER_INDEXES: dict[str, list[tuple[str, Any]]] = {
    "created_at": [("tenant", 1), *RECENCY],
    "updated_at": [("tenant", 1), ("updated_at", -1), ("_id", -1)],
    "name": [("tenant", 1), ("name", 1), ("_id", 1)],
}


def path_index(stored: str) -> list[tuple[str, Any]]:
    """The index for filtering by `stored` (a `metadata.` field), newest first."""
    return [("tenant", 1), (stored, 1), *RECENCY]


class PersonaStore:
    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        db_name: str,
        indexed_paths: Iterable[str] = (),
    ) -> None:
        self._client = client
        self._db = client[db_name]
        self._personas: AsyncCollection[dict[str, Any]] = self._db[PERSONAS]
        self._revisions: AsyncCollection[dict[str, Any]] = self._db[REVISIONS]
        self._keys: AsyncCollection[dict[str, Any]] = self._db[API_KEYS]
        self.indexed_fields = tuple(
            dict.fromkeys(f"metadata.{path}" for path in (*ALWAYS_INDEXED, *indexed_paths))
        )

    @classmethod
    def connect(
        cls, uri: str, db_name: str, timeout_ms: int, indexed_paths: Iterable[str] = ()
    ) -> Self:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, **client_options(timeout_ms)
        )
        return cls(client, db_name, indexed_paths)

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
        async with _translated():
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
        specs = [*ORDER_INDEXES.values(), *(path_index(field) for field in self.indexed_fields)]
        async with _translated():
            for keys in specs:
                await self._personas.create_index(keys)
            await self._revisions.create_index(REVISION_INDEX, unique=True)
            try:
                await self._personas.create_index([("metadata.$**", 1)])
            except OperationFailure as error:
                log.info("wildcard index on metadata not created: %s", error)

    async def index_keys(self) -> list[list[tuple[str, Any]]]:
        """The key patterns of the persona indexes."""
        async with _translated():
            information = await self._personas.index_information()
        return [
            [(name, direction) for name, direction in spec["key"]] for spec in information.values()
        ]

    # -- reads -------------------------------------------------------------

    @staticmethod
    def _scoped(principal: Principal, *clauses: Mapping[str, Any]) -> dict[str, Any]:
        """Every query goes through here: it pins the caller's tenant. The tenant comes last:
        a planner that looks at the first condition then finds `_id` or the metadata path."""
        return merge([*clauses, {"tenant": principal.tenant}])

    def _hint(self, query: PersonaQuery) -> dict[str, Any]:
        """Keyword arguments naming the index for conditions the planner may not pair with
        it by itself. Only then: on the embedded server a hinted scan is slower than the
        planner's own choice."""
        field = query.hinted_field(self.indexed_fields)
        return {} if field is None else {"hint": dict(path_index(field))}

    async def get(self, principal: Principal, persona_id: str) -> Persona | None:
        require(principal, "read")
        async with _translated():
            document = await self._personas.find_one(
                self._scoped(principal, {"_id": ObjectId(persona_id)}), _PROJECTION
            )
        return None if document is None else _persona(document)

    async def find(
        self, principal: Principal, query: PersonaQuery, first: int, after: Cursor | None = None
    ) -> Page:
        """One page of a listing, after `after`; keyset-paginated under any order.

        One pipeline: the filter first (where an index serves it), then the position of
        the cursor as a stage of its own, so that page 50 is found the way page 1 is.
        Metadata orders compare computed sort values (`sort_expression`)."""
        require(principal, "read")
        order = query.sort()
        computed = query.by_metadata
        names = [
            f"_sort{index}" if computed else key.field for index, key in enumerate(query.order)
        ]
        sort = [
            (name, direction) for name, (_, direction) in zip([*names, "_id"], order, strict=True)
        ]
        pipeline: list[dict[str, Any]] = [{"$match": self._scoped(principal, *query.clauses())}]
        if computed:
            expressions = zip(names, query.order, strict=True)
            pipeline.append(
                {"$addFields": {name: sort_expression(key) for name, key in expressions}}
            )
        if after is not None:
            position = [*after.values, ObjectId(after.id)]
            after_position = keyset_expression if computed else keyset_filter
            pipeline.append({"$match": after_position(sort, position)})
        pipeline += [{"$sort": dict(sort)}, {"$limit": first + 1}, {"$project": _PROJECTION}]
        async with _translated():
            cursor = await self._personas.aggregate(pipeline, **self._hint(query))
            documents = await cursor.to_list(first + 1)
        items = documents[:first]
        return Page(
            items=[_persona(document) for document in items],
            cursors=[
                encode_cursor(query, [item[name] for name in names], str(item["_id"]))
                for item in items
            ],
            has_next=len(documents) > first,
        )

    async def count(self, principal: Principal, query: PersonaQuery) -> int:
        require(principal, "read")
        async with _translated():
            return await self._personas.count_documents(
                self._scoped(principal, *query.clauses()), **self._hint(query)
            )

    async def metadata_values(
        self, principal: Principal, stored: str, query: PersonaQuery, first: int
    ) -> list[ValueCount]:
        """How many personas have each value at `stored`, arrays unwound, most frequent first."""
        require(principal, "read")
        pipeline: list[dict[str, Any]] = [
            {"$match": self._scoped(principal, *query.clauses())},
            {"$project": {"_id": False, "value": "$" + stored}},
            {"$unwind": "$value"},
            {"$group": {"_id": "$value", "count": {"$sum": 1}}},
            {"$sort": {"count": -1, "_id": 1}},
            {"$limit": first},
        ]
        async with _translated():
            cursor = await self._personas.aggregate(pipeline, **self._hint(query))
            rows = await cursor.to_list(first)
        return [ValueCount(row["_id"], row["count"]) for row in rows]

    async def explain(self, principal: Principal, query: PersonaQuery) -> dict[str, Any]:
        """The server's execution statistics for a listing's filter (for index checks)."""
        async with _translated():
            result: dict[str, Any] = await self._db.command(
                "explain",
                {
                    "find": PERSONAS,
                    "filter": self._scoped(principal, *query.clauses()),
                    **self._hint(query),
                },
                verbosity="executionStats",
            )
        return result

    # -- writes: each change and its revision in one transaction -----------

    async def _transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        """`work` in a transaction, retried on transient errors only within the time limit
        (the driver would retry for up to 120 s)."""
        with time_limit(self._client.options.timeout):
            async with _translated(), self._client.start_session() as session:
                return await session.with_transaction(work)

    async def _record(
        self,
        principal: Principal,
        document: Mapping[str, Any],
        operation: Operation,
        session: AsyncClientSession,
        version: int | None = None,
    ) -> None:
        await self._revisions.insert_one(
            {
                "tenant": principal.tenant,
                "persona_id": document["_id"],
                "version": version or document["version"],
                "name": document["name"],
                "content": document["content"],
                "metadata": document.get("metadata"),
                "operation": operation.value,
                "actor": principal.key_id,
                "created_at": now(),
            },
            session=session,
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
            self._scoped(principal, {"_id": ObjectId(persona_id)}),
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

    def _target(
        self, principal: Principal, persona_id: str, expected_version: int | None
    ) -> dict[str, Any]:
        target: dict[str, Any] = {"_id": ObjectId(persona_id)}
        if expected_version is not None:
            target["version"] = expected_version
        return self._scoped(principal, target)

    async def _change(
        self,
        principal: Principal,
        persona_id: str,
        expected_version: int | None,
        update: Mapping[str, Any],
        operation: Operation,
        field: str = "metadata",
    ) -> Persona:
        """One atomic update of a persona (version +1) and its revision."""
        require(principal, "write")
        changes = {
            **update,
            "$set": {**update.get("$set", {}), "updated_at": now()},
            "$inc": {"version": 1},
        }

        async def work(session: AsyncClientSession) -> dict[str, Any]:
            target = self._target(principal, persona_id, expected_version)
            try:
                result = await self._personas.update_one(target, changes, session=session)
            except OperationFailure as error:
                if error.code in _PATH_ERRORS:
                    raise InvalidInput(field, _path_message(error)) from None
                raise
            if result.matched_count == 0:
                raise await self._refusal(principal, persona_id, expected_version, session)
            document = await self._changed(persona_id, session)
            validate_metadata(document.get("metadata"))
            await self._record(principal, document, operation, session)
            return document

        return _persona(await self._transaction(work))

    async def _changed(self, persona_id: str, session: AsyncClientSession) -> dict[str, Any]:
        """A persona as this transaction just wrote it."""
        document = await self._personas.find_one(
            {"_id": ObjectId(persona_id)}, _PROJECTION, session=session
        )
        assert document is not None, "read inside the transaction that wrote it"
        return document

    async def create(self, principal: Principal, persona: NewPersona) -> Persona:
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

        async def work(session: AsyncClientSession) -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and await self._personas.find_one(
                {"_id": document["_id"]}, {"_id": True}, session=session
            ):
                return  # an earlier attempt committed, and its answer was lost
            await self._personas.insert_one(document, session=session)
            await self._record(principal, document, Operation.CREATE, session)

        await self._transaction(work)
        return _persona(document)

    async def update(
        self,
        principal: Principal,
        persona_id: str,
        changes: PersonaChanges,
        expected_version: int | None = None,
        operation: Operation = Operation.UPDATE,
    ) -> Persona:
        """Replace the given fields; metadata given as None is removed."""
        replaced = changes.as_document()
        update: dict[str, Any] = {"$set": replaced}
        if "metadata" in replaced and replaced["metadata"] is None:
            del replaced["metadata"]
            update["$unset"] = {"metadata": ""}
        return await self._change(principal, persona_id, expected_version, update, operation)

    async def patch(
        self,
        principal: Principal,
        persona_id: str,
        patch: object,
        expected_version: int | None = None,
    ) -> Persona:
        """Apply a JSON merge patch: read and write in one transaction, so nothing is lost."""
        require(principal, "write")

        async def work(session: AsyncClientSession) -> Persona:
            current = await self._personas.find_one(
                self._target(principal, persona_id, expected_version), session=session
            )
            if current is None:
                raise await self._refusal(principal, persona_id, expected_version, session)
            changes = patch_changes(_persona(current), patch)
            replaced = changes.as_document()
            update: dict[str, Any] = {
                "$set": {**replaced, "updated_at": now()},
                "$inc": {"version": 1},
            }
            if "metadata" in replaced and replaced["metadata"] is None:
                del update["$set"]["metadata"]
                update["$unset"] = {"metadata": ""}
            await self._personas.update_one({"_id": current["_id"]}, update, session=session)
            document = await self._changed(persona_id, session)
            await self._record(principal, document, Operation.PATCH, session)
            return _persona(document)

        return await self._transaction(work)

    async def set_metadata(
        self,
        principal: Principal,
        persona_id: str,
        stored: str,
        value: Any,
        expected_version: int | None = None,
    ) -> Persona:
        return await self._change(
            principal,
            persona_id,
            expected_version,
            {"$set": {stored: value}},
            Operation.SET_METADATA,
            field="path",
        )

    async def unset_metadata(
        self,
        principal: Principal,
        persona_id: str,
        stored: str,
        expected_version: int | None = None,
    ) -> Persona:
        return await self._change(
            principal,
            persona_id,
            expected_version,
            {"$unset": {stored: ""}},
            Operation.UNSET_METADATA,
            field="path",
        )

    async def add_tags(
        self,
        principal: Principal,
        persona_id: str,
        tags: list[str],
        expected_version: int | None = None,
    ) -> Persona:
        return await self._change(
            principal,
            persona_id,
            expected_version,
            {"$addToSet": {TAGS: {"$each": tags}}},
            Operation.ADD_TAGS,
            field="tags",
        )

    async def remove_tags(
        self,
        principal: Principal,
        persona_id: str,
        tags: list[str],
        expected_version: int | None = None,
    ) -> Persona:
        return await self._change(
            principal,
            persona_id,
            expected_version,
            {"$pull": {TAGS: {"$in": tags}}},
            Operation.REMOVE_TAGS,
            field="tags",
        )

    async def restore(
        self,
        principal: Principal,
        persona_id: str,
        version: int,
        expected_version: int | None = None,
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
            principal, persona_id, changes, expected_version, operation=Operation.RESTORE
        )

    async def delete(
        self, principal: Principal, persona_id: str, expected_version: int | None = None
    ) -> str:
        """Delete a persona; its revisions stay, the last one recording the deletion."""
        require(principal, "write")

        async def work(session: AsyncClientSession) -> None:
            target = self._target(principal, persona_id, expected_version)
            document = await self._personas.find_one(target, session=session)
            if document is None:
                raise await self._refusal(principal, persona_id, expected_version, session)
            await self._personas.delete_one({"_id": document["_id"]}, session=session)
            version = document.get("version", 1) + 1
            await self._record(principal, document, Operation.DELETE, session, version)

        await self._transaction(work)
        return persona_id

    # -- revisions -----------------------------------------------------------

    async def revision(
        self, principal: Principal, persona_id: str, version: int
    ) -> Revision | None:
        require(principal, "read")
        async with _translated():
            document = await self._revisions.find_one(
                self._scoped(principal, {"persona_id": ObjectId(persona_id), "version": version})
            )
        return None if document is None else _revision(document)

    async def revisions(
        self, principal: Principal, persona_id: str, first: int, before_version: int | None = None
    ) -> RevisionPage:
        """A persona's revisions, newest first."""
        require(principal, "read")
        condition: dict[str, Any] = {"persona_id": ObjectId(persona_id)}
        if before_version is not None:
            condition["version"] = {"$lt": before_version}
        async with _translated():
            documents = await self._revisions.find(
                self._scoped(principal, condition),
                sort=[("version", -1)],
                limit=first + 1,
                hint=dict(REVISION_INDEX),
            ).to_list(first + 1)
        return RevisionPage(
            items=[_revision(document) for document in documents[:first]],
            has_next=len(documents) > first,
        )

    # -- API keys (managed by the `personas keys` command) --------------------

    async def create_key(
        self, key_id: str, secret_hash: str, tenant: str, scopes: frozenset[str], name: str | None
    ) -> ApiKey:
        document = {
            "_id": key_id,
            "hash": secret_hash,
            "tenant": tenant,
            "scopes": sorted(scopes),
            "name": name,
            "created_at": now(),
            "revoked_at": None,
        }
        async with _translated():
            await self._keys.insert_one(document)
        return _api_key(document)

    async def keys(self) -> list[ApiKey]:
        async with _translated():
            documents = await self._keys.find({}, sort=[("created_at", 1)]).to_list(None)
        return [_api_key(document) for document in documents]

    async def revoke_key(self, key_id: str) -> ApiKey:
        async with _translated():
            document = await self._keys.find_one_and_update(
                {"_id": key_id, "revoked_at": None},
                {"$set": {"revoked_at": now()}},
                return_document=ReturnDocument.AFTER,
            )
        if document is None:
            raise NotFound(f"no active API key {key_id}")
        return _api_key(document)

    async def key(self, key_id: str) -> tuple[ApiKey, str] | None:
        """An active key and the hash of its secret."""
        async with _translated():
            document = await self._keys.find_one({"_id": key_id, "revoked_at": None})
        return None if document is None else (_api_key(document), document["hash"])

    async def has_keys(self) -> bool:
        async with _translated():
            return await self._keys.find_one({"revoked_at": None}, {"_id": True}) is not None

    # -- backups (the `personas export` and `personas import` commands) ----------

    async def tenants(self) -> list[str]:
        """Every tenant with a persona or a revision."""
        async with _translated():
            found = {
                *await self._personas.distinct("tenant"),
                *await self._revisions.distinct("tenant"),
            }
        return sorted(found)

    async def count_histories(self, tenant: str) -> int:
        """How many personas of `tenant` exist or existed (the length of `histories`)."""
        count = 0
        async with _translated():
            async for _ in self._ids(tenant):
                count += 1
        return count

    async def histories(self, tenant: str) -> AsyncIterator[PersonaHistory]:
        """Every persona of `tenant` that exists or existed, by id, with its revisions.

        Each one is read persona first, then its revisions up to the persona's version,
        so a change made meanwhile never gives a history that does not fit together."""
        async with _translated():
            ids = self._ids(tenant)
            async for persona_id in ids:
                yield await self._history(tenant, persona_id)

    async def _ids(self, tenant: str) -> AsyncIterator[ObjectId]:
        """The ids of the personas and of the revised personas of `tenant`, merged, in order."""
        personas = self._personas.find({"tenant": tenant}, {"_id": True}, sort=[("_id", 1)])
        revised = await self._revisions.aggregate(
            [
                {"$match": {"tenant": tenant}},
                {"$group": {"_id": "$persona_id"}},
                {"$sort": {"_id": 1}},
            ]
        )
        pending: dict[str, ObjectId | None] = {"personas": None, "revised": None}
        sources = {"personas": personas, "revised": revised}
        for name, source in sources.items():
            pending[name] = await _next_id(source)
        while any(value is not None for value in pending.values()):
            smallest = min(value for value in pending.values() if value is not None)
            yield smallest
            for name, value in pending.items():
                if value == smallest:
                    pending[name] = await _next_id(sources[name])

    async def _history(self, tenant: str, persona_id: ObjectId) -> PersonaHistory:
        document = await self._personas.find_one({"_id": persona_id, "tenant": tenant})
        condition: dict[str, Any] = {"tenant": tenant, "persona_id": persona_id}
        if document is not None:
            condition["version"] = {"$lte": document.get("version", 1)}
        revisions = await self._revisions.find(
            condition, sort=[("version", -1)], hint=dict(REVISION_INDEX)
        ).to_list(None)
        return PersonaHistory(
            tenant=tenant,
            persona_id=str(persona_id),
            current=None if document is None else _persona(document),
            revisions=tuple(_revision(revision) for revision in reversed(revisions)),
        )

    async def restore_history(self, history: PersonaHistory) -> RestoreOutcome:
        """Write what is missing of `history`, in one transaction; idempotent.

        Revisions already stored must equal those given (else `Conflict`, nothing
        written); a database holding a later version is left alone (`NEWER`)."""
        persona_id = ObjectId(history.persona_id)
        top = max(
            [revision.version for revision in history.revisions]
            + ([history.current.version] if history.current else [])
        )

        async def work(session: AsyncClientSession) -> RestoreOutcome:
            stored = {
                document["version"]: _revision(document)
                async for document in self._revisions.find(
                    {"tenant": history.tenant, "persona_id": persona_id}, session=session
                )
            }
            for revision in history.revisions:
                if revision.version in stored and stored[revision.version] != revision:
                    raise Conflict(
                        f"persona {history.persona_id} version {revision.version} differs "
                        "from the one stored"
                    )
            document = await self._personas.find_one({"_id": persona_id}, session=session)
            if document is not None and document.get("tenant") != history.tenant:
                raise Conflict(f"persona {history.persona_id} belongs to another tenant")
            current = None if document is None else _persona(document)
            if max(stored, default=0) > top or (current is not None and current.version > top):
                return RestoreOutcome.NEWER
            missing = [revision for revision in history.revisions if revision.version not in stored]
            if not missing and current == history.current:
                return RestoreOutcome.UNCHANGED
            same_version = (
                current is not None
                and history.current is not None
                and current.version == history.current.version
            )
            if same_version and current != history.current:
                raise Conflict(
                    f"persona {history.persona_id} version {top} differs from the one stored"
                )
            if missing:
                await self._revisions.insert_many(
                    [_revision_document(history.tenant, revision) for revision in missing],
                    session=session,
                )
            if history.current is None:
                await self._personas.delete_one({"_id": persona_id}, session=session)
            elif current != history.current:
                await self._personas.replace_one(
                    {"_id": persona_id},
                    _persona_document(history.tenant, history.current),
                    upsert=True,
                    session=session,
                )
            created = document is None and not stored
            return RestoreOutcome.CREATED if created else RestoreOutcome.UPDATED

        return await self._transaction(work)


async def _next_id(source: Any) -> ObjectId | None:
    """The next `_id` of a cursor, None once it is exhausted."""
    try:
        document = await source.next()
    except StopAsyncIteration:
        return None
    found: ObjectId = document["_id"]
    return found


def _persona_document(tenant: str, persona: Persona) -> dict[str, Any]:
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
    return document


def _revision_document(tenant: str, revision: Revision) -> dict[str, Any]:
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


def _api_key(document: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        id=document["_id"],
        tenant=document["tenant"],
        scopes=frozenset(document["scopes"]),
        name=document.get("name"),
        created_at=document["created_at"],
        revoked_at=document.get("revoked_at"),
    )


TAGS = "metadata.tags"
_PATH_ERRORS = frozenset({2, 14, 28})


def _path_message(error: OperationFailure) -> str:
    message = str((error.details or {}).get("errmsg", error))
    return message.rsplit(":: caused by ::", 1)[-1].strip()


def _revision(document: Mapping[str, Any]) -> Revision:
    return Revision(
        persona_id=str(document["persona_id"]),
        version=document["version"],
        name=document["name"],
        content=document["content"],
        metadata=document.get("metadata"),
        operation=Operation(document["operation"]),
        actor=document.get("actor"),
        created_at=document["created_at"],
    )
