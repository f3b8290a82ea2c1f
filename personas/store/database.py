"""The collections of one database, and the one transaction helper every change uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from personas.domain import Once
from personas.store.connection import time_limit
from personas.store.errors import translated
from personas.store.idempotency import IDEMPOTENCY, IdempotencyRecords, Work

T = TypeVar("T")

PERSONAS: Final = "personas"
REVISIONS: Final = "persona_revisions"
RELEASES: Final = "persona_releases"
"""One document per label set on a persona: the labelled revision, copied."""
LABEL_EVENTS: Final = "persona_label_events"
API_KEYS: Final = "api_keys"
EVENTS: Final = "persona_events"
EVENT_COUNTERS: Final = "persona_event_counters"
"""One document per tenant: the id of its latest event."""
WEBHOOKS: Final = "webhooks"
DELIVERIES: Final = "webhook_deliveries"

Collection = AsyncCollection[dict[str, Any]]


class Database:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], name: str) -> None:
        self.client = client
        self.db = client[name]
        self.personas: Collection = self.db[PERSONAS]
        self.revisions: Collection = self.db[REVISIONS]
        self.releases: Collection = self.db[RELEASES]
        self.label_events: Collection = self.db[LABEL_EVENTS]
        self.api_keys: Collection = self.db[API_KEYS]
        self.events: Collection = self.db[EVENTS]
        self.event_counters: Collection = self.db[EVENT_COUNTERS]
        self.webhooks: Collection = self.db[WEBHOOKS]
        self.deliveries: Collection = self.db[DELIVERIES]
        self.idempotency = IdempotencyRecords(self.db[IDEMPOTENCY])

    async def transaction(
        self, work: Callable[[AsyncClientSession], Awaitable[T]], path_field: str | None = None
    ) -> T:
        """Run `work` in one transaction: all of it is written, or none. Transient errors
        are retried only within the time limit (the driver would retry for up to 120 s)."""
        with time_limit(self.client.options.timeout), translated(path_field):
            async with self.client.start_session() as session:
                return await session.with_transaction(work)

    def once(self, tenant: str, once: Once | None, work: Work) -> Work:
        """`work`, made at most once per idempotency key when it comes with one."""
        return work if once is None else self.idempotency.around(tenant, once, work)
