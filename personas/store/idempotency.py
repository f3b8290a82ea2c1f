"""Idempotency records: the answer of each write made with a key, per tenant, kept a day.
A record is written in the transaction of its write, so neither exists without the other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from personas.domain import IDEMPOTENCY_RETENTION, Once, now, same_request
from personas.store import query as q

IDEMPOTENCY: Final = "personas_idempotency"
RECORD_INDEX: Final = [("tenant", 1), ("key", 1)]
Work = Callable[[AsyncClientSession], Awaitable[dict[str, Any]]]
"""The work of a transaction, answering a document that the record keeps."""


class IdempotencyRecords:
    def __init__(self, records: AsyncCollection[dict[str, Any]]) -> None:
        self._records = records

    async def ensure_indexes(self) -> None:
        """One record per key and tenant; each removed by the TTL monitor once expired."""
        await self._records.create_index(RECORD_INDEX, unique=True)
        await self._records.create_index([("expires_at", 1)], expireAfterSeconds=0)

    def around(self, tenant: str, once: Once, work: Work) -> Work:
        """`work` made at most once per key: a key kept from before answers what its write
        answered (or is refused, for another request); otherwise `work` runs, and its
        answer is recorded in the same transaction.

        Requests with the same key at the same time are decided by the database: both
        transactions write the record, one of them conflicts and is retried (by the driver),
        and then finds the record of the other. There is no "in progress" state to wait
        out: a crash before the commit leaves neither the change nor the record."""

        async def at_most_once(session: AsyncClientSession) -> dict[str, Any]:
            moment = now()
            record = await self._records.find_one(
                q.remembered(tenant, once.key.value, moment), session=session
            )
            if record is not None:
                same_request(once, record["fingerprint"])
                replayed: dict[str, Any] = record["answer"]
                return replayed
            answer = await work(session)
            await self._records.replace_one(
                q.scoped(tenant, {"key": once.key.value}),
                {
                    "tenant": tenant,
                    "key": once.key.value,
                    "fingerprint": once.fingerprint,
                    "answer": answer,
                    "created_at": moment,
                    "expires_at": moment + IDEMPOTENCY_RETENTION,
                },
                upsert=True,
                session=session,
            )
            return answer

        return at_most_once
