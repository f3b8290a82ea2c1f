"""The store on its own: domain objects in and out, tenant scoping, scopes, the one write
path with its revision, and driver errors turned into domain errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import (
    AutoReconnect,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

from personas import domain
from personas.domain import ANONYMOUS, FilterSpec, Principal
from personas.store import PersonaStore
from personas.store.errors import translated

ACME = Principal(tenant="acme", scopes=frozenset({"read", "write"}), key_id="k-acme")
READER = Principal(tenant="acme", scopes=frozenset({"read"}), key_id="k-reader")
GLOBEX = Principal(tenant="globex", scopes=frozenset({"read", "write"}), key_id="k-globex")


def persona(name: str = "P", metadata: dict[str, Any] | None = None) -> domain.NewPersona:
    return domain.new_persona(name, "content", metadata)


async def test_every_change_goes_through_one_write_path_with_its_revision(
    store: PersonaStore,
) -> None:
    created = await store.create(ACME, persona(metadata={"tags": ["a"], "n": 1}))
    changes = [
        store.update(ACME, created.id, domain.persona_changes(name="Q")),
        store.patch(ACME, created.id, {"metadata": {"n": 2}}),
        store.set_metadata(ACME, created.id, "metadata.deep.x", 1),
        store.unset_metadata(ACME, created.id, "metadata.deep"),
        store.add_tags(ACME, created.id, ["b"]),
        store.remove_tags(ACME, created.id, ["a"]),
        store.restore(ACME, created.id, 1),
    ]
    versions = [(await change).version for change in changes]
    assert versions == [2, 3, 4, 5, 6, 7, 8]
    page = await store.revisions(ACME, created.id, 20)
    operations = [revision.operation.value for revision in reversed(page.items)]
    assert operations == [
        "create",
        "update",
        "patch",
        "set_metadata",
        "unset_metadata",
        "add_tags",
        "remove_tags",
        "restore",
    ]
    assert {revision.actor for revision in page.items} == {"k-acme"}
    restored = await store.get(ACME, created.id)
    assert restored is not None
    assert (restored.name, restored.metadata) == ("P", {"tags": ["a"], "n": 1})


async def test_a_patch_that_does_not_fit_the_stored_metadata_names_the_field(
    store: PersonaStore,
) -> None:
    created = await store.create(ACME, persona(metadata={"version": "2.0"}))
    with pytest.raises(domain.InvalidInput) as refused:
        await store.set_metadata(ACME, created.id, "metadata.version.major", 2)
    assert refused.value.field == "path"
    with pytest.raises(domain.InvalidInput) as refused:
        await store.patch(ACME, created.id, {"metadata": {"$bad": 1}})
    assert refused.value.field == "metadata"
    unchanged = await store.get(ACME, created.id)
    assert unchanged is not None
    assert unchanged.version == 1
    assert len((await store.revisions(ACME, created.id, 20)).items) == 1


async def test_a_conditional_write_at_another_version_is_a_conflict_and_writes_nothing(
    store: PersonaStore,
) -> None:
    created = await store.create(ACME, persona())
    with pytest.raises(domain.Conflict) as conflict:
        await store.patch(ACME, created.id, {"name": "X"}, expected_version=2)
    assert conflict.value.current_version == 1
    with pytest.raises(domain.NotFound):
        await store.patch(ACME, "0" * 24, {"name": "X"})
    assert (await store.get(ACME, created.id)) == created


async def test_tenants_are_scoped_in_the_store(store: PersonaStore) -> None:
    mine = await store.create(ACME, persona(metadata={"tags": ["prod"]}))
    await store.create(GLOBEX, persona(metadata={"tags": ["prod"]}))
    assert await store.get(GLOBEX, mine.id) is None
    with pytest.raises(domain.NotFound):
        await store.update(GLOBEX, mine.id, domain.persona_changes(name="taken"))
    with pytest.raises(domain.NotFound):
        await store.delete(GLOBEX, mine.id)
    assert await store.revision(GLOBEX, mine.id, 1) is None
    query = domain.persona_query(all_of=[FilterSpec("tags", "prod")])
    assert await store.count(ACME, query) == 1
    found = await store.find(ACME, query, 10)
    assert [item.id for item in found.items] == [mine.id]
    assert found.positions == [domain.Cursor((mine.created_at,), mine.id)]


async def test_scopes_are_checked_in_the_store(store: PersonaStore) -> None:
    created = await store.create(ACME, persona())
    with pytest.raises(domain.Forbidden):
        await store.create(READER, persona())
    with pytest.raises(domain.Forbidden):
        await store.delete(READER, created.id)
    with pytest.raises(domain.Forbidden):
        await store.labels.set(READER, created.id, "beta", 1)
    assert await store.get(READER, created.id) == created


async def test_keys_have_their_own_store(store: PersonaStore) -> None:
    assert await store.keys.any() is False
    key = await store.keys.create("k1", "hash", "acme", frozenset({"read"}), "billing")
    assert key.principal == Principal("acme", frozenset({"read"}), "k1")
    assert await store.keys.any() is True
    assert await store.keys.find("k1") == (key, "hash")
    revoked = await store.keys.revoke("k1")
    assert revoked.revoked_at is not None
    assert await store.keys.find("k1") is None
    assert await store.keys.any() is False
    with pytest.raises(domain.NotFound):
        await store.keys.revoke("k1")
    assert [item.id for item in await store.keys.all()] == ["k1"]


async def test_an_unreachable_database_is_unavailable() -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:1/?directConnection=true", timeoutMS=300
    )
    unreachable = PersonaStore(client, "nowhere")
    try:
        with pytest.raises(domain.Unavailable):
            await unreachable.get(ANONYMOUS, "a" * 24)
        with pytest.raises(domain.Unavailable):
            await unreachable.create(ANONYMOUS, persona())
        assert await unreachable.ping() is False
    finally:
        await unreachable.close()


async def test_translation_leaves_other_errors_alone() -> None:
    with pytest.raises(KeyError), translated():
        raise KeyError("not a driver error")
    with pytest.raises(asyncio.CancelledError), translated("metadata"):
        raise asyncio.CancelledError
    unknown = OperationFailure("no such command", code=59)
    with pytest.raises(OperationFailure) as raised, translated("metadata"):
        raise unknown
    assert raised.value is unknown
    with translated():
        pass  # nothing raised: nothing to translate


@pytest.mark.parametrize(
    ("error", "path_field", "expected", "chained"),
    [
        (AutoReconnect("connection refused"), None, domain.Unavailable, True),
        (ExecutionTimeout("operation exceeded time limit", 50), None, domain.Unavailable, True),
        (NetworkTimeout("timed out"), None, domain.Unavailable, True),
        (WTimeoutError("waiting for replication timed out", 64), None, domain.Unavailable, True),
        (
            OperationFailure("Cannot create field 'x' in element", 28),
            "metadata",
            domain.InvalidInput,
            False,
        ),
    ],
)
async def test_driver_errors_become_domain_errors(
    error: PyMongoError, path_field: str | None, expected: type[Exception], chained: bool
) -> None:
    async def failing() -> None:
        await asyncio.sleep(0)  # awaits inside, as every store call does
        raise error

    with pytest.raises(expected) as raised, translated(path_field):
        await failing()
    assert (raised.value.__cause__ is error) is chained
    if expected is domain.InvalidInput:
        assert isinstance(raised.value, domain.InvalidInput)
        assert raised.value.field == "metadata"
        assert "Cannot create field" in raised.value.message
