"""GraphQL change notifications: the personaEvents subscription (graphql-transport-ws at
/graphql), and webhooks with their deliveries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Self

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.graphql import OperationType

from personas import domain
from personas.domain.events import Event, EventFields, EventType, event_filter, parse_event_id
from personas.domain.webhooks import Attempt, Delivery, DeliveryStatus
from personas.domain.webhooks import Webhook as DomainWebhook
from personas.graphql.resolvers import Filters, specs
from personas.graphql.types import (
    Context,
    PageInfo,
    PersonaLabel,
    PersonaLabelEvent,
    PersonaRevision,
)
from personas.notifications import services, subscriptions
from personas.notifications.runtime import Notifications

ContextInfo = Info[Context, None]
FIELDS = EventFields(types="types", metadata_filter="metadataFilter", label="label")

PersonaEventType = strawberry.enum(
    EventType,
    name="PersonaEventType",
    description="What a change did: persona.created, persona.updated (any edit, restore "
    "included), persona.deleted, persona.label_moved (a label set, moved or removed).",
)
WebhookDeliveryStatus = strawberry.enum(DeliveryStatus, name="WebhookDeliveryStatus")


@strawberry.type(description="One change, as the event log keeps it.")
class PersonaEvent:
    id: strawberry.ID = strawberry.field(
        description="Ordered within a tenant (1, 2, 3...): pass it as `after` to resume."
    )
    type: EventType
    persona_id: strawberry.ID
    version: int = strawberry.field(
        description="The version the change made; for a label move, the version the label "
        "points at (or pointed at, when removed)."
    )
    actor: str | None = strawberry.field(
        description="The API key that made the change; null for anonymous access."
    )
    at: datetime
    persona: PersonaRevision | None = strawberry.field(
        description="The persona as the change left it (for a deletion: as it was; for a "
        "label move: the labelled version)."
    )
    label: PersonaLabel | None = strawberry.field(
        description="For LABEL_MOVED: the label as the move left it; null when removed."
    )
    label_move: PersonaLabelEvent | None = strawberry.field(
        description="For LABEL_MOVED: from which version to which."
    )

    @classmethod
    def from_domain(cls, event: Event) -> Self:
        return cls(
            id=strawberry.ID(event.id),
            type=event.type,
            persona_id=strawberry.ID(event.persona_id),
            version=event.version,
            actor=event.actor,
            at=event.at,
            persona=None if event.persona is None else PersonaRevision.from_domain(event.persona),
            label=None if event.label is None else PersonaLabel.from_domain(event.label),
            label_move=None
            if event.label_move is None
            else PersonaLabelEvent.from_domain(event.label_move),
        )


@strawberry.type(description="An endpoint that receives signed deliveries of events.")
class Webhook:
    id: strawberry.ID
    url: str
    types: list[EventType] = strawberry.field(description="The event types delivered.")
    metadata_filter: JSON = strawberry.field(
        description="The metadata filters events must match: [{path, op, value}]."
    )
    label: str | None = strawberry.field(description="Only moves of this label, when set.")
    secret: str | None = strawberry.field(
        description="The signing secret (whsec_...): only in the answer of createWebhook and "
        "rotateWebhookSecret, null everywhere else."
    )
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None = strawberry.field(
        description="Why deliveries stopped (the endpoint kept failing); null while enabled."
    )

    @classmethod
    def from_domain(cls, webhook: DomainWebhook) -> Self:
        wanted = webhook.filter
        return cls(
            id=strawberry.ID(webhook.id),
            url=webhook.url,
            types=sorted(wanted.types, key=list(EventType).index),
            metadata_filter=JSON(
                [
                    {
                        "path": item.field.removeprefix("metadata."),
                        "op": item.op.name,
                        "value": item.value,
                    }
                    for item in wanted.query.all_of
                ]
            ),
            label=wanted.label,
            secret=webhook.secret,
            created_at=webhook.created_at,
            disabled_at=webhook.disabled_at,
            disabled_reason=webhook.disabled_reason,
        )


@strawberry.type(description="One attempt of a delivery.")
class WebhookAttempt:
    at: datetime
    status_code: int | None = strawberry.field(description="null when no answer came.")
    duration_ms: float
    error: str | None = strawberry.field(description="null when the endpoint answered 2xx.")

    @classmethod
    def from_domain(cls, attempt: Attempt) -> Self:
        return cls(
            at=attempt.at,
            status_code=attempt.status_code,
            duration_ms=attempt.duration_ms,
            error=attempt.error,
        )


@strawberry.type(description="One event sent to one webhook, with each attempt.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(
        description="Sent as webhook-id (msg_<id>), the same on every attempt."
    )
    event_id: strawberry.ID
    type: EventType
    status: DeliveryStatus
    attempts: list[WebhookAttempt] = strawberry.field(description="Oldest first (the last 50).")
    next_attempt_at: datetime | None = strawberry.field(description="While PENDING.")
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_domain(cls, delivery: Delivery) -> Self:
        return cls(
            id=strawberry.ID(delivery.id),
            event_id=strawberry.ID(delivery.event_id),
            type=EventType(delivery.type),
            status=delivery.status,
            attempts=[WebhookAttempt.from_domain(item) for item in delivery.attempts],
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
        )


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    nodes: list[WebhookDelivery]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: domain.Page[Delivery]) -> Self:
        nodes = [WebhookDelivery.from_domain(item) for item in page.items]
        return cls(
            edges=[
                WebhookDeliveryEdge(cursor=cursor, node=node)
                for cursor, node in zip(page.cursors, nodes, strict=True)
            ],
            nodes=nodes,
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
        )


@strawberry.type
class NotificationQuery:
    @strawberry.field(description="The tenant's webhooks, oldest first (scope admin).")
    async def webhooks(self, info: ContextInfo) -> list[Webhook]:
        context = info.context
        found = await context.store.webhooks.all(context.principal)
        return [Webhook.from_domain(item) for item in found]

    @strawberry.field(description="A webhook's deliveries, newest first (scope admin).")
    async def webhook_deliveries(
        self,
        info: ContextInfo,
        webhook_id: strawberry.ID,
        first: int | None = domain.PAGE_DEFAULT,
        after: str | None = None,
    ) -> WebhookDeliveryConnection:
        context = info.context
        page = await services.list_deliveries(
            context.store, context.principal, webhook_id, first, after
        )
        return WebhookDeliveryConnection.from_page(page)


@strawberry.type
class NotificationMutation:
    @strawberry.mutation(
        description="Deliver the events after now to an https URL, signed per Standard "
        "Webhooks (scope admin). The answer alone shows the secret."
    )
    async def create_webhook(
        self,
        info: ContextInfo,
        url: str,
        types: list[EventType] | None = None,
        metadata_filter: Filters = None,
        label: str | None = None,
    ) -> Webhook:
        context = info.context
        created = await services.create_webhook(
            context.store,
            context.principal,
            url,
            types,
            specs(metadata_filter),
            label,
            _notifications(context).policy.allow_loopback,
            FIELDS,
        )
        return Webhook.from_domain(created)

    @strawberry.mutation(description="Delete a webhook and its deliveries (scope admin).")
    async def delete_webhook(self, info: ContextInfo, id: strawberry.ID) -> strawberry.ID:
        context = info.context
        return strawberry.ID(await services.delete_webhook(context.store, context.principal, id))

    @strawberry.mutation(
        description="A new secret, shown in this answer only; for 24 hours deliveries carry "
        "a signature with the old secret too (scope admin)."
    )
    async def rotate_webhook_secret(self, info: ContextInfo, id: strawberry.ID) -> Webhook:
        context = info.context
        return Webhook.from_domain(
            await services.rotate_secret(context.store, context.principal, id)
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The caller's events as they happen (scope read), over "
        "graphql-transport-ws at /graphql. With `after`, the events after that one still in "
        "the log come first. Filters match the persona as the change left it."
    )
    async def persona_events(
        self,
        info: ContextInfo,
        metadata_filter: Filters = None,
        types: list[EventType] | None = None,
        label: str | None = None,
        after: strawberry.ID | None = None,
    ) -> AsyncIterator[PersonaEvent]:
        # A coroutine that returns the stream: what is wrong is refused before it starts.
        context = info.context
        notifications = _notifications(context)
        assert context.disconnect is not None, "SubscriptionsOverWebSocket sees to it"
        wanted = event_filter(types, specs(metadata_filter), label, FIELDS)
        position = None if after is None else parse_event_id(after, "after")
        await subscriptions.check(
            context.store.events, notifications.hub, context.principal, position
        )
        found = subscriptions.events(
            context.store.events,
            notifications.hub,
            context.principal,
            wanted,
            position,
            notifications.limits,
            context.disconnect,
        )
        return (PersonaEvent.from_domain(event) async for event in found)


class SubscriptionsOverWebSocket(SchemaExtension):
    """Plain HTTP would run a subscription once and never read its stream: refuse it."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.operation_type is OperationType.SUBSCRIPTION and (
            not isinstance(execution.context, Context) or execution.context.disconnect is None
        ):
            raise domain.InvalidInput(
                "subscription", "subscribe over a WebSocket (graphql-transport-ws) at /graphql"
            )
        yield


def _notifications(context: Context) -> Notifications:
    if context.notifications is None:
        raise domain.Unavailable("change notifications are not running")
    return context.notifications
