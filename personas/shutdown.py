"""Shutdown within a bound: how the time after SIGTERM/SIGINT is shared, and the drain.

From the signal on, a server has `bound` seconds (PERSONAS_SHUTDOWN_TIMEOUT) to be gone:

- until `drain`: requests in flight go on; responses carry `Connection: close`;
- at `drain`: requests still running are answered `503` (the `Drain` cuts them off);
- until `graceful`: uvicorn waits for connections to close, then cancels what is left;
- `close`: the application's database client may take this long to close;
- until `database`: the embedded database stops (SIGTERM, then SIGKILL);
- at `bound`: whatever is left is killed and the process exits (the `Watchdog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

log = logging.getLogger("personas.shutdown")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RESERVE_MAX_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class ShutdownPlan:
    """Seconds after the stop signal by which each stage must be over (`close` is a length)."""

    bound: float
    drain: float
    graceful: int
    close: float
    database: float


def shutdown_plan(bound: float) -> ShutdownPlan:
    """Requests get most of the time; the rest is kept for what follows them."""
    reserve = min(RESERVE_MAX_SECONDS, bound * 0.4)
    drain = bound - reserve
    return ShutdownPlan(
        bound=bound,
        drain=drain,
        graceful=max(1, math.ceil(drain + reserve / 8)),
        close=reserve / 4,
        database=bound - reserve / 8,
    )


class Drain:
    """The application's side of a shutdown, in the process that serves requests.

    `install()` (from the application's lifespan, in the main thread) chains a handler
    in front of uvicorn's for SIGTERM and SIGINT, so that the drain begins with the
    signal: from then on responses close their connection, and `cutoff` seconds later
    every request still running is cut off (`RequestGuard` answers it with a 503).
    """

    def __init__(self, cutoff: float) -> None:
        self.cutoff = cutoff
        self.draining = False
        self.cut = False
        self._on_cut: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            return
        for number in STOP_SIGNALS:
            self._previous[number] = signal.signal(number, self._on_signal)

    def uninstall(self) -> None:
        for number, previous in self._previous.items():
            if signal.getsignal(number) == self._on_signal:
                signal.signal(number, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.begin)
        previous = self._previous.get(number)
        if callable(previous):
            previous(number, frame)

    def begin(self) -> None:
        """Start draining (in the event loop's thread)."""
        if self.draining:
            return
        self.draining = True
        loop = asyncio.get_running_loop()
        self._loop = loop
        log.info("draining: requests still running in %g s will be answered 503", self.cutoff)
        loop.call_later(self.cutoff, self._cut_off)

    def on_cut(self, cut_off: Callable[[], None]) -> None:
        """Call `cut_off` (in the event loop's thread) when the drain cuts off the requests
        still running; a request that starts after that is to be cut off at once."""
        self._on_cut.append(cut_off)

    def _cut_off(self) -> None:
        self.cut = True
        for cut_off in self._on_cut:
            cut_off()


class Watchdog:
    """The last resort, in the main process: `bound` seconds after `start()`, call
    `on_expiry` (kill what is left) and exit with status 1."""

    def __init__(self, bound: float, on_expiry: Callable[[], None]) -> None:
        self.bound = bound
        self.on_expiry = on_expiry
        self.started_at: float | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self.started_at = time.monotonic()
            self._timer = threading.Timer(self.bound, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()

    def left_until(self, moment: float) -> float | None:
        """Seconds left until `moment` seconds after the start; None when not started."""
        if self.started_at is None:
            return None
        return max(0.0, self.started_at + moment - time.monotonic())

    def _expire(self) -> None:
        log.error(
            "the shutdown did not complete within %g s (PERSONAS_SHUTDOWN_TIMEOUT); "
            "killing what is left",
            self.bound,
        )
        try:
            self.on_expiry()
        finally:
            for handler in logging.getLogger().handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
            os._exit(1)
