"""The event log: every change appends one event in its own transaction, numbered per
tenant without gaps; refused changes append nothing; events expire after the retention."""

from __future__ import annotations

from typing import Any

import pytest

from personas import domain
from personas.domain import ALL_SCOPES, PersonaChanges, Principal, new_persona
from personas.domain.events import EventType
from personas.store import PersonaStore
from personas.store.events import EXPIRY_INDEX, EventLog

ACME = Principal("acme", ALL_SCOPES, "k1")
OTHER = Principal("other", ALL_SCOPES, "k2")


async def log_of(store: PersonaStore, tenant: str = "acme") -> list[Any]:
    return await store.events.since(tenant, 0, 1000)


async def test_every_change_appends_its_event(store: PersonaStore) -> None:
    persona = await store.create(ACME, new_persona("P", "one", {"tags": ["dev"]}))
    pid = persona.id
    await store.update(ACME, pid, PersonaChanges(content="two"))
    await store.patch(ACME, pid, {"metadata": {"status": "draft"}})
    await store.set_metadata(ACME, pid, "metadata.owner", "ana")
    await store.unset_metadata(ACME, pid, "metadata.owner")
    await store.add_tags(ACME, pid, ["prod"])
    await store.remove_tags(ACME, pid, ["dev"])
    await store.restore(ACME, pid, 1)
    await store.labels.set(ACME, pid, "staging", 2)
    await store.labels.set(ACME, pid, "staging", 8)
    await store.labels.set(ACME, pid, "canary", 1)
    await store.labels.remove(ACME, pid, "canary")
    await store.delete(ACME, pid)

    events = await log_of(store)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert [(event.type, event.version) for event in events] == [
        (EventType.CREATED, 1),
        (EventType.UPDATED, 2),
        (EventType.UPDATED, 3),
        (EventType.UPDATED, 4),
        (EventType.UPDATED, 5),
        (EventType.UPDATED, 6),
        (EventType.UPDATED, 7),
        (EventType.UPDATED, 8),
        (EventType.LABEL_MOVED, 2),
        (EventType.LABEL_MOVED, 8),
        (EventType.LABEL_MOVED, 1),
        (EventType.LABEL_MOVED, 1),
        (EventType.DELETED, 9),
        (EventType.LABEL_MOVED, 8),  # the deletion takes staging off
    ]
    assert {event.persona_id for event in events} == {pid}
    assert {event.actor for event in events} == {"k1"}
    operations = [event.persona.operation for event in events[:8] if event.persona]
    assert operations == [
        domain.Operation.CREATE,
        domain.Operation.UPDATE,
        domain.Operation.PATCH,
        domain.Operation.SET_METADATA,
        domain.Operation.UNSET_METADATA,
        domain.Operation.ADD_TAGS,
        domain.Operation.REMOVE_TAGS,
        domain.Operation.RESTORE,
    ]
    assert events[6].persona is not None
    assert events[6].persona.metadata == {"tags": ["prod"], "status": "draft"}
    restored = events[7].persona
    assert restored is not None
    assert (restored.content, restored.metadata) == ("one", {"tags": ["dev"]})
    moves = [event.label_move for event in events if event.label_move]
    assert [(move.label, move.from_version, move.to_version) for move in moves] == [
        ("staging", None, 2),
        ("staging", 2, 8),
        ("canary", None, 1),
        ("canary", 1, None),
        ("staging", 8, None),
    ]
    assert events[9].label is not None
    assert (events[9].label.name, events[9].label.version) == ("staging", 8)
    assert events[11].label is None  # removed
    deleted = events[12].persona
    assert deleted is not None
    assert deleted.operation is domain.Operation.DELETE
    assert deleted.content == "one"  # as it was


async def test_refused_changes_append_nothing_and_tenants_count_apart(
    store: PersonaStore,
) -> None:
    persona = await store.create(ACME, new_persona("P", "p", {"tags": ["a"]}))
    await store.create(OTHER, new_persona("O", "o"))
    with pytest.raises(domain.Conflict):
        await store.update(ACME, persona.id, PersonaChanges(content="x"), expected_version=7)
    with pytest.raises(domain.InvalidInput):
        await store.set_metadata(ACME, persona.id, "metadata.tags.deep", 1)
    with pytest.raises(domain.NotFound):
        await store.labels.set(ACME, persona.id, "staging", 9)
    with pytest.raises(domain.Forbidden):
        await store.update(
            Principal("acme", frozenset({"read"})), persona.id, PersonaChanges(content="x")
        )
    await store.update(ACME, persona.id, PersonaChanges(content="y"))
    assert [event.seq for event in await log_of(store)] == [1, 2]
    assert [event.seq for event in await log_of(store, "other")] == [1]
    assert await store.events.latest("acme") == 2
    assert await store.events.latest("nobody") == 0
    assert await store.events.after(ACME, 1, 10) == (await log_of(store))[1:]
    with pytest.raises(domain.Forbidden):
        await store.events.after(Principal("acme", frozenset({"write"})), 0, 10)


async def test_events_expire_after_the_retention(store: PersonaStore) -> None:
    indexes = await store._database.events.index_information()
    assert indexes[EXPIRY_INDEX]["expireAfterSeconds"] == 7 * 86400
    longer = EventLog(store._database, retention_days=30)
    await longer.ensure_indexes()
    indexes = await store._database.events.index_information()
    assert indexes[EXPIRY_INDEX]["expireAfterSeconds"] == 30 * 86400


async def test_resuming_after_expired_events_is_refused(store: PersonaStore) -> None:
    persona = await store.create(ACME, new_persona("P", "p"))
    for index in range(3):
        await store.update(ACME, persona.id, PersonaChanges(content=f"c{index}"))
    await store.events.check_resume(ACME, 1)
    await store.events.check_resume(ACME, 4)
    with pytest.raises(domain.InvalidInput, match="there is no event 5"):
        await store.events.check_resume(ACME, 5)
    # What the TTL monitor does to old events, done now:
    await store._database.events.delete_many({"tenant": "acme", "seq": {"$lte": 2}})
    with pytest.raises(domain.InvalidInput, match="no longer kept"):
        await store.events.check_resume(ACME, 1)
    await store.events.check_resume(ACME, 2)  # 3 and 4 are still there
