"""How the store reaches MongoDB: client options, and waiting for a server to answer."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

import pymongo
from pymongo import MongoClient
from pymongo.errors import PyMongoError


def client_options(timeout_ms: int) -> dict[str, Any]:
    """Every write is acknowledged only once a majority has it in its journal, and reads
    see only majority-committed data, from the primary (README: Durability)."""
    return {
        "tz_aware": True,
        "timeoutMS": timeout_ms,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "appname": "personas",
        "w": "majority",
        "journal": True,
        "readConcernLevel": "majority",
        "readPreference": "primary",
    }


def time_limit(seconds: float | None) -> AbstractContextManager[None]:
    """Every database operation started inside shares one deadline, `seconds` from now
    (retries and transactions included); nested limits only shorten it."""
    return pymongo.timeout(seconds)


def wait_until_ready(uri: str, timeout: float) -> bool:
    """Ping `uri` until it answers or `timeout` seconds pass; True when it answered."""
    deadline = time.monotonic() + timeout
    while True:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, **client_options(500))
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        finally:
            client.close()
