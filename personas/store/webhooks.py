"""Webhooks and their deliveries in MongoDB. Each webhook keeps its position in the event
log; the delivery worker turns the events after it into one delivery each (at most once per
webhook and event: a unique index), and claims a due delivery with a lease (the attempt's
time, after which another worker may take it) so that each attempt is made by one worker."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from personas.domain import (
    Condition,
    InvalidInput,
    NotFound,
    Operator,
    PersonaQuery,
    Principal,
    now,
    require,
)
from personas.domain.events import Event, EventFilter, EventType
from personas.domain.webhooks import (
    ATTEMPTS_KEPT,
    ROTATION_GRACE,
    WEBHOOKS_PER_TENANT,
    Attempt,
    Delivery,
    DeliveryPage,
    DeliveryStatus,
    Due,
    Endpoint,
    Webhook,
)
from personas.store import query as q
from personas.store.database import Database
from personas.store.errors import translated
from personas.store.events import EventLog

DELIVERY_KEY: Final = [("webhook_id", 1), ("event_seq", 1)]
DUE_INDEX: Final = [("status", 1), ("next_attempt_at", 1)]
LISTING_INDEX: Final = [("tenant", 1), ("webhook_id", 1), ("_id", -1)]
DELIVERY_EXPIRY: Final = "created_at_ttl"
ADMIN: Final = "admin"


class WebhookStore:
    def __init__(self, database: Database, events: EventLog) -> None:
        self._database = database
        self._webhooks = database.webhooks
        self._deliveries = database.deliveries
        self._events = events

    async def ensure_indexes(self) -> None:
        with translated():
            await self._webhooks.create_index([("tenant", 1), ("created_at", 1)])
            await self._deliveries.create_index(DELIVERY_KEY, unique=True)
            await self._deliveries.create_index(DUE_INDEX)
            await self._deliveries.create_index(LISTING_INDEX)
            # Deliveries go with the events they carry.
            await self._deliveries.create_index(
                [("created_at", 1)],
                name=DELIVERY_EXPIRY,
                expireAfterSeconds=self._events.retention_seconds,
            )

    # what an administrator does

    async def create(
        self, principal: Principal, url: str, wanted: EventFilter, types_given: bool, secret: str
    ) -> Webhook:
        """A webhook for the events after now."""
        require(principal, ADMIN)
        with translated():
            count = await self._webhooks.count_documents(q.scoped(principal.tenant))
        if count >= WEBHOOKS_PER_TENANT:
            raise InvalidInput(
                "url", f"a tenant has at most {WEBHOOKS_PER_TENANT} webhooks; delete one first"
            )
        document: dict[str, Any] = {
            "_id": ObjectId(),
            "tenant": principal.tenant,
            "url": url,
            "types": sorted(kind.value for kind in wanted.types) if types_given else None,
            "conditions": [
                {"field": item.field, "op": item.op.value, "value": item.value}
                for item in wanted.query.all_of
            ],
            "label": wanted.label,
            "secret": secret,
            "previous_secret": None,
            "previous_until": None,
            "cursor": await self._events.latest(principal.tenant),
            "created_at": now(),
            "created_by": principal.key_id,
            "disabled_at": None,
            "disabled_reason": None,
        }
        with translated():
            await self._webhooks.insert_one(document)
        return webhook(document, with_secret=True)

    async def all(self, principal: Principal) -> list[Webhook]:
        require(principal, ADMIN)
        with translated():
            found = await self._webhooks.find(
                q.scoped(principal.tenant), sort=[("created_at", 1)]
            ).to_list(WEBHOOKS_PER_TENANT * 2)
        return [webhook(item) for item in found]

    async def get(self, principal: Principal, webhook_id: str) -> Webhook:
        require(principal, ADMIN)
        with translated():
            found = await self._webhooks.find_one(self._mine(principal, webhook_id))
        if found is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return webhook(found)

    async def delete(self, principal: Principal, webhook_id: str) -> None:
        """Delete a webhook and its deliveries (none is attempted after)."""
        require(principal, ADMIN)
        target = self._mine(principal, webhook_id)

        async def work(session: AsyncClientSession) -> None:
            result = await self._webhooks.delete_one(target, session=session)
            if result.deleted_count == 0:
                raise NotFound(f"webhook {webhook_id} not found")
            await self._deliveries.delete_many({"webhook_id": target["_id"]}, session=session)

        await self._database.transaction(work)

    async def rotate(self, principal: Principal, webhook_id: str, secret: str) -> Webhook:
        """A new secret; deliveries are signed with the old one too for ROTATION_GRACE."""
        require(principal, ADMIN)
        moment = now()
        with translated():
            current = await self._webhooks.find_one(self._mine(principal, webhook_id))
            if current is None:
                raise NotFound(f"webhook {webhook_id} not found")
            found = await self._webhooks.find_one_and_update(
                {"_id": current["_id"]},
                {
                    "$set": {
                        "secret": secret,
                        "previous_secret": current["secret"],
                        "previous_until": moment + ROTATION_GRACE,
                    }
                },
                return_document=ReturnDocument.AFTER,
            )
        if found is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return webhook(found, with_secret=True)

    async def deliveries(
        self, principal: Principal, webhook_id: str, first: int, before: str | None = None
    ) -> DeliveryPage:
        """A webhook's deliveries, newest first."""
        require(principal, ADMIN)
        await self.get(principal, webhook_id)
        condition = q.before_id(
            q.scoped(principal.tenant, {"webhook_id": ObjectId(webhook_id)}), before
        )
        with translated():
            found = await self._deliveries.find(
                condition, sort=[("_id", -1)], limit=first + 1
            ).to_list(first + 1)
        return DeliveryPage(
            items=[delivery(item) for item in found[:first]], has_next=len(found) > first
        )

    @staticmethod
    def _mine(principal: Principal, webhook_id: str) -> dict[str, Any]:
        try:
            identifier = ObjectId(webhook_id)
        except (InvalidId, TypeError):
            raise NotFound(f"webhook {webhook_id} not found") from None
        return q.scoped(principal.tenant, {"_id": identifier})

    # what the delivery worker does

    async def endpoints(self, tenants: Sequence[str] | None = None) -> list[Endpoint]:
        """The enabled webhooks (of `tenants`, or of all)."""
        condition: dict[str, Any] = {"disabled_at": None}
        if tenants is not None:
            condition["tenant"] = {"$in": list(tenants)}
        with translated():
            found = await self._webhooks.find(condition).to_list(None)
        return [endpoint(item) for item in found]

    async def hand_over(
        self, target: Endpoint, events: Sequence[tuple[Event, str | None]], moment: datetime
    ) -> None:
        """Record deliveries for `events` (a body for each wanted one, None for the others)
        and move the webhook past them. Doing it twice makes nothing twice."""
        if not events:
            return
        webhook_id = ObjectId(target.id)
        with translated():
            for event, body in events:
                if body is None:
                    continue
                # A concurrent worker may record it first: then this one is a duplicate.
                with contextlib.suppress(DuplicateKeyError):
                    await self._deliveries.update_one(
                        {"webhook_id": webhook_id, "event_seq": event.seq},
                        {
                            "$setOnInsert": {
                                "tenant": target.tenant,
                                "type": event.type.value,
                                "body": body,
                                "status": DeliveryStatus.PENDING.value,
                                "attempts": [],
                                "attempt_count": 0,
                                "next_attempt_at": moment,
                                "claim": None,
                                "created_at": moment,
                                "delivered_at": None,
                            }
                        },
                        upsert=True,
                    )
            await self._webhooks.update_one(
                {"_id": webhook_id}, q.cursor_advanced(events[-1][0].seq)
            )

    async def claim(self, owner: str, lease: timedelta) -> Due | None:
        """Take the delivery due first, for `lease`; None when none is due."""
        moment = now()
        with translated():
            found = await self._deliveries.find_one_and_update(
                q.due_deliveries(moment),
                q.claim_delivery(owner, moment + lease),
                sort=[("next_attempt_at", 1)],
                return_document=ReturnDocument.AFTER,
            )
            if found is None:
                return None
            hook = await self._webhooks.find_one({"_id": found["webhook_id"]})
        if hook is None or hook.get("disabled_at") is not None:
            await self.settle(found["_id"], owner, None, {"status": DeliveryStatus.CANCELLED.value})
            return await self.claim(owner, lease)
        secrets = [hook["secret"]]
        if hook.get("previous_secret") and hook["previous_until"] > moment:
            secrets.append(hook["previous_secret"])
        return Due(
            id=str(found["_id"]),
            webhook_id=str(hook["_id"]),
            url=hook["url"],
            secrets=tuple(secrets),
            body=found["body"],
            failures=found.get("attempt_count", 0),
            first_attempt_at=found.get("first_attempt_at"),
        )

    async def settle(
        self,
        delivery_id: Any,
        owner: str,
        attempt: Attempt | None,
        changes: Mapping[str, Any],
    ) -> bool:
        """Record what an attempt came to (if the claim is still ours)."""
        target = {"_id": ObjectId(str(delivery_id)), "claim": owner}
        with translated():
            if attempt is None:
                result = await self._deliveries.update_one(
                    target, {"$set": {**changes, "claim": None}}
                )
            else:
                record = {
                    "at": attempt.at,
                    "status_code": attempt.status_code,
                    "duration_ms": attempt.duration_ms,
                    "error": attempt.error,
                }
                result = await self._deliveries.update_one(
                    target, q.attempt_recorded(record, changes, ATTEMPTS_KEPT)
                )
        return result.modified_count == 1

    async def disable(self, webhook_id: str, reason: str) -> None:
        """Stop delivering to a webhook, saying why; its pending deliveries are cancelled."""
        identifier = ObjectId(webhook_id)
        with translated():
            await self._webhooks.update_one(
                {"_id": identifier, "disabled_at": None},
                {"$set": {"disabled_at": now(), "disabled_reason": reason}},
            )
            await self._deliveries.update_many(
                q.pending_of(identifier),
                {"$set": {"status": DeliveryStatus.CANCELLED.value, "next_attempt_at": None}},
            )

    async def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due."""
        with translated():
            found = await self._deliveries.find_one(
                {"status": DeliveryStatus.PENDING.value},
                {"next_attempt_at": True},
                sort=[("status", 1), ("next_attempt_at", 1)],
            )
        return None if found is None else found["next_attempt_at"]


def stored_filter(document: Mapping[str, Any]) -> EventFilter:
    types = document.get("types")
    return EventFilter(
        types=frozenset(EventType) if types is None else frozenset(map(EventType, types)),
        query=PersonaQuery(
            all_of=tuple(
                Condition(item["field"], Operator(item["op"]), item["value"])
                for item in document.get("conditions", ())
            )
        ),
        label=document.get("label"),
    )


def webhook(document: Mapping[str, Any], with_secret: bool = False) -> Webhook:
    return Webhook(
        id=str(document["_id"]),
        url=document["url"],
        filter=stored_filter(document),
        created_at=document["created_at"],
        disabled_at=document.get("disabled_at"),
        disabled_reason=document.get("disabled_reason"),
        secret=document["secret"] if with_secret else None,
    )


def endpoint(document: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        id=str(document["_id"]),
        tenant=document["tenant"],
        cursor=document.get("cursor", 0),
        filter=stored_filter(document),
    )


def delivery(document: Mapping[str, Any]) -> Delivery:
    return Delivery(
        id=str(document["_id"]),
        webhook_id=str(document["webhook_id"]),
        event_id=str(document["event_seq"]),
        type=document["type"],
        status=DeliveryStatus(document["status"]),
        attempts=tuple(
            Attempt(
                at=item["at"],
                status_code=item.get("status_code"),
                duration_ms=item.get("duration_ms", 0.0),
                error=item.get("error"),
            )
            for item in document.get("attempts", ())
        ),
        next_attempt_at=document.get("next_attempt_at")
        if document["status"] == DeliveryStatus.PENDING.value
        else None,
        created_at=document["created_at"],
        delivered_at=document.get("delivered_at"),
    )
