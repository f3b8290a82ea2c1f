"""Seeding: personas written through `PersonaStore.create`, labels set through
`store.labels.set`, many at a time, with a progress bar; and the API key the server is
called with."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from bench.scenarios import RELEASE_LABEL
from personas import domain
from personas.auth import generate_key
from personas.store import PersonaStore

CONCURRENCY = 1
"""Writes in flight while seeding. One: every change of a tenant increments the tenant's event
counter in its transaction, so concurrent writers to one tenant conflict and retry with
backoff. Measured on the embedded database, 300 creates: 197/s with 1 writer, 143/s with 4,
125/s with 8, 43/s with 32 (where a create can exhaust its 30 s time limit in retries)."""
BAR_WIDTH = 30
LABEL_EVERY = 2
"""RELEASE_LABEL goes on every LABEL_EVERY-th persona."""
KEY_SCOPES = frozenset({"read", "write", "approve"})


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
    labelled: list[str] = field(default_factory=list)
    """The ids of the personas whose version 1 carries RELEASE_LABEL, in the same order."""
    token: str | None = None
    """An API key of the seeded personas' tenant (`default`) with every scope."""


def labelled(count: int) -> list[int]:
    """The indexes of the seeded personas that get RELEASE_LABEL."""
    return list(range(0, count, LABEL_EVERY))


async def in_parallel(
    count: int,
    work: Callable[[int], Awaitable[None]],
    label: str,
    concurrency: int = CONCURRENCY,
    stream: TextIO = sys.stderr,
) -> None:
    """`work(index)` for each index below `count`, `concurrency` at a time, with a bar."""
    bar = ProgressBar(count, label, stream)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())
            bar.advance()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, count)):
                group.create_task(worker())
    finally:
        bar.close()


async def seed(
    store: PersonaStore,
    personas: Sequence[domain.NewPersona],
    concurrency: int = CONCURRENCY,
    stream: TextIO = sys.stderr,
) -> Seeded:
    """Write `personas` with `concurrency` creates in flight, then set RELEASE_LABEL on the
    version 1 of every LABEL_EVERY-th one."""
    await store.ensure_indexes()
    ids: list[str] = [""] * len(personas)
    started = time.monotonic()

    async def create(index: int) -> None:
        ids[index] = (await store.create(domain.ANONYMOUS, personas[index])).id

    await in_parallel(len(personas), create, "seeding personas", concurrency, stream)
    chosen = [ids[index] for index in labelled(len(personas))]

    async def label(index: int) -> None:
        await store.labels.set(domain.ANONYMOUS, chosen[index], RELEASE_LABEL, 1)

    await in_parallel(len(chosen), label, f"labelling {RELEASE_LABEL}", concurrency, stream)
    return Seeded(ids=ids, seconds=time.monotonic() - started, labelled=chosen)


async def issue_key(store: PersonaStore) -> str:
    """A new API key of the seeded personas' tenant, with every scope: its token."""
    new = generate_key()
    await store.keys.create(
        new.id, new.secret_hash, domain.ANONYMOUS.tenant, KEY_SCOPES, "benchmark"
    )
    return new.token


async def seed_database(
    uri: str,
    db_name: str,
    personas: Sequence[domain.NewPersona],
    timeout_ms: int = 30_000,
    key: bool = True,
) -> Seeded:
    """Seed the database; with `key`, create the API key too (while no key exists, the
    server answers anonymous callers on loopback instead)."""
    store = PersonaStore.connect(uri, db_name, timeout_ms)
    try:
        seeded = await seed(store, personas)
        if not key:
            return seeded
        return dataclasses.replace(seeded, token=await issue_key(store))
    finally:
        await store.close()
