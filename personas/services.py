"""Use cases both APIs (and the benchmark floor) call, so that none repeats a sequence of
domain and store calls. Each takes the field names its API uses, for its errors."""

from __future__ import annotations

from personas import domain
from personas.store import PersonaStore


async def list_personas(
    store: PersonaStore,
    principal: domain.Principal,
    query: domain.PersonaQuery,
    first: int | None,
    after: str | None,
    first_field: str = "first",
    after_field: str = "after",
) -> domain.Page:
    """One page of a listing: the page size, the cursor's position, the personas after it
    and a cursor for each."""
    size = domain.page_size(first, first_field)
    position = None if after is None else domain.decode_cursor(after, query, after_field)
    found = await store.find(principal, query, size, position)
    return domain.Page(
        items=found.items,
        cursors=domain.encode_cursors(query, found.positions),
        has_next=found.has_next,
    )


async def list_revisions(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    first: int | None,
    after: str | None,
    first_field: str = "first",
    after_field: str = "after",
) -> domain.RevisionPage:
    """One page of a persona's revisions, newest first."""
    size = domain.page_size(first, first_field)
    before = (
        None if after is None else domain.decode_revision_cursor(after, persona_id, after_field)
    )
    return await store.revisions(principal, persona_id, size, before)


async def get_revision(
    store: PersonaStore, principal: domain.Principal, persona_id: str, version: int
) -> domain.Revision | None:
    """One version of a persona (the version rule checked first: 0 is bad input)."""
    return await store.revision(principal, persona_id, domain.validate_version(version, "version"))


# Writes. Each may come with an idempotency key: the write is then made at most once per key
# and tenant (a retry answers what the first request answered). The request each one
# fingerprints is written here once, so that both APIs make the same fingerprint.


async def create_persona(
    store: PersonaStore,
    principal: domain.Principal,
    new: domain.NewPersona,
    key: domain.IdempotencyKey | None = None,
) -> domain.Persona:
    request = {"name": new.name, "content": new.content, "metadata": new.metadata}
    return await store.create(principal, new, domain.once(key, "create", request))


async def update_persona(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    changes: domain.PersonaChanges,
    expected_version: int | None = None,
    key: domain.IdempotencyKey | None = None,
) -> domain.Persona:
    request = {"id": persona_id, "changes": changes.given(), "expected": expected_version}
    once = domain.once(key, "update", request)
    return await store.update(principal, persona_id, changes, expected_version, once=once)


async def patch_persona(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    patch: object,
    expected_version: int | None = None,
    key: domain.IdempotencyKey | None = None,
) -> domain.Persona:
    request = {"id": persona_id, "patch": patch, "expected": expected_version}
    once = domain.once(key, "patch", request)
    return await store.patch(principal, persona_id, patch, expected_version, once)


async def delete_persona(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    expected_version: int | None = None,
    key: domain.IdempotencyKey | None = None,
) -> str:
    once = domain.once(key, "delete", {"id": persona_id, "expected": expected_version})
    return await store.delete(principal, persona_id, expected_version, once)


async def set_metadata(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    stored: str,
    value: object,
    expected_version: int | None = None,
    key: domain.IdempotencyKey | None = None,
) -> domain.Persona:
    request = {"id": persona_id, "path": stored, "value": value, "expected": expected_version}
    once = domain.once(key, "set_metadata", request)
    return await store.set_metadata(principal, persona_id, stored, value, expected_version, once)


async def unset_metadata(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    stored: str,
    expected_version: int | None = None,
    key: domain.IdempotencyKey | None = None,
) -> domain.Persona:
    request = {"id": persona_id, "path": stored, "expected": expected_version}
    once = domain.once(key, "unset_metadata", request)
    return await store.unset_metadata(principal, persona_id, stored, expected_version, once)


async def add_tags(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    tags: list[str],
    expected_version: int | None = None,
    key: domain.IdempotencyKey | None = None,
) -> domain.Persona:
    request = {"id": persona_id, "tags": tags, "expected": expected_version}
    once = domain.once(key, "add_tags", request)
    return await store.add_tags(principal, persona_id, tags, expected_version, once)


async def remove_tags(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    tags: list[str],
    expected_version: int | None = None,
    key: domain.IdempotencyKey | None = None,
) -> domain.Persona:
    request = {"id": persona_id, "tags": tags, "expected": expected_version}
    once = domain.once(key, "remove_tags", request)
    return await store.remove_tags(principal, persona_id, tags, expected_version, once)


async def restore_revision(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    version: int,
    expected_version: int | None = None,
    key: domain.IdempotencyKey | None = None,
) -> domain.Persona:
    request = {"id": persona_id, "version": version, "expected": expected_version}
    once = domain.once(key, "restore", request)
    return await store.restore(principal, persona_id, version, expected_version, once)
