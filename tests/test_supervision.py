"""The supervisor of the embedded database, against the real `secantusd-py`."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from personas.embedded import EmbeddedDatabase
from personas.supervision import BACKOFF_MAX_SECONDS, Supervisor, backoff, exit_description

SLACK = 5.0


def test_the_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff(0.5, failures) for failures in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(0.5, 20) == BACKOFF_MAX_SECONDS
    assert backoff(0, 3) == 0


def test_exits_are_described_for_people() -> None:
    assert exit_description(-9) == "was killed by SIGKILL"
    assert exit_description(1) == "exited with code 1"


def eventually(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.02)


def recorded(database: EmbeddedDatabase) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(database.address_path.read_text())
    except (OSError, ValueError):
        return {}
    return found


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    embedded = EmbeddedDatabase(tmp_path, stop_grace=2)
    embedded.start()
    yield embedded
    embedded.stop()


def test_a_killed_database_comes_back_on_its_port_with_its_data_then_is_given_up_on(
    database: EmbeddedDatabase,
) -> None:
    uri = database.uri
    assert uri is not None
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    with client:
        client.supervised.things.insert_one({"kept": True})
    reasons: list[str] = []
    supervisor = Supervisor(database, restarts=2, backoff=0.1, on_give_up=reasons.append)
    supervisor.start()
    try:
        first = database.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        eventually(
            lambda: recorded(database).get("state") == "running" and database.pid != first,
            within=30 + SLACK,
        )
        assert database.uri == uri
        again: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=10_000)
        with again:
            assert again.supervised.things.find_one({}, {"_id": 0}) == {"kept": True}

        second = database.pid
        assert second is not None
        os.kill(second, signal.SIGKILL)
        eventually(lambda: recorded(database).get("state") == "restarting", within=1 + SLACK)
        storage = database.storage_path
        storage.rename(storage.with_name("db-moved"))
        storage.write_text("unusable")
        eventually(lambda: bool(reasons), within=2 * 0.4 + 2 * 30 + SLACK)

        assert supervisor.given_up
        assert "PERSONAS_EMBEDDED_RESTARTS=2" in reasons[0]
        assert recorded(database)["state"] == "failed"
    finally:
        supervisor.stop()


def test_stopping_the_supervisor_abandons_a_pending_restart(database: EmbeddedDatabase) -> None:
    reasons: list[str] = []
    supervisor = Supervisor(database, restarts=3, backoff=60, on_give_up=reasons.append)
    supervisor.start()
    assert database.pid is not None
    os.kill(database.pid, signal.SIGKILL)
    eventually(lambda: recorded(database).get("state") == "restarting", within=1 + SLACK)

    started = time.monotonic()
    supervisor.stop()

    assert time.monotonic() - started < SLACK
    assert reasons == []
    assert database.exit_code() == -signal.SIGKILL
