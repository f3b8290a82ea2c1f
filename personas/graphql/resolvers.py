"""GraphQL queries and mutations: thin adapters from the schema's inputs to the services,
the domain rules and the store."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from personas import domain, services
from personas.graphql.types import (
    Context,
    CreatePersonaInput,
    MetadataFilter,
    MetadataValueCount,
    Persona,
    PersonaConnection,
    PersonaOrder,
    PersonaRevision,
    PersonaRevisionConnection,
    UpdatePersonaInput,
)

ContextInfo = Info[Context, None]
Filters = list[MetadataFilter] | None


QUERY_FIELDS = domain.QueryFields(
    all_of="metadataFilter", any_of="metadataFilterAny", search="search", order="orderBy"
)


def specs(filters: Filters) -> list[domain.FilterSpec]:
    return [item.to_domain() for item in filters or ()]


def listing_query(
    metadata_filter: Filters,
    metadata_filter_any: Filters,
    search: str | None,
    order_by: list[PersonaOrder] | None,
) -> domain.PersonaQuery:
    """The validated query of a listing's arguments (personas and releases alike)."""
    return domain.persona_query(
        all_of=specs(metadata_filter),
        any_of=specs(metadata_filter_any),
        search=search,
        order=[item.to_domain(index) for index, item in enumerate(order_by or ())],
        fields=QUERY_FIELDS,
    )


@strawberry.type
class Query:
    @strawberry.field(description="The persona with this id, or null when there is none.")
    async def persona(self, info: ContextInfo, id: strawberry.ID) -> Persona | None:
        context = info.context
        found = await context.store.get(context.principal, domain.parse_id(id))
        return None if found is None else Persona.from_domain(found)

    @strawberry.field(description="Personas matching every metadataFilter, newest first.")
    async def personas(
        self,
        info: ContextInfo,
        metadata_filter: Annotated[
            Filters, strawberry.argument(description="All of these must match.")
        ] = None,
        metadata_filter_any: Annotated[
            Filters, strawberry.argument(description="At least one of these must match.")
        ] = None,
        search: Annotated[
            str | None,
            strawberry.argument(description="Case-insensitive substring of the name."),
        ] = None,
        order_by: list[PersonaOrder] | None = None,
        first: int | None = domain.PAGE_DEFAULT,
        after: str | None = None,
    ) -> PersonaConnection:
        context = info.context
        query = listing_query(metadata_filter, metadata_filter_any, search, order_by)
        page = await services.list_personas(context.store, context.principal, query, first, after)
        return PersonaConnection.from_page(
            page, lambda: context.store.count(context.principal, query)
        )

    @strawberry.field(
        description="How many personas have each value at a metadata path (arrays unwound)."
    )
    async def metadata_values(
        self,
        info: ContextInfo,
        path: str,
        metadata_filter: Filters = None,
        first: int | None = domain.FACETS_DEFAULT,
    ) -> list[MetadataValueCount]:
        context = info.context
        stored = domain.validate_path(path, "path")
        query = domain.persona_query(all_of=specs(metadata_filter), fields=QUERY_FIELDS)
        size = domain.facet_size(first)
        counts = await context.store.metadata_values(context.principal, stored, query, size)
        return [MetadataValueCount(value=item.value, count=item.count) for item in counts]

    @strawberry.field(
        description="One version of a persona, also after it was deleted: by number, or by "
        'label ("latest" is the current version). Give exactly one of version and label.'
    )
    async def persona_revision(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        version: int | None = None,
        label: str | None = None,
    ) -> PersonaRevision | None:
        context = info.context
        found = await services.get_revision(
            context.store, context.principal, domain.parse_id(id), version, label
        )
        return None if found is None else PersonaRevision.from_domain(found)

    @strawberry.field(description="A persona's revisions, newest first, also after deletion.")
    async def persona_revisions(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        first: int | None = domain.PAGE_DEFAULT,
        after: str | None = None,
    ) -> PersonaRevisionConnection:
        return await PersonaRevisionConnection.load(info.context, id, first, after)


