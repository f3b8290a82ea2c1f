"""The change-notification use cases both APIs call: the webhooks an administrator
manages, and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from personas import domain
from personas.domain.events import EventFields, EventType, event_filter
from personas.domain.webhooks import (
    Delivery,
    Webhook,
    decode_delivery_cursor,
    encode_delivery_cursor,
    new_secret,
    parse_webhook_id,
)
from personas.notifications import egress
from personas.store import PersonaStore
from personas.store.webhooks import ADMIN


async def create_webhook(
    store: PersonaStore,
    principal: domain.Principal,
    url: object,
    types: Sequence[EventType] | None,
    metadata_filter: Sequence[domain.FilterSpec],
    label: object,
    allow_loopback: bool,
    fields: EventFields | None = None,
    url_field: str = "url",
) -> Webhook:
    """A webhook for the events after now, with a new secret (shown only in this answer).
    Its filter and URL are checked first (the host resolved, every address checked)."""
    domain.require(principal, ADMIN)
    wanted = event_filter(types, metadata_filter, label, fields)
    checked = await egress.check_url(url, allow_loopback, url_field)
    return await store.webhooks.create(principal, checked, wanted, types is not None, new_secret())


async def delete_webhook(store: PersonaStore, principal: domain.Principal, raw_id: str) -> str:
    webhook_id = parse_webhook_id(raw_id)
    await store.webhooks.delete(principal, webhook_id)
    return webhook_id


async def rotate_secret(store: PersonaStore, principal: domain.Principal, raw_id: str) -> Webhook:
    return await store.webhooks.rotate(principal, parse_webhook_id(raw_id), new_secret())


async def get_webhook(store: PersonaStore, principal: domain.Principal, raw_id: str) -> Webhook:
    return await store.webhooks.get(principal, parse_webhook_id(raw_id))


async def list_deliveries(
    store: PersonaStore,
    principal: domain.Principal,
    raw_id: str,
    first: int | None,
    after: str | None,
    id_field: str = "webhookId",
    first_field: str = "first",
    after_field: str = "after",
) -> domain.Page[Delivery]:
    """One page of a webhook's deliveries, newest first, each with its attempts."""
    webhook_id = parse_webhook_id(raw_id, id_field)
    size = domain.page_size(first, first_field)
    before = None if after is None else decode_delivery_cursor(after, webhook_id, after_field)
    found = await store.webhooks.deliveries(principal, webhook_id, size, before)
    return domain.Page(
        items=found.items,
        has_next=found.has_next,
        encode=lambda start, stop: [
            encode_delivery_cursor(item) for item in found.items[start:stop]
        ],
    )
