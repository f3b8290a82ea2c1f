"""The only module that talks to MongoDB: persona storage, scoped to the caller's tenant."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Self

from bson import ObjectId
from pymongo import AsyncMongoClient, MongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
)

from personas.domain import (
    ANONYMOUS,
    Cursor,
    NewPersona,
    NotFound,
    Page,
    Persona,
    PersonaChanges,
    PersonaQuery,
    Principal,
    Unavailable,
    ValueCount,
    encode_cursor,
    keyset_filter,
    now,
)

log = logging.getLogger("personas.store")

PERSONAS = "personas"
ALWAYS_INDEXED = ("tags",)
_PROJECTION = {"tenant": False}


def client_options(timeout_ms: int) -> dict[str, Any]:
    return {
        "tz_aware": True,
        "timeoutMS": timeout_ms,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "appname": "personas",
    }


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


class PersonaStore:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], db_name: str) -> None:
        self._client = client
        self._db = client[db_name]
        self._personas: AsyncCollection[dict[str, Any]] = self._db[PERSONAS]

    @classmethod
    def connect(cls, uri: str, db_name: str, timeout_ms: int) -> Self:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, **client_options(timeout_ms)
        )
        return cls(client, db_name)

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

    async def prepare(self, indexed_paths: Iterable[str] = ()) -> None:
        """Bring stored data up to the current shape and create the indexes (idempotent)."""
        await self.adopt_legacy_personas()
        await self.ensure_indexes(indexed_paths)

    async def adopt_legacy_personas(self) -> int:
        """Personas stored before tenants and versions existed join `default` at version 1."""
        async with _translated():
            tenants = await self._personas.update_many(
                {"tenant": {"$exists": False}}, {"$set": {"tenant": ANONYMOUS.tenant}}
            )
            versions = await self._personas.update_many(
                {"version": {"$exists": False}}, {"$set": {"version": 1}}
            )
        return tenants.modified_count + versions.modified_count

    async def ensure_indexes(self, indexed_paths: Iterable[str] = ()) -> None:
        """Create the indexes listings need (idempotent)."""
        recency = [("created_at", -1), ("_id", -1)]
        specs: list[list[tuple[str, Any]]] = [
            [("tenant", 1), *recency],
            [("tenant", 1), ("updated_at", -1), ("_id", -1)],
            [("tenant", 1), ("name", 1), ("_id", 1)],
        ]
        for path in dict.fromkeys((*ALWAYS_INDEXED, *indexed_paths)):
            specs.append([("tenant", 1), (f"metadata.{path}", 1), *recency])
        async with _translated():
            for keys in specs:
                await self._personas.create_index(keys)
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
    def _scoped(principal: Principal, condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every query goes through here: it pins the caller's tenant."""
        scoped: dict[str, Any] = {"tenant": principal.tenant}
        if condition:
            scoped["$and"] = [dict(condition)]
        return scoped

    async def get(self, principal: Principal, persona_id: str) -> Persona | None:
        async with _translated():
            document = await self._personas.find_one(
                self._scoped(principal, {"_id": ObjectId(persona_id)}), _PROJECTION
            )
        return None if document is None else _persona(document)

    async def find(
        self, principal: Principal, query: PersonaQuery, first: int, after: Cursor | None = None
    ) -> Page:
        sort = query.sort()
        clauses = [query.to_mongo()]
        if after is not None:
            clauses.append(keyset_filter(sort, [*after.values, ObjectId(after.id)]))
        condition = {"$and": [clause for clause in clauses if clause]}
        async with _translated():
            cursor = self._personas.find(
                self._scoped(principal, condition if condition["$and"] else None),
                _PROJECTION,
                sort=sort,
                limit=first + 1,
            )
            documents = await cursor.to_list(first + 1)
        items = [_persona(document) for document in documents[:first]]
        return Page(
            items=items,
            cursors=[encode_cursor(query, item) for item in items],
            has_next=len(documents) > first,
        )

    async def count(self, principal: Principal, query: PersonaQuery) -> int:
        async with _translated():
            return await self._personas.count_documents(
                self._scoped(principal, query.to_mongo() or None)
            )

    async def metadata_values(
        self, principal: Principal, stored: str, query: PersonaQuery, first: int
    ) -> list[ValueCount]:
        """How many personas have each value at `stored`, arrays unwound, most frequent first."""
        pipeline: list[dict[str, Any]] = [
            {"$match": self._scoped(principal, query.to_mongo() or None)},
            {"$project": {"_id": False, "value": "$" + stored}},
            {"$unwind": "$value"},
            {"$group": {"_id": "$value", "count": {"$sum": 1}}},
            {"$sort": {"count": -1, "_id": 1}},
            {"$limit": first},
        ]
        async with _translated():
            cursor = await self._personas.aggregate(pipeline)
            rows = await cursor.to_list(first)
        return [ValueCount(row["_id"], row["count"]) for row in rows]

    # -- writes ------------------------------------------------------------

    async def create(self, principal: Principal, persona: NewPersona) -> Persona:
        moment = now()
        document: dict[str, Any] = {
            "_id": ObjectId(),
            "tenant": principal.tenant,
            "name": persona.name,
            "content": persona.content,
            "metadata": persona.metadata,
            "version": 1,
            "created_at": moment,
            "updated_at": moment,
        }
        async with _translated():
            await self._personas.insert_one(document)
        return _persona(document)

    async def update(
        self, principal: Principal, persona_id: str, changes: PersonaChanges
    ) -> Persona:
        async with _translated():
            document = await self._personas.find_one_and_update(
                self._scoped(principal, {"_id": ObjectId(persona_id)}),
                {"$set": {**changes.as_document(), "updated_at": now()}, "$inc": {"version": 1}},
                projection=_PROJECTION,
                return_document=ReturnDocument.AFTER,
            )
        if document is None:
            raise NotFound(f"persona {persona_id} not found")
        return _persona(document)

    async def delete(self, principal: Principal, persona_id: str) -> str:
        async with _translated():
            result = await self._personas.delete_one(
                self._scoped(principal, {"_id": ObjectId(persona_id)})
            )
        if result.deleted_count == 0:
            raise NotFound(f"persona {persona_id} not found")
        return persona_id
