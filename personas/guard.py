"""Every request ends in time: a deadline for all of it, a fast 503 while the database is
known to be down, and the drain of a shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personas.availability import FAILED, RETRY_AFTER_SECONDS, DatabaseStatus
from personas.middleware import refuse
from personas.shutdown import Drain
from personas.store import time_limit

log = logging.getLogger("personas.guard")

HEALTH_PATHS: Final = frozenset({"/healthz", "/readyz"})
MARGIN_SECONDS: Final = 1.0
"""How long past the database time limit a request may still run before it is cut off."""
CHECK_SECONDS: Final = 0.1
"""How often the deadlines of the requests running are checked: a request is cut off at most
this long after its deadline."""
SHUTTING_DOWN: Final = "the server is shutting down; try again"
_RETRY: Final = (b"retry-after", str(RETRY_AFTER_SECONDS).encode())
_CLOSE: Final = (b"connection", b"close")


class Deadlines:
    """The deadlines of the requests running, checked together every `CHECK_SECONDS` by one
    timer, which runs only while some request does (a timer per request would cost each
    request more than its check). The task of a request past its deadline is cancelled."""

    def __init__(self) -> None:
        self._running: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._running)

    @property
    def checking(self) -> bool:
        """Whether the timer runs (only while some request does)."""
        return self._timer is not None

    def enter(self, task: asyncio.Task[Any], deadline: float) -> None:
        """`task` runs a request until `deadline` (its event loop's time)."""
        self._running[task] = deadline
        loop = task.get_loop()
        if self._timer is None or self._loop is not loop:  # none yet, or another loop's
            self._loop = loop
            self._timer = loop.call_later(CHECK_SECONDS, self._check)

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """`task` is done with its request; True when it was cancelled for its deadline."""
        self._running.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def expire_all(self) -> None:
        """Cut off every request running now."""
        if self._running:
            log.warning("cutting off %d request(s) still running", len(self._running))
        for task in self._running:
            self._running[task] = float("-inf")
        if self._timer is not None:
            self._timer.cancel()
        self._check()

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a timer left by a loop that has stopped
            return
        now = loop.time()
        for task, deadline in list(self._running.items()):
            if task.get_loop() is not loop:  # a request of a loop that stopped under it
                del self._running[task]
            elif deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = loop.call_later(CHECK_SECONDS, self._check) if self._running else None


class RequestGuard:
    """Bounds every HTTP request.

    - All the database work of a request shares one time limit (`limit` seconds); a
      request still running `MARGIN_SECONDS` after it (up to `CHECK_SECONDS` more) is
      answered `503`.
    - While the embedded database restarts or was given up on, requests other than the
      health checks are answered `503` at once, without waiting for the database.
    - While the server drains, responses carry `Connection: close`; the requests the
      drain cuts off are answered `503`.

    Every `503` carries `Retry-After`. The application puts its `DatabaseStatus` and
    `Drain` in `app.state.database_status` and `app.state.drain`.
    """

    def __init__(self, app: ASGIApp, limit: float) -> None:
        self.app = app
        self.limit = limit
        self.deadlines = Deadlines()
        self._state: object = None
        self._status: DatabaseStatus | None = None
        self._drain: Drain | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        if state is not self._state:  # the application's, read once
            self._status, self._drain = state.database_status, state.drain
            self._state = state
            self._drain.on_cut(self.deadlines.expire_all)
        status, drain = self._status, self._drain
        assert status is not None
        assert drain is not None
        if scope["path"] not in HEALTH_PATHS and status.unavailable:
            detail = (
                "the database failed and the server is stopping; try again shortly"
                if status.state() == FAILED
                else "the database is restarting; try again shortly"
            )
            await self._refuse(scope, send, drain, detail)
            return
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if drain.draining:
                    headers = list(message.get("headers", []))
                    if not any(name.lower() == b"connection" for name, _ in headers):
                        headers.append(_CLOSE)
                    message = {**message, "headers": headers}
            await send(message)

        if drain.cut:
            await self._refuse(scope, send, drain, SHUTTING_DOWN)
            return
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        deadlines = self.deadlines
        deadlines.enter(task, task.get_loop().time() + self.limit + MARGIN_SECONDS)
        expired = False
        try:
            try:
                with time_limit(self.limit):
                    await self.app(scope, receive, guarded_send)
            finally:
                # as asyncio.timeout does: the cancellation made here is taken back, and
                # only a CancelledError that nobody else asked for is the deadline's
                expired = deadlines.leave(task) and task.uncancel() <= cancelling
        except asyncio.CancelledError:
            if not expired:
                raise
            if drain.cut:
                detail = SHUTTING_DOWN
            else:
                detail = f"the request did not complete within {self.limit:g} s; try again"
            log.warning(
                "request cut off: %s",
                detail,
                extra={"method": scope["method"], "path": scope["path"]},
            )
            if not started:
                await self._refuse(scope, send, drain, detail)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, drain: Drain, detail: str) -> None:
        headers = [_RETRY, _CLOSE] if drain.draining else [_RETRY]
        await refuse(
            scope, send, 503, "SERVICE_UNAVAILABLE", "Service unavailable", detail, headers
        )
