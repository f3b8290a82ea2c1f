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
) -> domain.Page[domain.Persona]:
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
) -> domain.Page[domain.Revision]:
    """One page of a persona's revisions, newest first."""
    size = domain.page_size(first, first_field)
    before = (
        None if after is None else domain.decode_revision_cursor(after, persona_id, after_field)
    )
    found = await store.revisions(principal, persona_id, size, before)
    return domain.Page(
        items=found.items,
        cursors=[domain.encode_revision_cursor(item) for item in found.items],
        has_next=found.has_next,
    )


async def get_revision(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    version: int | None = None,
    label: str | None = None,
) -> domain.Revision | None:
    """One version of a persona, by number or by label (`latest` is the current version):
    exactly one of them. Version 0 is bad input, like every version below 1."""
    if (version is None) == (label is None):
        raise domain.InvalidInput("version", "give exactly one of version and label")
    if label is not None:
        return await store.labels.target(principal, persona_id, domain.validate_label(label))
    assert version is not None
    return await store.revision(principal, persona_id, domain.validate_version(version, "version"))


async def list_releases(
    store: PersonaStore,
    principal: domain.Principal,
    label: str,
    query: domain.PersonaQuery,
    first: int | None,
    after: str | None,
    first_field: str = "first",
    after_field: str = "after",
) -> domain.Page[domain.Revision]:
    """One page of the personas carrying `label`: their labelled versions, filtered by
    those versions' metadata."""
    name = domain.settable_label(label)
    size = domain.page_size(first, first_field)
    position = None if after is None else domain.decode_cursor(after, query, after_field)
    found = await store.labels.releases(principal, name, query, size, position)
    return domain.Page(
        items=found.items,
        cursors=domain.encode_cursors(query, found.positions),
        has_next=found.has_next,
    )


async def label_history(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    label: str | None,
    first: int | None,
    after: str | None,
    first_field: str = "first",
    after_field: str = "after",
) -> domain.LabelEventPage:
    """A persona's label moves (of one label, or of all), newest first."""
    name = None if label is None else domain.validate_label(label)
    size = domain.page_size(first, first_field)
    before = None if after is None else domain.decode_event_cursor(after, persona_id, after_field)
    return await store.labels.history(principal, persona_id, name, size, before)


async def set_label(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    label: str,
    version: int,
    from_version: int | None,
    from_field: str = "fromVersion",
) -> domain.Label:
    """Point a label at a version (compare-and-set with `from_version`)."""
    return await store.labels.set(
        principal,
        persona_id,
        domain.settable_label(label),
        domain.validate_version(version, "version"),
        domain.expected_version(from_version, from_field),
    )


async def remove_label(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    label: str,
    from_version: int | None,
    from_field: str = "fromVersion",
) -> None:
    await store.labels.remove(
        principal,
        persona_id,
        domain.settable_label(label),
        domain.expected_version(from_version, from_field),
    )


async def persona_diff(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    from_version: int,
    to_version: int,
    from_field: str = "from",
    to_field: str = "to",
) -> domain.PersonaDiff | None:
    """What changed between two versions; None when the persona lacks either."""
    old = await store.revision(
        principal, persona_id, domain.validate_version(from_version, from_field)
    )
    new = await store.revision(principal, persona_id, domain.validate_version(to_version, to_field))
    if old is None or new is None:
        return None
    return domain.diff(old, new)
