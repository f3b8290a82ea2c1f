"""One subscription's events: replayed from the log after a given event, then live from the
hub, in order, with none lost or doubled across the switch (event ids are consecutive per
tenant, so a gap shows and is filled from the log)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from personas.domain import Principal, require
from personas.domain.events import Event, EventFilter
from personas.notifications.hub import EventHub
from personas.store.events import EventLog

logger = logging.getLogger("personas.notifications")

PAGE: Final = 100
"""Events read from the log at a time while catching up."""
SLOW_CLOSE_CODE: Final = 4008
"""The WebSocket close code for a subscriber that reads too slowly."""


@dataclass(frozen=True, slots=True)
class Limits:
    buffer: int
    """Events kept for a live subscriber that has not read them yet."""


Disconnect = Callable[[int, str], Awaitable[None]]


def slow_reason(buffer: int, last: int | None) -> str:
    resume = "" if last is None else f"; resume with after: {last}"
    return f"subscriber too slow: more than {buffer} events waiting{resume}"


async def check(log: EventLog, hub: EventHub, principal: Principal, after: int | None) -> None:
    """Refuse a subscription that `events` would refuse, before it starts."""
    require(principal, "read")
    if after is not None:
        await log.check_resume(principal, after)
    hub.hold(principal)()


async def events(
    log: EventLog,
    hub: EventHub,
    principal: Principal,
    wanted: EventFilter,
    after: int | None,
    limits: Limits,
    disconnect: Disconnect,
) -> AsyncIterator[Event]:
    """The caller's events that `wanted` accepts: those after `after` first, then each new
    one as it is appended. A live subscriber that falls `limits.buffer` events behind is
    disconnected (`SLOW_CLOSE_CODE`) rather than buffered for without bound."""
    require(principal, "read")
    if after is not None:
        await log.check_resume(principal, after)
    release = hub.hold(principal)
    box = hub.subscribe(principal.tenant, limits.buffer)
    catching_up = True
    last = after
    delivered = after
    closing: list[asyncio.Task[None]] = []

    def too_slow() -> None:
        # Called by the hub, also while this subscriber waits for its reader to take an
        # event: a reader that stopped reading is disconnected all the same.
        if not catching_up and not closing:
            reason = slow_reason(limits.buffer, delivered)
            logger.info("disconnecting a subscriber of tenant %s: %s", principal.tenant, reason)
            closing.append(asyncio.ensure_future(disconnect(SLOW_CLOSE_CODE, reason)))

    box.on_overflow = too_slow
    try:
        if last is None:
            last = await log.latest(principal.tenant)
        catching_up = after is not None or box.resync
        while True:
            if catching_up or box.resync:
                catching_up = True
                box.reset()
                page = await log.after(principal, last, PAGE)
                for event in page:
                    last = event.seq
                    if wanted.accepts(event):
                        yield event
                        delivered = event.seq
                catching_up = len(page) == PAGE
                continue
            if box.overflowed or closing:
                too_slow()
                await closing[0]
                await asyncio.Event().wait()  # until the closed connection ends this task
            taken = box.take()
            if taken is None:
                await box.wait()
                continue
            live = taken.event
            if live.seq <= last:
                continue
            if live.seq > last + 1:
                catching_up = True  # the stream missed some: the log has them
                continue
            last = live.seq
            if wanted.accepts(live):
                yield live
                delivered = live.seq
    finally:
        hub.unsubscribe(box)
        release()
