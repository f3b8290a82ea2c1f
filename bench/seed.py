"""Seeding: personas written through `PersonaStore.create`, many at a time, with a progress bar."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from personas import domain
from personas.store import PersonaStore

CONCURRENCY = 32
BAR_WIDTH = 30


class ProgressBar:
    """A one-line bar on a terminal; a line every 10 % anywhere else (CI logs)."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream
        self.done = 0
        self.started = time.monotonic()
        self._live = stream.isatty()
        self._last_decile = -1
        self._last_draw = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self._live:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self.line(now))
                self.stream.flush()
        else:
            decile = self.done * 10 // self.total
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self.line(now) + "\n")
                self.stream.flush()

    def line(self, now: float) -> str:
        fraction = min(self.done / self.total, 1.0)
        filled = round(fraction * BAR_WIDTH)
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        remaining = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return (
            f"{self.label} [{bar}] {self.done}/{self.total} {fraction:4.0%} "
            f"{rate:6.0f}/s ETA {remaining:4.0f}s"
        )

    def close(self) -> None:
        if self._live:
            self.stream.write("\n")
            self.stream.flush()


@dataclass(frozen=True, slots=True)
class Seeded:
    ids: list[str]
    """Persona ids in the order they were written."""
    seconds: float


async def seed(
    store: PersonaStore,
    personas: Sequence[domain.NewPersona],
    concurrency: int = CONCURRENCY,
    stream: TextIO = sys.stderr,
) -> Seeded:
    """Write `personas` with `concurrency` creates in flight, as concurrent clients would."""
    await store.ensure_indexes()
    bar = ProgressBar(len(personas), "seeding personas", stream)
    ids: list[str] = [""] * len(personas)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(personas)):
        queue.put_nowait(index)
    started = time.monotonic()

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            created = await store.create(domain.ANONYMOUS, personas[index])
            ids[index] = created.id
            bar.advance()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(personas))):
                group.create_task(worker())
    finally:
        bar.close()
    return Seeded(ids=ids, seconds=time.monotonic() - started)


async def seed_database(
    uri: str, db_name: str, personas: Sequence[domain.NewPersona], timeout_ms: int = 30_000
) -> Seeded:
    store = PersonaStore.connect(uri, db_name, timeout_ms)
    try:
        return await seed(store, personas)
    finally:
        await store.close()
