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
        has_next=found.has_next,
        encode=lambda start, stop: domain.encode_cursors(query, found.positions[start:stop]),
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
        has_next=found.has_next,
        encode=lambda start, stop: [
            domain.encode_revision_cursor(item) for item in found.items[start:stop]
        ],
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
        has_next=found.has_next,
        encode=lambda start, stop: domain.encode_cursors(query, found.positions[start:stop]),
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
    key: domain.IdempotencyKey | None = None,
) -> domain.Label:
    """Point a label at a version (compare-and-set with `from_version`)."""
    name = domain.settable_label(label)
    version = domain.validate_version(version, "version")
    expected = domain.expected_version(from_version, from_field)
    request = {"id": persona_id, "label": name, "version": version, "expected": expected}
    once = domain.once(key, "set_label", request)
    return await store.labels.set(principal, persona_id, name, version, expected, once)


async def remove_label(
    store: PersonaStore,
    principal: domain.Principal,
    persona_id: str,
    label: str,
    from_version: int | None,
    from_field: str = "fromVersion",
    key: domain.IdempotencyKey | None = None,
) -> None:
    name = domain.settable_label(label)
    expected = domain.expected_version(from_version, from_field)
    once = domain.once(key, "remove_label", {"id": persona_id, "label": name, "expected": expected})
    await store.labels.remove(principal, persona_id, name, expected, once)


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
