"""A real server on a free loopback port, for clients that need a socket (a browser, gql)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from personas.app import create_app
from personas.auth import generate_key
from personas.settings import Settings
from personas.store import PersonaStore


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """uvicorn serving `create_app(settings)` in a thread; yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings.replace(host="127.0.0.1", port=port)),
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()
        asyncio.run(_drop(settings))


def create_key(settings: Settings, tenant: str = "acme") -> str:
    """A read-write key of `tenant` in the settings' database; returns its token."""

    async def create() -> str:
        store = PersonaStore.connect(_uri(settings), settings.db_name, settings.db_timeout_ms)
        try:
            new = generate_key()
            scopes = frozenset({"read", "write"})
            await store.keys.create(new.id, new.secret_hash, tenant, scopes, "live test")
            return new.token
        finally:
            await store.close()

    return asyncio.run(create())


async def _drop(settings: Settings) -> None:
    store = PersonaStore.connect(_uri(settings), settings.db_name, settings.db_timeout_ms)
    try:
        await store.drop_database()
    finally:
        await store.close()


def _uri(settings: Settings) -> str:
    assert settings.mongodb_uri is not None
    return settings.mongodb_uri
