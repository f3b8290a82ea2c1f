"""GraphQL types and inputs, built from domain objects with `from_domain` / `to_domain`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Self

import strawberry
from strawberry.scalars import JSON

from personas import domain, services
from personas.store import PersonaStore


@dataclass(slots=True)
class Context:
    """What every resolver gets: the store and whom it acts for."""

    store: PersonaStore
    principal: domain.Principal


@strawberry.type(description="An LLM persona: a name, its system prompt, and free-form metadata.")
class Persona:
    id: strawberry.ID
    name: str
    content: str = strawberry.field(description="The system prompt.")
    metadata: JSON | None = strawberry.field(
        description="A JSON object, or null for personas that never had metadata."
    )
    version: int = strawberry.field(description="1 on create, +1 on every change.")
    created_at: datetime
    updated_at: datetime

    @strawberry.field(
        description="metadata.tags as strings: those of a tags list (each once, in order), "
        "or a lone string; [] otherwise."
    )
    def tags(self) -> list[str]:
        return domain.tags_of(self.metadata)

    @strawberry.field(description="Every version this persona had, newest first.")
    async def revisions(
        self,
        info: strawberry.Info[Context, None],
        first: int | None = domain.PAGE_DEFAULT,
        after: str | None = None,
    ) -> PersonaRevisionConnection:
        return await PersonaRevisionConnection.load(info.context, self.id, first, after)

    @classmethod
    def from_domain(cls, persona: domain.Persona) -> Self:
        return cls(
            id=strawberry.ID(persona.id),
            name=persona.name,
            content=persona.content,
            metadata=JSON(persona.metadata),
            version=persona.version,
            created_at=persona.created_at,
            updated_at=persona.updated_at,
        )


RevisionOperation = strawberry.enum(
    domain.Operation, name="RevisionOperation", description="The change a revision records."
)


@strawberry.type(description="A persona as one change left it. Revisions never change.")
class PersonaRevision:
    persona_id: strawberry.ID
    version: int
    name: str
    content: str
    metadata: JSON | None
    operation: domain.Operation
    actor: str | None = strawberry.field(
        description="The API key that made the change; null for anonymous access."
    )
    created_at: datetime

    @classmethod
    def from_domain(cls, revision: domain.Revision) -> Self:
        return cls(
            persona_id=strawberry.ID(revision.persona_id),
            version=revision.version,
            name=revision.name,
            content=revision.content,
            metadata=JSON(revision.metadata),
            operation=revision.operation,
            actor=revision.actor,
            created_at=revision.created_at,
        )


@strawberry.type
class PersonaRevisionConnection:
    nodes: list[PersonaRevision]
    page_info: PageInfo

    @classmethod
    async def load(
        cls, context: Context, persona_id: str, first: int | None, after: str | None
    ) -> Self:
        page = await services.list_revisions(
            context.store, context.principal, domain.parse_id(persona_id), first, after
        )
        return cls(
            nodes=[PersonaRevision.from_domain(item) for item in page.items],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class PersonaEdge:
    cursor: str
    node: Persona


@strawberry.type
class PersonaConnection:
    edges: list[PersonaEdge]
    nodes: list[Persona]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All matching personas; counted only when selected.")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def from_page(cls, page: domain.Page, count: Callable[[], Awaitable[int]]) -> Self:
        nodes = [Persona.from_domain(item) for item in page.items]
        return cls(
            edges=[
                PersonaEdge(cursor=cursor, node=node)
                for cursor, node in zip(page.cursors, nodes, strict=True)
            ],
            nodes=nodes,
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            count=count,
        )


MetadataOperator = strawberry.enum(
    domain.Operator,
    name="MetadataOperator",
    description="How a metadata filter compares the value at its path.",
)
PersonaSortField = strawberry.enum(domain.SortField, name="PersonaSortField")


@strawberry.enum
class SortDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input(
    description='A condition on one metadata path, e.g. {path: "tags", value: "prod"}.'
)
class MetadataFilter:
    path: str = strawberry.field(description='A path inside metadata: "deployment.environment".')
    value: JSON | None = None
    op: domain.Operator = domain.Operator.EQ

    def to_domain(self) -> domain.FilterSpec:
        return domain.FilterSpec(self.path, self.value, self.op)


@strawberry.input
class PersonaOrder:
    field: domain.SortField
    path: str | None = strawberry.field(default=None, description="Needed with METADATA.")
    direction: SortDirection = SortDirection.ASC

    def to_domain(self, index: int) -> domain.SortKey:
        return domain.sort_key(
            self.field,
            self.path,
            descending=self.direction is SortDirection.DESC,
            field=f"orderBy.{index}",
        )


@strawberry.type
class MetadataValueCount:
    value: JSON | None
    count: int


@strawberry.input
class CreatePersonaInput:
    name: str
    content: str
    metadata: JSON | None = strawberry.UNSET

    def to_domain(self) -> domain.NewPersona:
        metadata = None if self.metadata is strawberry.UNSET else self.metadata
        return domain.new_persona(self.name, self.content, metadata)


@strawberry.input(description="Only the fields given change; metadata replaces the whole object.")
class UpdatePersonaInput:
    name: str | None = strawberry.UNSET
    content: str | None = strawberry.UNSET
    metadata: JSON | None = strawberry.UNSET

    def to_domain(self) -> domain.PersonaChanges:
        def given(value: Any) -> Any:
            return domain.UNSET if value is strawberry.UNSET else value

        return domain.persona_changes(
            name=given(self.name), content=given(self.content), metadata=given(self.metadata)
        )
