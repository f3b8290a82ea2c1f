"""The store's replacement of the driver's send and receive (`store/transport.py`): the same
answers, time limits, interruptions and cancellations as the driver's own functions, against
a real database, frozen with SIGSTOP where a reply must never come."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pymongo
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect, NetworkTimeout

from personas.embedded import EmbeddedDatabase
from personas.store import transport
from personas.store.connection import client_options, time_limit

SLACK = 1.0
"""Seconds a test allows past the moment an operation should have ended."""

IMPLEMENTATIONS = {
    "driver": (transport.layer.async_sendall, transport.layer.async_receive_message),
    "replacement": (transport.sendall, transport.receive_message),
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The pool sends and receives with the driver's functions, or with the replacement."""
    name: str = request.param
    sendall, receive = IMPLEMENTATIONS[name]
    monkeypatch.setattr(transport.pool, "async_sendall", sendall)
    monkeypatch.setattr(transport.pool, "async_receive_message", receive)
    return name


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    """A database of this module's own, to be frozen with SIGSTOP (and thawed afterwards)."""
    database = EmbeddedDatabase(tmp_path_factory.mktemp("transport") / "db", stop_grace=2)
    database.start()
    try:
        yield database
    finally:
        thaw(database)
        database.stop()


def freeze(database: EmbeddedDatabase) -> None:
    assert database.pid is not None
    os.kill(database.pid, signal.SIGSTOP)  # alive, accepting connections, never answering


def thaw(database: EmbeddedDatabase) -> None:
    if database.pid is not None:
        os.kill(database.pid, signal.SIGCONT)


@pytest.fixture
async def client(
    database: EmbeddedDatabase, implementation: str
) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """A client as the store makes it, without retried reads (a retry would wait for a new
    connection's handshake, which a frozen database never answers)."""
    assert database.uri is not None
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        database.uri, **{**client_options(5000), "retryReads": False}
    )
    await client.admin.command("ping")
    try:
        yield client
    finally:
        thaw(database)
        await client.close()


async def timed(operation: Callable[[], Any]) -> tuple[float, BaseException | None]:
    """How long `operation()` took, and what it raised."""
    started = time.monotonic()
    try:
        await operation()
    except BaseException as error:  # the test compares what was raised
        return time.monotonic() - started, error
    return time.monotonic() - started, None


def test_the_replacement_is_in_use_with_the_locked_driver() -> None:
    """`requirements.lock` pins the driver the replacement was written for: after an upgrade
    this fails until the replacement is checked against the new driver (and its version
    moved), or removed."""
    assert pymongo.version == transport.PYMONGO_VERSION
    assert transport.install()
    assert transport.installed()
    assert transport.install()  # twice changes nothing


def test_another_driver_version_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport.pool, "async_sendall", transport.layer.async_sendall)
    monkeypatch.setattr(
        transport.pool, "async_receive_message", transport.layer.async_receive_message
    )
    monkeypatch.setattr(pymongo, "version", "4.21.0")
    assert not transport.install()
    assert not transport.installed()
    assert transport.pool.async_sendall is transport.layer.async_sendall
    assert transport.pool.async_receive_message is transport.layer.async_receive_message


def test_a_pool_that_calls_other_functions_is_left_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def elsewhere(*arguments: Any) -> None:
        raise AssertionError("not called")

    monkeypatch.setattr(transport.pool, "async_sendall", elsewhere)
    monkeypatch.setattr(
        transport.pool, "async_receive_message", transport.layer.async_receive_message
    )
    assert not transport.install()
    assert transport.pool.async_sendall is elsewhere


async def test_operations_answer_as_with_the_driver(
    client: AsyncMongoClient[dict[str, Any]],
) -> None:
    collection = client.transport[f"answers_{ObjectId()}"]
    documents = [{"_id": number, "name": f"n{number}", "tags": ["prod"]} for number in range(300)]
    with time_limit(5):
        await collection.insert_many(documents)
        assert await collection.find_one({"_id": 7}) == documents[7]
        assert await collection.find_one({"_id": -1}) is None
        # more than one batch: getMore replies too
        assert await collection.find({}, batch_size=50).sort("_id").to_list() == documents
        found = await asyncio.gather(*(collection.find_one({"_id": n}) for n in range(40)))
        assert found == documents[:40]
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        await collection.insert_one({"_id": 7})


