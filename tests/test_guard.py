"""Every request ends in time: a hanging handler, a hanging database, a database known down,
and the drain of a shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from personas.app import create_app
from personas.auth import generate_key
from personas.availability import DatabaseStatus
from personas.domain import ALL_SCOPES, NewPersona, Principal, Unavailable
from personas.embedded import EmbeddedDatabase
from personas.guard import CHECK_SECONDS, MARGIN_SECONDS, Deadlines, RequestGuard
from personas.settings import Settings
from personas.shutdown import Drain
from personas.store import PersonaStore

SLACK = 5.0
"""Added to every bound: these are bounds, not speed tests."""
ACME = Principal(tenant="acme", scopes=ALL_SCOPES)


async def forever(request: Request) -> Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def quick(request: Request) -> Response:
    return PlainTextResponse("done")


def guarded(tmp_path: Path, limit: float, cutoff: float = 60.0) -> Starlette:
    app = Starlette(
        routes=[
            Route("/forever", forever),
            Route("/graphql", forever, methods=["POST"]),
            Route("/quick", quick),
        ]
    )
    app.state.database_status = DatabaseStatus(tmp_path, "mongodb://127.0.0.1:1")
    app.state.drain = Drain(cutoff)
    app.add_middleware(RequestGuard, limit=limit)
    return app


def client_of(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_request_that_never_ends_is_answered_503_past_the_limit(tmp_path: Path) -> None:
    async with client_of(guarded(tmp_path, limit=0.2)) as http:
        started = time.monotonic()
        response = await http.get("/forever")
        elapsed = time.monotonic() - started
        query = await http.post("/graphql", json={"query": "{ personas { totalCount } }"})

    assert 0.2 + MARGIN_SECONDS <= elapsed + 0.05 < 0.2 + MARGIN_SECONDS + SLACK
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "did not complete within 0.2 s" in response.json()["detail"]
    assert "connection" not in response.headers
    assert query.status_code == 503
    assert query.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


async def test_the_drain_closes_connections_and_cuts_off_what_still_runs(tmp_path: Path) -> None:
    app = guarded(tmp_path, limit=30, cutoff=0.3)
    async with client_of(app) as http:
        running = asyncio.create_task(http.get("/forever"))
        await asyncio.sleep(0.05)
        app.state.drain.begin()
        during = await http.get("/quick")
        started = time.monotonic()
        cut = await running
        elapsed = time.monotonic() - started
        late = await http.get("/forever")

    assert during.status_code == 200
    assert during.headers["connection"] == "close"
    assert elapsed < 0.3 + SLACK
    assert cut.status_code == 503
    assert cut.headers["connection"] == "close"
    assert cut.headers["retry-after"] == "1"
    assert "shutting down" in cut.json()["detail"]
    assert late.status_code == 503  # after the cut-off nothing waits


def guard_of(app: Starlette) -> RequestGuard:
    layer: object = app.middleware_stack
    while not isinstance(layer, RequestGuard):
        layer = getattr(layer, "app")  # noqa: B009 - every layer has its own type
    return layer


async def test_a_request_cancelled_by_its_caller_is_not_answered(tmp_path: Path) -> None:
    """Only the deadline's own cancellation is answered 503: another (a caller gone, the
    server stopping) goes on, and no deadline is left behind."""
    app = guarded(tmp_path, limit=30)
    async with client_of(app) as http:
        assert (await http.get("/quick")).status_code == 200
        guard = guard_of(app)
        running = asyncio.create_task(http.get("/forever"))
        await asyncio.sleep(0.05)
        assert len(guard.deadlines) == 1
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert len(guard.deadlines) == 0


async def test_deadlines_are_checked_by_one_timer_only_while_requests_run() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(asyncio.Event().wait()) for _ in range(3)]
    deadlines.enter(tasks[0], loop.time() + 0.05)
    deadlines.enter(tasks[1], loop.time() + 60)
    assert deadlines.checking
    await asyncio.sleep(0.05 + CHECK_SECONDS + 0.1)
    assert tasks[0].cancelled()  # past its deadline
    assert not tasks[1].done()
    assert deadlines.leave(tasks[0])
    assert not deadlines.leave(tasks[1])  # left in time: not cancelled
    await asyncio.sleep(CHECK_SECONDS + 0.05)
    assert not deadlines.checking  # nothing runs: no timer

    deadlines.enter(tasks[1], loop.time() + 60)
    deadlines.enter(tasks[2], loop.time() + 60)
    deadlines.expire_all()  # the drain's cut: everything running, at once
    await asyncio.sleep(0)
    assert tasks[1].cancelled()
    assert tasks[2].cancelled()
    assert deadlines.leave(tasks[1])
    assert deadlines.leave(tasks[2])


def test_deadlines_are_checked_on_the_event_loop_that_runs_now() -> None:
    """A timer left on a loop that has ended does not keep a new loop's requests unchecked."""
    deadlines = Deadlines()

    async def on_a_first_loop() -> None:
        task = asyncio.current_task()
        assert task is not None
        deadlines.enter(task, asyncio.get_running_loop().time() + 60)
        deadlines.leave(task)  # the loop ends with the timer still pending

    async def on_a_second_loop() -> None:
        waiting = asyncio.create_task(asyncio.Event().wait())
        deadlines.enter(waiting, asyncio.get_running_loop().time() + 0.05)
        await asyncio.sleep(0.05 + CHECK_SECONDS + 0.1)
        assert waiting.cancelled()
        assert deadlines.leave(waiting)

    asyncio.run(on_a_first_loop())
    asyncio.run(on_a_second_loop())


