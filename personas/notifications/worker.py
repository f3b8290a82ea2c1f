"""The webhook delivery worker, one per server process: it turns new events into
deliveries, claims due ones (each attempt is made by one worker, whatever their number),
sends them signed, and retries failures with exponential backoff until the retry period
ends, when the endpoint is disabled with the reason."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import httpx

from personas.domain import DomainError, now
from personas.domain.webhooks import Attempt, DeliveryStatus, Due, next_attempt
from personas.notifications import egress, signing
from personas.notifications.hub import EventHub, stopping
from personas.notifications.payloads import delivery_body
from personas.store import PersonaStore

log = logging.getLogger("personas.webhooks")

PAGE: Final = 100
"""Events handed to a webhook at a time."""
SWEEP_SECONDS: Final = 30.0
"""How often every webhook is looked at even without news from the change stream."""
LEASE_MARGIN: Final = 10.0
"""Seconds a claim outlasts the attempt's own time limit."""
CONCURRENCY: Final = 8
"""Attempts one worker makes at once."""
ERROR_MAX: Final = 500


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    allow_loopback: bool = False
    timeout: float = 10.0
    retry_base: float = 5.0
    retry_for: float = 86400.0


class DeliveryWorker:
    def __init__(self, store: PersonaStore, hub: EventHub, policy: DeliveryPolicy) -> None:
        self.store = store
        self.hub = hub
        self.policy = policy
        self.owner = uuid.uuid4().hex
        self.lease = timedelta(seconds=policy.timeout + LEASE_MARGIN)
        self._inflight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Until cancelled."""
        box = self.hub.subscribe(None, capacity=10_000)
        self._box = box
        swept = float("-inf")
        async with egress.client(self.policy.allow_loopback, self.policy.timeout) as client:
            self._client = client
            try:
                while True:
                    tenants: set[str] = set()
                    while (taken := box.take()) is not None:
                        tenants.add(taken.tenant)
                    everything = box.overflowed or box.resync
                    if time.monotonic() - swept > SWEEP_SECONDS:
                        everything = True
                    box.reset()
                    try:
                        if everything:
                            swept = time.monotonic()
                            await self.hand_over(None)
                        elif tenants:
                            await self.hand_over(tenants)
                        await self.start_due()
                        pause = await self._pause()
                    except Exception as error:
                        if stopping():
                            raise asyncio.CancelledError from error
                        if isinstance(error, DomainError):
                            log.warning("webhook worker: %s", error.message)
                        else:
                            log.exception("webhook worker failed; going on")
                        pause = 1.0
                    await box.wait(pause)
            finally:
                self.hub.unsubscribe(box)
                for task in list(self._inflight):
                    task.cancel()
                await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _pause(self) -> float:
        """Seconds until the next delivery is due (or the next sweep)."""
        if len(self._inflight) >= CONCURRENCY:
            return SWEEP_SECONDS  # a finished attempt wakes the loop
        due = await self.store.webhooks.next_due()
        if due is None:
            return SWEEP_SECONDS
        return min(max((due - now()).total_seconds(), 0.01), SWEEP_SECONDS)

    async def hand_over(self, tenants: Iterable[str] | None) -> None:
        """Turn the events after each webhook's position into its deliveries."""
        chosen = None if tenants is None else sorted(tenants)
        for target in await self.store.webhooks.endpoints(chosen):
            cursor = target.cursor
            while True:
                found = await self.store.events.since(target.tenant, cursor, PAGE)
                if not found:
                    break
                handed = [
                    (event, delivery_body(event) if target.filter.accepts(event) else None)
                    for event in found
                ]
                await self.store.webhooks.hand_over(target, handed, now())
                cursor = found[-1].seq
                if len(found) < PAGE:
                    break

    async def start_due(self) -> None:
        """Claim due deliveries and start their attempts, up to CONCURRENCY at once."""
        while len(self._inflight) < CONCURRENCY:
            due = await self.store.webhooks.claim(self.owner, self.lease)
            if due is None:
                return
            task = asyncio.create_task(self._attempt(due))
            self._inflight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("webhook attempt failed unexpectedly", exc_info=error)
        self._box.nudge()

    async def _attempt(self, due: Due) -> None:
        moment = now()
        status_code, error, duration = await self.send(due)
        attempt = Attempt(moment, status_code, duration, error)
        if error is None:
            changes = {
                "status": DeliveryStatus.DELIVERED.value,
                "delivered_at": now(),
                "next_attempt_at": None,
            }
            await self.store.webhooks.settle(due.id, self.owner, attempt, changes)
            return
        failures = due.failures + 1
        first = due.first_attempt_at or moment
        policy = self.policy
        retry_at = next_attempt(first, moment, failures, policy.retry_base, policy.retry_for)
        if retry_at is not None:
            await self.store.webhooks.settle(
                due.id, self.owner, attempt, {"next_attempt_at": retry_at}
            )
            return
        changes = {"status": DeliveryStatus.FAILED.value, "next_attempt_at": None}
        if await self.store.webhooks.settle(due.id, self.owner, attempt, changes):
            hours = policy.retry_for / 3600
            reason = (
                f"a delivery ({due.message_id}) failed {failures} times over {hours:g} h; "
                f"last error: {error}"
            )
            log.warning("webhook %s disabled: %s", due.webhook_id, reason)
            await self.store.webhooks.disable(due.webhook_id, reason)

    async def send(self, due: Due) -> tuple[int | None, str | None, float]:
        """POST the delivery: its status code (if any answer came), the error (None on a
        2xx answer) and how long it took in milliseconds."""
        moment = now()
        headers = signing.headers(due.message_id, moment, due.body, due.secrets)
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.policy.timeout):
                async with self._client.stream(
                    "POST", due.url, content=due.body.encode(), headers=headers
                ) as response:
                    status_code = response.status_code
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        error = f"HTTP {status_code}: redirects are not followed ({location})"
                    elif not response.is_success:
                        error = f"HTTP {status_code} {response.reason_phrase}".strip()
        except TimeoutError:
            error = f"no answer within {self.policy.timeout:g} s"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}".rstrip(": ")
        duration = round((time.perf_counter() - started) * 1000, 2)
        return status_code, None if error is None else error[:ERROR_MAX], duration
