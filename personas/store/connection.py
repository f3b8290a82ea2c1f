"""How the store reaches MongoDB: client options, and waiting for a server to answer."""

from __future__ import annotations

import time
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError


def client_options(timeout_ms: int) -> dict[str, Any]:
    return {
        "tz_aware": True,
        "timeoutMS": timeout_ms,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "appname": "personas",
    }


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
