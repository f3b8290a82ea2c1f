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
