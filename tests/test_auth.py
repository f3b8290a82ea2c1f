"""API keys take effect at once: only answers a new key cannot make wrong are cached."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from personas import auth
from personas.auth import generate_key
from personas.store import KeyStore, PersonaStore

VALUES = {"query": 'query { metadataValues(path: "tags") { value count } }'}


async def issue(store: PersonaStore, tenant: str = "acme") -> tuple[str, str]:
    new = generate_key()
    await store.keys.create(new.id, new.secret_hash, tenant, frozenset({"read"}), "test")
    return new.id, new.token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_the_first_key_ends_anonymous_access_at_once(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    for _ in range(3):  # anonymous answers were given, and could have been cached
        assert (await client.post("/graphql", json=VALUES)).status_code == 200

    await issue(store)

    refused = await client.post("/graphql", json=VALUES)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await client.get("/v1/personas")).status_code == 401


async def test_a_key_used_before_it_existed_works_once_created(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    await issue(store, "other")  # keys exist: no anonymous access
    new = generate_key()
    early = await client.post("/graphql", json=VALUES, headers=bearer(new.token))
    assert early.status_code == 401

    await store.keys.create(new.id, new.secret_hash, "acme", frozenset({"read"}), "late")

    late = await client.post("/graphql", json=VALUES, headers=bearer(new.token))
    assert late.status_code == 200, late.text
    assert late.json() == {"data": {"metadataValues": []}}


async def test_a_revoked_key_stops_working_within_the_cache_time(
    client: httpx.AsyncClient, store: PersonaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_SECONDS", 0.5)
    key_id, token = await issue(store)
    assert (await client.post("/graphql", json=VALUES, headers=bearer(token))).status_code == 200

    await store.keys.revoke(key_id)
    revoked_at = time.monotonic()
    while (await client.post("/graphql", json=VALUES, headers=bearer(token))).status_code != 401:
        assert time.monotonic() - revoked_at < 0.5 + 2.0, "still accepted past the cache time"
        await asyncio.sleep(0.05)


async def test_a_known_key_is_not_looked_up_or_hashed_again_within_the_cache_time(
    client: httpx.AsyncClient, store: PersonaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, token = await issue(store)
    lookups: list[str] = []
    hashed: list[str] = []
    find, hash_secret = KeyStore.find, auth.hash_secret

    async def counted_find(self: KeyStore, wanted: str) -> object:
        lookups.append(wanted)
        return await find(self, wanted)

    def counted_hash(secret: str) -> str:
        hashed.append(secret)
        return hash_secret(secret)

    monkeypatch.setattr(KeyStore, "find", counted_find)
    monkeypatch.setattr(auth, "hash_secret", counted_hash)
    for _ in range(5):
        assert (await client.get("/v1/personas", headers=bearer(token))).status_code == 200
    assert lookups == [key_id]
    assert len(hashed) == 1  # the header is remembered with its principal
    wrong = token[:-1] + ("a" if token[-1] != "a" else "b")
    for _ in range(2):  # a refused header is checked every time
        assert (await client.get("/v1/personas", headers=bearer(wrong))).status_code == 401
    assert len(hashed) == 3
