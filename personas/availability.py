"""What the application knows of its database's state beyond what a query tells it.

`personas serve` supervises the embedded database in its main process and records the
database's state in the data directory's `server.json`; every worker reads it from
there, so that all of them refuse requests at once while the database restarts, and
report unhealthy once it has been given up on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Final

from personas.domain import Unavailable
from personas.store import PersonaStore

log = logging.getLogger("personas.availability")

RUNNING: Final = "running"
RESTARTING: Final = "restarting"
FAILED: Final = "failed"
"""The states of the embedded database, as `server.json` records them."""

RECORD_NAME: Final = "server.json"
"""The embedded database's record, in the data directory."""
REFRESH_SECONDS: Final = 0.1
RETRY_AFTER_SECONDS: Final = 1
"""What a `503` answers in `Retry-After`."""
PREPARE_RETRY_SECONDS: Final = 1.0


class DatabaseStatus:
    """The recorded state of the database at `uri`, re-read at most every 0.1 s.

    Only a record naming this very URI counts: with MONGODB_URI, or a record left by
    another database, the state is unknown (None) and requests go ahead.
    """

    def __init__(self, data_dir: Path, uri: str) -> None:
        self.record_path = data_dir.resolve() / RECORD_NAME
        self.uri = uri
        self._state: str | None = None
        self._read_at = float("-inf")

    def state(self) -> str | None:
        moment = time.monotonic()
        if moment - self._read_at >= REFRESH_SECONDS:
            self._read_at = moment
            self._state = self._read()
        return self._state

    @property
    def unavailable(self) -> bool:
        """The database is restarting or was given up on: refuse without asking it."""
        return self.state() in (RESTARTING, FAILED)

    @property
    def failed(self) -> bool:
        return self.state() == FAILED

    def _read(self) -> str | None:
        try:
            record = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("uri") != self.uri:
            return None
        state = record.get("state")
        return state if isinstance(state, str) else None


async def prepare(store: PersonaStore) -> asyncio.Task[None] | None:
    """Prepare the database (`PersonaStore.prepare`) now, or, while it is unavailable (a
    worker starting while the embedded database restarts), in a task that retries until
    it answers: the worker starts all the same, answering 503 meanwhile."""
    try:
        await store.prepare()
    except Unavailable as error:
        log.warning("the database is unavailable (%s); preparing it once it answers", error)
        return asyncio.create_task(_prepare_when_available(store))
    return None


async def _prepare_when_available(store: PersonaStore) -> None:
    while True:
        await asyncio.sleep(PREPARE_RETRY_SECONDS)
        try:
            await store.prepare()
        except Unavailable:
            continue
        log.info("the database answers again: prepared")
        return
