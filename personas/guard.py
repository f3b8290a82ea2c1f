"""Every request ends in time: a deadline for all of it, a fast 503 while the database is
known to be down, and the drain of a shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personas.availability import FAILED, RETRY_AFTER_SECONDS, DatabaseStatus
from personas.middleware import refuse
from personas.shutdown import Drain
from personas.store import time_limit

log = logging.getLogger("personas.guard")

HEALTH_PATHS: Final = frozenset({"/healthz", "/readyz"})
MARGIN_SECONDS: Final = 1.0
"""How long past the database time limit a request may still run before it is cut off."""
_RETRY: Final = (b"retry-after", str(RETRY_AFTER_SECONDS).encode())
_CLOSE: Final = (b"connection", b"close")


class RequestGuard:
    """Bounds every HTTP request.

    - All the database work of a request shares one time limit (`limit` seconds); a
      request still running `MARGIN_SECONDS` after it is answered `503`.
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        status: DatabaseStatus = state.database_status
        drain: Drain = state.drain
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

        deadline = asyncio.timeout(self.limit + MARGIN_SECONDS)
        try:
            async with deadline:
                drain.track(deadline)
                try:
                    with time_limit(self.limit):
                        await self.app(scope, receive, guarded_send)
                finally:
                    drain.untrack(deadline)
        except TimeoutError:
            if not deadline.expired():
                raise
            if drain.cut:
                detail = "the server is shutting down; try again"
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
