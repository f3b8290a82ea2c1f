"""API keys in MongoDB: created, listed and revoked by the `personas keys` command,
looked up by the authentication middleware."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from personas.domain import ApiKey, NotFound, now
from personas.store.errors import translated

API_KEYS: Final = "api_keys"


class KeyStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._keys = collection

    async def create(
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
        with translated():
            await self._keys.insert_one(document)
        return _api_key(document)

    async def all(self) -> list[ApiKey]:
        with translated():
            documents = await self._keys.find({}, sort=[("created_at", 1)]).to_list(None)
        return [_api_key(document) for document in documents]

    async def revoke(self, key_id: str) -> ApiKey:
        with translated():
            document = await self._keys.find_one_and_update(
                {"_id": key_id, "revoked_at": None},
                {"$set": {"revoked_at": now()}},
                return_document=ReturnDocument.AFTER,
            )
        if document is None:
            raise NotFound(f"no active API key {key_id}")
        return _api_key(document)

    async def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        """An active key and the hash of its secret."""
        with translated():
            document = await self._keys.find_one({"_id": key_id, "revoked_at": None})
        return None if document is None else (_api_key(document), document["hash"])

    async def any(self) -> bool:
        """Whether any active key exists."""
        with translated():
            return await self._keys.find_one({"revoked_at": None}, {"_id": True}) is not None


def _api_key(document: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        id=document["_id"],
        tenant=document["tenant"],
        scopes=frozenset(document["scopes"]),
        name=document.get("name"),
        created_at=document["created_at"],
        revoked_at=document.get("revoked_at"),
    )
