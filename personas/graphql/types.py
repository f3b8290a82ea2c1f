"""GraphQL types and inputs, built from domain objects with `from_domain` / `to_domain`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Self

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from personas import domain, services
from personas.store import PersonaStore

if TYPE_CHECKING:
    from personas.notifications.runtime import Notifications


@dataclass(slots=True)
class Context:
    """What every resolver gets: the store and whom it acts for (over a WebSocket, also
    the change notifications, and how to close the connection)."""

    store: PersonaStore
    principal: domain.Principal
    notifications: Notifications | None = None
    disconnect: Callable[[int, str], Awaitable[None]] | None = None
    authenticate: Callable[[str | None], Awaitable[domain.Principal]] | None = None
    connection_params: dict[str, object] | None = None
    """The payload of a WebSocket's connection_init."""
    cache_labels: bool = True
    """False for a connection that outlives one response, whose labels change meanwhile."""
    _labels: DataLoader[str, list[domain.Label]] | None = field(default=None, init=False)

    @property
    def labels(self) -> DataLoader[str, list[domain.Label]]:
        """The labels of personas, batched: one query for every revision of a response
        (made when a response first asks for labels)."""
        if self._labels is None:

            async def load(persona_ids: Sequence[str]) -> list[list[domain.Label]]:
                return await self.store.labels.of(self.principal, list(persona_ids))

            self._labels = DataLoader(load_fn=load, cache=self.cache_labels)
        return self._labels


@strawberry.type(description="A label (release) pointing at one version of a persona.")
class PersonaLabel:
    name: str
    version: int
    set_by: str | None = strawberry.field(
        description="The API key that set it; null for anonymous access."
    )
    set_at: datetime

    @classmethod
    def from_domain(cls, label: domain.Label) -> Self:
        return cls(name=label.name, version=label.version, set_by=label.set_by, set_at=label.set_at)


@strawberry.type(description="One move of a label: set anew, moved, or removed.")
class PersonaLabelEvent:
    label: str
    from_version: int | None = strawberry.field(description="null when the label was set anew.")
    to_version: int | None = strawberry.field(description="null when the label was removed.")
    actor: str | None
    at: datetime

    @classmethod
    def from_domain(cls, event: domain.LabelEvent) -> Self:
        return cls(
            label=event.label,
            from_version=event.from_version,
            to_version=event.to_version,
            actor=event.actor,
            at=event.at,
        )


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
    labels: list[PersonaLabel] = strawberry.field(
        description="The labels (releases) set on this persona, sorted by name."
    )

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
            labels=[PersonaLabel.from_domain(label) for label in persona.labels],
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

    @strawberry.field(description="The labels pointing at this version now.")
    async def labels(self, info: strawberry.Info[Context, None]) -> list[str]:
        found = await info.context.labels.load(str(self.persona_id))
        return [label.name for label in found if label.version == self.version]

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
class PersonaRevisionEdge:
    cursor: str
    node: PersonaRevision


def revision_edges(root: PersonaRevisionConnection) -> list[PersonaRevisionEdge]:
    """The edges, built only when selected: each one's cursor is encoded then."""
    return [
        PersonaRevisionEdge(cursor=cursor, node=node)
        for cursor, node in zip(root.page.cursors, root.nodes, strict=True)
    ]


@strawberry.type
class PersonaRevisionConnection:
    edges: list[PersonaRevisionEdge] = strawberry.field(resolver=revision_edges)
    nodes: list[PersonaRevision]
    page_info: PageInfo
    page: strawberry.Private[domain.Page[domain.Revision]]
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All revisions of the listing; counted only when selected.")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    async def load(
        cls, context: Context, persona_id: str, first: int | None, after: str | None
    ) -> Self:
        persona_id = domain.parse_id(persona_id)
        page = await services.list_revisions(
            context.store, context.principal, persona_id, first, after
        )
        return cls.from_page(
            page, lambda: context.store.count_revisions(context.principal, persona_id)
        )

    @classmethod
    def from_page(
        cls, page: domain.Page[domain.Revision], count: Callable[[], Awaitable[int]]
    ) -> Self:
        return cls(
            nodes=[PersonaRevision.from_domain(item) for item in page.items],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            page=page,
            count=count,
        )


@strawberry.type
class PersonaLabelEventEdge:
    cursor: str
    node: PersonaLabelEvent


@strawberry.type
class PersonaLabelEventConnection:
    edges: list[PersonaLabelEventEdge]
    nodes: list[PersonaLabelEvent]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: domain.LabelEventPage) -> Self:
        nodes = [PersonaLabelEvent.from_domain(item) for item in page.items]
        return cls(
            edges=[
                PersonaLabelEventEdge(cursor=domain.encode_event_cursor(event), node=node)
                for event, node in zip(page.items, nodes, strict=True)
            ],
            nodes=nodes,
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
        )


@strawberry.type(description="What changed between two versions of a persona.")
class PersonaDiff:
    from_version: int = strawberry.field(name="from")
    to_version: int = strawberry.field(name="to")
    name: list[str] | None = strawberry.field(description="[old, new], or null when unchanged.")
    content_diff: str | None = strawberry.field(
        description="A unified diff of the content, or null when unchanged."
    )
    metadata_patch: JSON = strawberry.field(
        description="An RFC 6902 JSON Patch turning the old metadata into the new."
    )

    @classmethod
    def from_domain(cls, changes: domain.PersonaDiff) -> Self:
        return cls(
            from_version=changes.from_version,
            to_version=changes.to_version,
            name=None if changes.name is None else list(changes.name),
            content_diff=changes.content_diff,
            metadata_patch=JSON(changes.metadata_patch),
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class PersonaEdge:
    cursor: str
    node: Persona


def persona_edges(root: PersonaConnection) -> list[PersonaEdge]:
    """The edges, built only when selected: each one's cursor is encoded then."""
    return [
        PersonaEdge(cursor=cursor, node=node)
        for cursor, node in zip(root.page.cursors, root.nodes, strict=True)
    ]


@strawberry.type
class PersonaConnection:
    edges: list[PersonaEdge] = strawberry.field(resolver=persona_edges)
    nodes: list[Persona]
    page_info: PageInfo
    page: strawberry.Private[domain.Page[domain.Persona]]
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All matching personas; counted only when selected.")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def from_page(
        cls, page: domain.Page[domain.Persona], count: Callable[[], Awaitable[int]]
    ) -> Self:
        return cls(
            nodes=[Persona.from_domain(item) for item in page.items],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            page=page,
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
