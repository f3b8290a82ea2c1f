"""What change notifications run in a server process: the hub on the event log's change
stream and the webhook delivery worker, started and stopped with the application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from personas.notifications.hub import EventHub
from personas.notifications.subscriptions import Limits
from personas.notifications.worker import DeliveryPolicy, DeliveryWorker
from personas.settings import Settings
from personas.store import PersonaStore

STOP_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class Notifications:
    hub: EventHub
    limits: Limits
    policy: DeliveryPolicy
    worker: DeliveryWorker


def policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        allow_loopback=settings.webhook_allow_loopback,
        timeout=settings.webhook_timeout,
        retry_base=settings.webhook_retry_base,
        retry_for=settings.webhook_retry_for,
    )


@contextlib.asynccontextmanager
async def running(store: PersonaStore, settings: Settings) -> AsyncIterator[Notifications]:
    """The hub and the worker, running until the block ends."""
    hub = EventHub(store.events, per_key=settings.subscriptions_per_key)
    worker = DeliveryWorker(store, hub, policy(settings))
    tasks = [
        asyncio.create_task(hub.run(), name="personas-event-hub"),
        asyncio.create_task(worker.run(), name="personas-webhook-worker"),
    ]
    try:
        yield Notifications(hub, Limits(buffer=settings.subscription_buffer), worker.policy, worker)
    finally:
        for task in tasks:
            task.cancel()
        # Shutdown always completes: what has not stopped by then is left behind.
        await asyncio.wait(tasks, timeout=STOP_SECONDS)