Find = Callable[[float], Coroutine[Any, Any, dict[str, Any] | None]]


async def frozen(database: EmbeddedDatabase, client: AsyncMongoClient[dict[str, Any]]) -> Find:
    """A collection holding one document, then the database frozen: `find(limit)` reads the
    document under a time limit of `limit` seconds (no reply comes until `thaw`)."""
    collection = client.transport[f"frozen_{ObjectId()}"]
    await collection.insert_one({"_id": 1})
    freeze(database)

    async def find(limit: float) -> dict[str, Any] | None:
        with time_limit(limit):
            return await collection.find_one({"_id": 1})

    return find


async def test_a_reply_that_never_comes_ends_at_the_time_limit(
    database: EmbeddedDatabase, client: AsyncMongoClient[dict[str, Any]]
) -> None:
    find = await frozen(database, client)
    took, error = await timed(lambda: find(0.4))
    assert isinstance(error, NetworkTimeout), repr(error)
    assert 0.3 < took < 0.4 + SLACK
    thaw(database)
    assert await find(5) == {"_id": 1}  # the connection that timed out was closed, not reused


async def test_an_interrupted_connection_ends_its_wait_at_the_next_check(
    database: EmbeddedDatabase, client: AsyncMongoClient[dict[str, Any]]
) -> None:
    """The pool interrupts the connections in use (as it does when its monitor finds the
    server gone): the wait ends within a check, not at the 5 s limit."""
    find = await frozen(database, client)
    waiting = asyncio.create_task(timed(lambda: find(5)))
    await asyncio.sleep(0.2)
    topology = client._topology
    for server in topology._servers.values():
        await server.pool.reset(interrupt_connections=True)
    took, error = await waiting
    assert isinstance(error, AutoReconnect), repr(error)
    assert took < 0.2 + transport.POLL_SECONDS + SLACK


async def test_a_cancelled_operation_raises_cancelled_and_leaves_the_pool_usable(
    database: EmbeddedDatabase, client: AsyncMongoClient[dict[str, Any]]
) -> None:
    find = await frozen(database, client)
    waiting = asyncio.create_task(find(5))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert time.monotonic() - started < SLACK
    thaw(database)
    assert await find(5) == {"_id": 1}


async def test_a_cancellation_before_the_limit_is_a_cancellation(
    database: EmbeddedDatabase, client: AsyncMongoClient[dict[str, Any]]
) -> None:
    """A cancellation from outside (a request's deadline) ends a wait that has a limit of its
    own as a cancellation, not as the limit's timeout."""
    find = await frozen(database, client)
    waiting = asyncio.create_task(find(0.3))
    await asyncio.sleep(0.1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_writes_are_acknowledged_as_with_the_driver(
    client: AsyncMongoClient[dict[str, Any]],
) -> None:
    collection = client.transport[f"writes_{ObjectId()}"]
    with time_limit(5):
        for number in range(50):
            await collection.update_one({"_id": number}, {"$set": {"n": number}}, upsert=True)
        assert await collection.count_documents({}) == 50
        deleted = await collection.delete_many({"n": {"$gte": 25}})
    assert deleted.deleted_count == 25
    assert deleted.acknowledged is True


@pytest.mark.parametrize("implementation", ["replacement"], indirect=True)
async def test_a_cancellation_arriving_with_the_limit_stays_a_cancellation(
    database: EmbeddedDatabase,
    client: AsyncMongoClient[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The limit's timer and another cancellation (a request's deadline, checked by a timer
    too) fire in the same turn of the loop: the wait ends in `CancelledError`, as with
    `asyncio.timeout`, and the other cancellation is not taken for the limit. (The driver's
    own wait has no timer of its own to fire with another.)"""
    check = transport._Watch._check

    def check_and_cancel_too(watch: transport._Watch) -> None:
        check(watch)
        if watch.reason is not None:
            watch._task.cancel()  # the other cancellation, in the same turn

    monkeypatch.setattr(transport._Watch, "_check", check_and_cancel_too)
    find = await frozen(database, client)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(find(0.3))
