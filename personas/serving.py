"""Runs uvicorn, in this process or in worker processes, and bounds its shutdown."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from personas.settings import Settings
from personas.shutdown import ShutdownPlan, Watchdog, shutdown_plan

log = logging.getLogger("personas")

APP = "personas.serving:application"


def application() -> Starlette:
    """The uvicorn factory: the application, with everything built so far (modules, the
    schema and its types, the routes) moved out of the garbage collector's way: a
    collection no longer walks these long-lived objects."""
    from personas.app import app_from_environment  # only where the server runs

    app = app_from_environment()
    gc.collect()
    gc.freeze()
    return app


class _Server(uvicorn.Server):
    """uvicorn's server, telling us when a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stop = on_stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_stop()
        super().handle_exit(sig, frame)


class _Workers(Multiprocess):
    """uvicorn's worker supervisor, telling us when a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, sockets: Any, on_stop: Callable[[], None]) -> None:
        super().__init__(config, sockets)
        self.on_stop = on_stop

    def handle_int(self) -> None:
        self.on_stop()
        super().handle_int()

    def handle_term(self) -> None:
        self.on_stop()
        super().handle_term()


class Service:
    """The HTTP server. From the first stop signal on, everything must be over within
    `settings.shutdown_timeout` seconds: past it, `on_expiry` kills what is left (the
    workers are killed here) and the process exits with status 1."""

    def __init__(
        self,
        settings: Settings,
        log_config: dict[str, Any],
        on_expiry: Callable[[], None],
    ) -> None:
        self.plan: ShutdownPlan = shutdown_plan(settings.shutdown_timeout)
        self.config = uvicorn.Config(
            APP,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=log_config,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=self.plan.graceful,
        )
        self._on_expiry = on_expiry
        self.watchdog = Watchdog(self.plan.bound, self._expire)
        self._workers: _Workers | None = None

    def run(self) -> None:
        """Serve until stopped; SystemExit when the server could not start."""
        if self.config.workers > 1:
            sockets = [self.config.bind_socket()]
            self._workers = _Workers(self.config, sockets, self.watchdog.start)
            self._workers.run()
            return
        server = _Server(self.config, self.watchdog.start)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)

    def stop(self) -> None:
        """Stop as if by SIGTERM (from any thread): the same drain and bound."""
        os.kill(os.getpid(), signal.SIGTERM)

    def left_until(self, moment: float) -> float | None:
        """Seconds left until `moment` seconds after the stop signal (None before it)."""
        return self.watchdog.left_until(moment)

    def _expire(self) -> None:
        try:
            self._on_expiry()
        finally:
            for worker in self._workers.processes if self._workers else []:
                if worker.process.is_alive():
                    worker.kill()
