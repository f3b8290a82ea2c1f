"""Keeps the embedded database running: notices its death, restarts it, gives up in the end."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from personas.availability import FAILED, RESTARTING
from personas.embedded import EmbeddedDatabase, EmbeddedDatabaseError

log = logging.getLogger("personas.supervision")

POLL_SECONDS = 0.1
"""How often the supervisor looks at the database process."""
STABLE_SECONDS = 30.0
"""A database that ran this long since its last restart starts with a clean record."""
BACKOFF_MAX_SECONDS = 30.0


def backoff(base: float, failures: int) -> float:
    """The wait before the restart that follows `failures` failed ones: doubling, capped."""
    return min(base * 2.0**failures, BACKOFF_MAX_SECONDS)


def exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """A thread that restarts the embedded database when it exits.

    Restarts wait `backoff` seconds, doubling after each failure. After `restarts`
    failed restarts in a row (a restart that dies within `STABLE_SECONDS` counts as
    failed) the database is given up on: the state becomes `failed` and `on_give_up`
    is called with the reason, to stop the server. The thread starts every restarted
    database itself, and lives as long as they do (the kernel ties "stop the database
    when we die" to the thread that started it).
    """

    def __init__(
        self,
        database: EmbeddedDatabase,
        restarts: int,
        backoff: float,
        on_give_up: Callable[[str], None],
    ) -> None:
        self.database = database
        self.restarts = restarts
        self.backoff = backoff
        self.on_give_up = on_give_up
        self.reason: str | None = None
        """Why the database was given up on, once it was."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="embedded-database-supervisor", daemon=True
        )
        self._failures = 0
        self._started_at = time.monotonic()

    @property
    def given_up(self) -> bool:
        return self.reason is not None

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop supervising (restarts in progress are abandoned); the database keeps running."""
        self._stopping.set()
        self.database.interrupt()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping.wait(POLL_SECONDS):
                code = self.database.exit_code()
                if code is not None and not self._recover(code):
                    return
        except Exception as error:  # the supervisor must never die silently
            log.exception("supervising the embedded database failed")
            self._give_up(f"supervising the embedded database failed: {error}")

    def _recover(self, code: int) -> bool:
        """Restart the database; False once given up on or stopping."""
        if self._stopping.is_set():
            return False
        if time.monotonic() - self._started_at >= STABLE_SECONDS:
            self._failures = 0
        log.error(
            "the embedded database (pid %s) %s; restarting it on the same data directory "
            "and port; its log is %s",
            self.database.pid,
            exit_description(code),
            self.database.log_path,
        )
        self.database.record(RESTARTING)
        while True:
            if self._failures >= self.restarts:
                self._give_up(
                    f"the embedded database failed and {self._failures} restart(s) in a row "
                    f"did not bring it back (PERSONAS_EMBEDDED_RESTARTS={self.restarts}); "
                    f"its log is {self.database.log_path}"
                )
                return False
            delay = backoff(self.backoff, self._failures)
            if self._stopping.wait(delay):
                return False
            self._failures += 1
            try:
                self.database.restart()
            except EmbeddedDatabaseError as error:
                if self._stopping.is_set():
                    return False
                log.error("restart %d of the embedded database failed: %s", self._failures, error)
                continue
            self._started_at = time.monotonic()
            log.warning(
                "the embedded database is running again (pid %s, restart %d of at most %d)",
                self.database.pid,
                self._failures,
                self.restarts,
            )
            return True

    def _give_up(self, reason: str) -> None:
        self.reason = reason
        self.database.record(FAILED)
        log.error("giving up on the embedded database: %s; stopping the server", reason)
        self.on_give_up(reason)
