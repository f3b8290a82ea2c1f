"""GraphQL releases: labels pointing at approved versions, their history, and diffs."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from personas import domain, services
from personas.graphql.resolvers import Filters, IdempotencyKey, given_key, listing_query
from personas.graphql.types import (
    Context,
    PersonaDiff,
    PersonaLabel,
    PersonaLabelEventConnection,
    PersonaOrder,
    PersonaRevisionConnection,
)

ContextInfo = Info[Context, None]
FromVersion = Annotated[
    int | None,
    strawberry.argument(
        description="Compare-and-set: refuse with CONFLICT unless the label points at this "
        "version now."
    ),
]


@strawberry.type
class ReleaseQuery:
    @strawberry.field(
        description="One node per persona carrying the label: the labelled version, filtered "
        "by its own metadata, paged like personas (newest labelled version first)."
    )
    async def persona_releases(
        self,
        info: ContextInfo,
        label: str,
        metadata_filter: Filters = None,
        metadata_filter_any: Filters = None,
        search: str | None = None,
        order_by: list[PersonaOrder] | None = None,
        first: int | None = domain.PAGE_DEFAULT,
        after: str | None = None,
    ) -> PersonaRevisionConnection:
        context = info.context
        query = listing_query(metadata_filter, metadata_filter_any, search, order_by)
        page = await services.list_releases(
            context.store, context.principal, label, query, first, after
        )
        name = domain.validate_label(label)
        return PersonaRevisionConnection.from_page(
            page, lambda: context.store.labels.count_releases(context.principal, name, query)
        )

    @strawberry.field(description="A persona's label moves, newest first.")
    async def persona_label_history(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        label: str | None = None,
        first: int | None = domain.PAGE_DEFAULT,
        after: str | None = None,
    ) -> PersonaLabelEventConnection:
        context = info.context
        page = await services.label_history(
            context.store, context.principal, domain.parse_id(id), label, first, after
        )
        return PersonaLabelEventConnection.from_page(page)

    @strawberry.field(
        description="What changed between two versions of a persona; null when it lacks either."
    )
    async def persona_diff(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        from_version: Annotated[int, strawberry.argument(name="from")],
        to_version: Annotated[int, strawberry.argument(name="to")],
    ) -> PersonaDiff | None:
        context = info.context
        found = await services.persona_diff(
            context.store, context.principal, domain.parse_id(id), from_version, to_version
        )
        return None if found is None else PersonaDiff.from_domain(found)


@strawberry.type
class ReleaseMutation:
    @strawberry.mutation(
        description="Point a label at a version (setting it, or moving it). Protected labels "
        "need the approve scope."
    )
    async def set_persona_label(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        label: str,
        version: int,
        from_version: FromVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> PersonaLabel:
        context = info.context
        found = await services.set_label(
            context.store,
            context.principal,
            domain.parse_id(id),
            label,
            version,
            from_version,
            key=given_key(idempotency_key),
        )
        return PersonaLabel.from_domain(found)

    @strawberry.mutation(description="Take a label off a persona.")
    async def remove_persona_label(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        label: str,
        from_version: FromVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> strawberry.ID:
        context = info.context
        persona_id = domain.parse_id(id)
        await services.remove_label(
            context.store,
            context.principal,
            persona_id,
            label,
            from_version,
            key=given_key(idempotency_key),
        )
        return strawberry.ID(persona_id)
