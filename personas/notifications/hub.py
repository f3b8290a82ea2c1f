"""One change stream per server process on the event log, fanned out to mailboxes: each
subscription (and the webhook worker) has one, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

from personas.domain import DomainError, Forbidden, Principal
from personas.store.events import Appended, EventLog

log = logging.getLogger("personas.notifications")

WAIT_MS: Final = 1000
"""How long one change-stream read waits on the server before it is asked again."""
RETRY_SECONDS: Final = 1.0
"""How long to wait before reopening a change stream that failed."""


def stopping() -> bool:
    """Whether the running task is being cancelled. A database call that is cancelled may
    fail with a driver error instead of CancelledError; loops that go on after failures ask
    this, so that they still stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class TooManySubscriptions(Forbidden):
    """A limit of subscriptions reached: refused like a missing right, with its own code."""

    code = "TOO_MANY_SUBSCRIPTIONS"


class Mailbox:
    """The events of one tenant (or, with no tenant, of all) waiting for one consumer: at
    most `capacity`. Past it nothing more is kept and the box is `overflowed`; `resync`
    asks the consumer to read the log, because the stream may have missed events."""

    def __init__(self, tenant: str | None, capacity: int) -> None:
        self.tenant = tenant
        self.capacity = capacity
        self.overflowed = False
        self.resync = False
        self.on_overflow: Callable[[], None] | None = None
        """Called once when the box overflows (a live subscriber is then too slow)."""
        self._events: deque[Appended] = deque()
        self._wake = asyncio.Event()

    def put(self, appended: Appended) -> None:
        if len(self._events) >= self.capacity:
            if not self.overflowed:
                self.overflowed = True
                if self.on_overflow is not None:
                    self.on_overflow()
        else:
            self._events.append(appended)
        self._wake.set()

    def nudge(self) -> None:
        """Wake the consumer (it has other work to look at)."""
        self._wake.set()

    def request_resync(self) -> None:
        self.resync = True
        self._wake.set()

    def take(self) -> Appended | None:
        return self._events.popleft() if self._events else None

    def reset(self) -> None:
        """Forget what is waiting (the consumer reads the log instead)."""
        self._events.clear()
        self.overflowed = False
        self.resync = False

    async def wait(self, seconds: float | None = None) -> None:
        """Until something arrives (or `seconds` pass). A consumer being cancelled stops
        here: a database call that was cancelled may also have answered as if it was not,
        and the cancellation must not wait for the next wake-up."""
        if stopping():
            raise asyncio.CancelledError
        if not (self._events or self.resync or self.overflowed):
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that comes as the wait ends, and the consumer would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._wake.wait()
        self._wake.clear()


class EventHub:
    """Reads the event log's change stream and hands each event to the mailboxes of its
    tenant. Whenever the stream (re)opens, every mailbox is asked to resync, so that events
    appended while no stream was open are read from the log."""

    def __init__(self, events: EventLog, per_key: int, wait_ms: int = WAIT_MS) -> None:
        self._events = events
        self._per_key = per_key
        self._wait_ms = wait_ms
        self._boxes: set[Mailbox] = set()
        self._per_principal: dict[tuple[str, str | None], int] = {}
        self.open = asyncio.Event()
        """Set while the change stream is open."""

    def subscribe(self, tenant: str | None, capacity: int) -> Mailbox:
        box = Mailbox(tenant, capacity)
        box.resync = not self.open.is_set()
        self._boxes.add(box)
        return box

    def unsubscribe(self, box: Mailbox) -> None:
        self._boxes.discard(box)

    def listening(self, tenant: str) -> int:
        """How many mailboxes receive the events of `tenant`."""
        return sum(1 for box in self._boxes if box.tenant == tenant)

    def lagging(self, tenant: str) -> int:
        """How many of them have overflowed (their consumer is being disconnected)."""
        return sum(1 for box in self._boxes if box.tenant == tenant and box.overflowed)

    def hold(self, principal: Principal) -> Callable[[], None]:
        """Count a subscription against its API key's limit; the release to call at its end."""
        key = (principal.tenant, principal.key_id)
        held = self._per_principal.get(key, 0)
        if held >= self._per_key:
            raise TooManySubscriptions(
                f"this API key holds {held} subscriptions, the most allowed; end one first"
            )
        self._per_principal[key] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            remaining = self._per_principal.get(key, 1) - 1
            if remaining:
                self._per_principal[key] = remaining
            else:
                self._per_principal.pop(key, None)

        return release

    async def run(self) -> None:
        """Until cancelled: watch the log, reopening the stream after a failure."""
        while True:
            try:
                async for appended in self._events.watch(self._wait_ms):
                    if not self.open.is_set():
                        self._opened()
                    if appended is not None:
                        self._dispatch(appended)
                    await asyncio.sleep(0)  # a read that needed no I/O must not starve the loop
            except DomainError as error:
                if stopping():
                    raise asyncio.CancelledError from error
                log.warning("event stream interrupted, reopening: %s", error.message)
            self.open.clear()
            await asyncio.sleep(RETRY_SECONDS)

    def _opened(self) -> None:
        self.open.set()
        for box in list(self._boxes):
            box.request_resync()

    def _dispatch(self, appended: Appended) -> None:
        for box in list(self._boxes):
            if box.tenant is None or box.tenant == appended.tenant:
                box.put(appended)