ExpectedVersion = Annotated[
    int | None,
    strawberry.argument(description="Refuse with CONFLICT unless the persona is at this version."),
]


def _expected(version: int | None) -> int | None:
    return domain.expected_version(version, "expectedVersion")


IdempotencyKey = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Makes a retry safe: the same key with the same arguments answers what the first "
            "call answered and writes nothing again; with other arguments it is refused "
            "(BAD_USER_INPUT). Keys are kept 24 hours, per tenant."
        )
    ),
]


def given_key(raw: str | None) -> domain.IdempotencyKey | None:
    return domain.idempotency_key(raw, "idempotencyKey")


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_persona(
        self, info: ContextInfo, input: CreatePersonaInput, idempotency_key: IdempotencyKey = None
    ) -> Persona:
        context = info.context
        created = await services.create_persona(
            context.store, context.principal, input.to_domain(), given_key(idempotency_key)
        )
        return Persona.from_domain(created)

    @strawberry.mutation
    async def update_persona(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        input: UpdatePersonaInput,
        expected_version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Persona:
        context = info.context
        persona_id = domain.parse_id(id)
        changes = input.to_domain()
        updated = await services.update_persona(
            context.store,
            context.principal,
            persona_id,
            changes,
            _expected(expected_version),
            given_key(idempotency_key),
        )
        return Persona.from_domain(updated)

    @strawberry.mutation
    async def delete_persona(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        expected_version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> strawberry.ID:
        context = info.context
        deleted = await services.delete_persona(
            context.store,
            context.principal,
            domain.parse_id(id),
            _expected(expected_version),
            given_key(idempotency_key),
        )
        return strawberry.ID(deleted)

    @strawberry.mutation(description="Set the value at a metadata path, in one atomic update.")
    async def set_persona_metadata(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        path: str,
        value: JSON,
        expected_version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Persona:
        context = info.context
        persona_id = domain.parse_id(id)
        stored, checked = domain.metadata_assignment(path, value)
        changed = await services.set_metadata(
            context.store,
            context.principal,
            persona_id,
            stored,
            checked,
            _expected(expected_version),
            given_key(idempotency_key),
        )
        return Persona.from_domain(changed)

    @strawberry.mutation(description="Remove a metadata path, in one atomic update.")
    async def unset_persona_metadata(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        path: str,
        expected_version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Persona:
        context = info.context
        persona_id = domain.parse_id(id)
        stored = domain.validate_path(path, "path")
        changed = await services.unset_metadata(
            context.store,
            context.principal,
            persona_id,
            stored,
            _expected(expected_version),
            given_key(idempotency_key),
        )
        return Persona.from_domain(changed)

    @strawberry.mutation(description="Add tags to metadata.tags (kept unique), atomically.")
    async def add_persona_tags(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        tags: list[str],
        expected_version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Persona:
        context = info.context
        persona_id = domain.parse_id(id)
        changed = await services.add_tags(
            context.store,
            context.principal,
            persona_id,
            domain.validate_tags(tags),
            _expected(expected_version),
            given_key(idempotency_key),
        )
        return Persona.from_domain(changed)

    @strawberry.mutation(description="Remove tags from metadata.tags, atomically.")
    async def remove_persona_tags(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        tags: list[str],
        expected_version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Persona:
        context = info.context
        persona_id = domain.parse_id(id)
        changed = await services.remove_tags(
            context.store,
            context.principal,
            persona_id,
            domain.validate_tags(tags),
            _expected(expected_version),
            given_key(idempotency_key),
        )
        return Persona.from_domain(changed)

    @strawberry.mutation(description="Make a new version equal to an old one.")
    async def restore_persona_revision(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        version: int,
        expected_version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Persona:
        context = info.context
        persona_id = domain.parse_id(id)
        restored = await services.restore_revision(
            context.store,
            context.principal,
            persona_id,
            version,
            _expected(expected_version),
            given_key(idempotency_key),
        )
        return Persona.from_domain(restored)