# -- the application, over the real database -----------------------------------------------


def record(settings: Settings, state: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "server.json").write_text(
        json.dumps({"uri": settings.mongodb_uri, "pid": 1, "state": state})
    )


@pytest.mark.parametrize(
    ("state", "healthz", "detail"),
    [("restarting", 200, "the database is restarting"), ("failed", 503, "the database failed")],
)
async def test_requests_are_refused_at_once_while_the_database_is_known_down(
    settings: Settings, state: str, healthz: int, detail: str
) -> None:
    record(settings, state)
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_of(app) as http:
        listing = await http.get("/v1/personas")
        query = await http.post("/graphql", json={"query": "{ personas { totalCount } }"})
        ready = await http.get("/readyz")
        health = await http.get("/healthz")
        await app.state.store.drop_database()

    assert listing.status_code == 503
    assert listing.headers["retry-after"] == "1"
    assert detail in listing.json()["detail"]
    assert query.status_code == 503
    assert query.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": state}
    assert health.status_code == healthz


async def test_a_record_of_another_database_or_a_running_one_changes_nothing(
    settings: Settings,
) -> None:
    record(settings, "running")
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_of(app) as http:
        assert (await http.get("/v1/personas")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        (settings.data_dir / "server.json").write_text(
            json.dumps({"uri": "mongodb://elsewhere:1", "state": "failed"})
        )
        await asyncio.sleep(0.15)  # the record is re-read at most every 0.1 s
        assert (await http.get("/v1/personas")).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
        record(settings, "restarting")
        await asyncio.sleep(0.15)
        assert (await http.get("/v1/personas")).status_code == 503
        await app.state.store.drop_database()


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    """A database of its own, to be frozen with SIGSTOP (and thawed afterwards)."""
    database = EmbeddedDatabase(tmp_path / "frozen", stop_grace=2)
    database.start()
    try:
        yield database
    finally:
        if database.pid is not None:
            os.kill(database.pid, signal.SIGCONT)
        database.stop()


async def test_every_request_ends_within_the_limit_while_the_database_hangs(
    frozen: EmbeddedDatabase, settings: Settings
) -> None:
    assert frozen.uri is not None
    assert frozen.pid is not None
    limit = 0.5
    app = create_app(settings.replace(mongodb_uri=frozen.uri, db_timeout_ms=int(limit * 1000)))
    async with app.router.lifespan_context(app), client_of(app) as http:
        key = generate_key()
        await app.state.store.keys.create(key.id, key.secret_hash, "acme", ALL_SCOPES, None)
        http.headers["authorization"] = f"Bearer {key.token}"
        created = await http.post("/v1/personas", json={"name": "Before", "content": "Frozen."})
        assert created.status_code == 201  # the key is known now: requests reach the store
        persona = f"/v1/personas/{created.json()['id']}"
        os.kill(frozen.pid, signal.SIGSTOP)
        requests = [
            http.get("/v1/personas"),
            http.get(persona),
            http.post("/v1/personas", json={"name": "During", "content": "Frozen."}),
            http.put(persona, json={"name": "During"}),
            http.patch(
                persona,
                content=b'{"name": "During"}',
                headers={"content-type": "application/merge-patch+json"},
            ),
            http.delete(persona),
            http.get("/readyz"),
        ]
        for request in requests:
            started = time.monotonic()
            response = await request
            assert time.monotonic() - started < limit + MARGIN_SECONDS + SLACK
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
        started = time.monotonic()
        mutation = await http.post(
            "/graphql",
            json={
                "query": "mutation($i: CreatePersonaInput!) { createPersona(input: $i) { id } }",
                "variables": {"i": {"name": "During", "content": "Frozen."}},
            },
        )
        assert time.monotonic() - started < limit + MARGIN_SECONDS + SLACK
        assert mutation.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"


@pytest.fixture
async def silent_store(silent_server: str) -> AsyncIterator[PersonaStore]:
    store = PersonaStore.connect(silent_server, "silent", 300)
    yield store
    await store.close()


async def test_a_database_that_never_answers_is_unavailable_within_the_limit(
    silent_store: PersonaStore,
) -> None:
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: silent_store.create(ACME, NewPersona("One", "Never stored.", None)),
        lambda: silent_store.get(ACME, "6790a3c2e4b0a1f2c3d4e5f6"),
        lambda: silent_store.keys.any(),
    ]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await operation()
        assert time.monotonic() - started < 0.3 + SLACK
    assert not await silent_store.ping()


async def test_the_application_starts_while_its_database_is_unavailable(
    silent_server: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings.replace(mongodb_uri=silent_server, db_timeout_ms=300))
    async with app.router.lifespan_context(app), client_of(app) as http:
        response = await http.get("/v1/personas")
        ready = await http.get("/readyz")
    assert response.status_code == 503
    assert ready.status_code == 503
    assert "preparing it once it answers" in caplog.text
