"""GraphQL subscriptions over graphql-transport-ws, served by a real uvicorn: filters, order,
tenants, resuming with `after`, several server instances, limits and slow readers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette

from personas import domain
from personas.app import create_app
from personas.domain import ALL_SCOPES, PersonaChanges, Principal, new_persona
from personas.notifications.hub import EventHub, Mailbox
from personas.settings import Settings
from personas.store import PersonaStore
from tests.conftest import GraphQLClient, issue_key
from tests.realtime import PROTOCOL, Subscriber, serving, until

EVENTS = """
subscription($filter: [MetadataFilter!], $types: [PersonaEventType!], $label: String,
             $after: ID) {
  personaEvents(metadataFilter: $filter, types: $types, label: $label, after: $after) {
    id type personaId version actor at
    persona { personaId version name content metadata operation }
    label { name version setBy }
    labelMove { label fromVersion toVersion }
  }
}
"""
ACME = Principal("acme", ALL_SCOPES, "writer")
OTHER = Principal("other", ALL_SCOPES, "intruder")


def hub(app: Starlette) -> EventHub:
    found: EventHub = app.state.notifications.hub
    return found


def store_of(app: Starlette) -> PersonaStore:
    found: PersonaStore = app.state.store
    return found


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[Starlette, int]]:
    """An app requiring API keys, served by uvicorn on loopback."""
    app = create_app(settings.replace(auth="required"))
    async with serving(app) as port:
        yield app, port
        await store_of(app).drop_database()


async def drain(subscriber: Subscriber) -> int:
    """Read until the server closes the connection: how many messages came."""
    received = 0
    try:
        while True:
            await subscriber.receive()
            received += 1
    except websockets.ConnectionClosed:
        return received


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(event["type"], event["personaId"], event["version"]) for event in events]


async def errors_of(subscriber: Subscriber) -> list[dict[str, Any]]:
    """The errors a refused subscription answers (before execution: an `error` message;
    raised by the subscription: a `next` with errors)."""
    message = await subscriber.receive()
    if message["type"] == "error":
        found: list[dict[str, Any]] = message["payload"]
        return found
    assert message["type"] == "next", message
    errors: list[dict[str, Any]] = message["payload"]["errors"]
    return errors


async def test_a_filtered_subscriber_gets_exactly_its_tenants_matching_events_in_order(
    served: tuple[Starlette, int],
) -> None:
    app, port = served
    store = store_of(app)
    _, reader = await issue_key(store, "acme", "read")
    async with Subscriber.connect(port, reader) as subscriber:
        await subscriber.subscribe(EVENTS, {"filter": [{"path": "tags", "value": "prod"}]})
        await until(lambda: hub(app).listening("acme") == 1)

        a = await store.create(ACME, new_persona("A", "a", {"tags": ["prod"], "team": "x"}))
        b = await store.create(ACME, new_persona("B", "b", {"tags": ["dev"]}))
        await store.create(OTHER, new_persona("C", "c", {"tags": ["prod"]}))
        await store.add_tags(ACME, b.id, ["prod"])
        await store.update(ACME, a.id, PersonaChanges(content="a, edited"))
        await store.remove_tags(ACME, b.id, ["prod"])
        await store.labels.set(ACME, a.id, "staging", 1)
        await store.delete(ACME, a.id)
        other = await store.create(OTHER, new_persona("D", "d", {"tags": ["prod"]}))
        await store.update(OTHER, other.id, PersonaChanges(name="D2"))
        last = await store.create(ACME, new_persona("S", "s", {"tags": ["prod"]}))

        events = await subscriber.events(7)

    assert summary(events) == [
        ("CREATED", a.id, 1),
        ("UPDATED", b.id, 2),
        ("UPDATED", a.id, 2),
        ("LABEL_MOVED", a.id, 1),
        ("DELETED", a.id, 3),
        ("LABEL_MOVED", a.id, 1),  # the deletion takes the label off
        ("CREATED", last.id, 1),
    ]
    ids = [int(event["id"]) for event in events]
    assert ids == [1, 3, 4, 6, 7, 8, 9]  # acme's own numbering: other tenants' are apart
    assert {event["actor"] for event in events} == {"writer"}
    assert events[2]["persona"]["content"] == "a, edited"
    assert events[3]["label"] == {"name": "staging", "version": 1, "setBy": "writer"}
    assert events[3]["labelMove"] == {"label": "staging", "fromVersion": None, "toVersion": 1}
    deleted = events[4]["persona"]
    assert deleted["operation"] == "DELETE"
    assert deleted["metadata"] == {"tags": ["prod"], "team": "x"}  # as it was
    assert events[5]["label"] is None
    assert events[5]["labelMove"] == {"label": "staging", "fromVersion": 1, "toVersion": None}


async def test_types_and_label_select_events(served: tuple[Starlette, int]) -> None:
    app, port = served
    store = store_of(app)
    _, reader = await issue_key(store, "acme", "read")
    persona = await store.create(ACME, new_persona("P", "p", {"tags": ["prod"]}))
    async with (
        Subscriber.connect(port, reader) as production,
        Subscriber.connect(port, reader) as deletions,
    ):
        await production.subscribe(EVENTS, {"label": "production"})
        await deletions.subscribe(EVENTS, {"types": ["DELETED", "CREATED"]})
        await until(lambda: hub(app).listening("acme") == 2)
        await store.update(ACME, persona.id, PersonaChanges(content="v2"))
        await store.labels.set(ACME, persona.id, "staging", 2)
        await store.labels.set(ACME, persona.id, "production", 1)
        await store.labels.set(ACME, persona.id, "production", 2, from_version=1)
        await store.delete(ACME, persona.id)
        moves = await production.events(3)
        removed = await deletions.events(1)
        sentinel = await store.create(ACME, new_persona("Q", "q"))
        created = await deletions.events(1)
    assert [event["labelMove"] for event in moves] == [
        {"label": "production", "fromVersion": None, "toVersion": 1},
        {"label": "production", "fromVersion": 1, "toVersion": 2},
        {"label": "production", "fromVersion": 2, "toVersion": None},
    ]
    assert summary(removed + created) == [
        ("DELETED", persona.id, 3),
        ("CREATED", sentinel.id, 1),
    ]


async def test_resuming_after_an_event_loses_and_doubles_nothing(
    served: tuple[Starlette, int],
) -> None:
    app, port = served
    store = store_of(app)
    _, reader = await issue_key(store, "acme", "read")
    persona = await store.create(ACME, new_persona("P", "p"))
    async with Subscriber.connect(port, reader) as subscriber:
        await subscriber.subscribe(EVENTS)
        await until(lambda: hub(app).listening("acme") == 1)
        for index in range(3):
            await store.update(ACME, persona.id, PersonaChanges(content=f"seen {index}"))
        seen = await subscriber.events(3)
    await until(lambda: hub(app).listening("acme") == 0)
    for index in range(5):  # while nobody listens
        await store.update(ACME, persona.id, PersonaChanges(content=f"missed {index}"))

    async def write_meanwhile() -> None:
        for index in range(40):
            await store.update(ACME, persona.id, PersonaChanges(content=f"during {index}"))

    async with Subscriber.connect(port, reader) as subscriber:
        await subscriber.subscribe(EVENTS, {"after": seen[-1]["id"]})
        writer = asyncio.create_task(write_meanwhile())  # across the replay-to-live switch
        resumed = await subscriber.events(45)
        await writer
        sentinel = await store.create(ACME, new_persona("S", "s"))
        (following,) = await subscriber.events(1)

    ids = [int(event["id"]) for event in seen + resumed]
    assert ids == list(range(ids[0], ids[0] + 48))
    assert [event["persona"]["content"] for event in resumed] == [
        *(f"missed {index}" for index in range(5)),
        *(f"during {index}" for index in range(40)),
    ]
    assert following["personaId"] == sentinel.id
    assert int(following["id"]) == ids[-1] + 1


async def test_two_server_instances_one_subscriber_each_event_once(
    served: tuple[Starlette, int], settings: Settings
) -> None:
    app, port = served
    _, reader = await issue_key(store_of(app), "acme", "read")
    _, writer = await issue_key(store_of(app), "acme", "read", "write")
    second = create_app(settings.replace(auth="required"))
    async with (
        second.router.lifespan_context(second),
        Subscriber.connect(port, reader) as subscriber,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as first_http,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=second), base_url="http://second"
        ) as second_http,
    ):
        await subscriber.subscribe(EVENTS)
        await until(lambda: hub(app).listening("acme") == 1)
        headers = {"Authorization": f"Bearer {writer}"}
        created = []
        for index in range(10):
            http = first_http if index % 2 else second_http
            response = await http.post(
                "/v1/personas", json={"name": f"n{index}", "content": "c"}, headers=headers
            )
            assert response.status_code == 201, response.text
            created.append(response.json()["id"])
        events = await subscriber.events(10)
        sentinel = await store_of(second).create(ACME, new_persona("S", "s"))
        (following,) = await subscriber.events(1)
    assert [event["personaId"] for event in events] == created
    assert following["personaId"] == sentinel.id


async def test_refused_subscriptions_say_why(served: tuple[Starlette, int]) -> None:
    app, port = served
    store = store_of(app)
    _, reader = await issue_key(store, "acme", "read")
    _, writer = await issue_key(store, "acme", "write")
    await store.create(ACME, new_persona("P", "p"))
    cases: list[tuple[str | None, dict[str, Any], str | None, str | None]] = [
        (reader, {"after": "999"}, "BAD_USER_INPUT", "there is no event 999"),
        (reader, {"after": "first"}, "BAD_USER_INPUT", "not an event id"),
        (reader, {"filter": [{"path": "$where", "value": 1}]}, "BAD_USER_INPUT", None),
        (reader, {"label": "Not A Label"}, "BAD_USER_INPUT", "a label is"),
        (reader, {"label": "production", "types": ["CREATED"]}, "BAD_USER_INPUT", "LABEL_MOVED"),
        (reader, {"types": []}, "BAD_USER_INPUT", "at least one event type"),
        (reader, {"types": ["RENAMED"]}, None, "'RENAMED' does not exist"),
        (writer, {}, "FORBIDDEN", "'read' scope"),
    ]
    for token, variables, code, message in cases:
        async with Subscriber.connect(port, token) as subscriber:
            await subscriber.subscribe(EVENTS, variables)
            errors = await errors_of(subscriber)
        assert code is None or errors[0]["extensions"]["code"] == code, (variables, errors)
        assert message is None or message in errors[0]["message"], errors
    assert hub(app).listening("acme") == 0


async def test_connection_init_needs_a_valid_key(served: tuple[Starlette, int]) -> None:
    _, port = served
    for payload in ({}, {"Authorization": "Bearer pk_nope_nope"}, {"Authorization": 7}):
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/graphql", subprotocols=[PROTOCOL]
        ) as connection:
            await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(connection.recv(), 10)
            assert connection.close_code == 4403, payload


async def test_subscriptions_per_connection_and_per_key_are_limited(settings: Settings) -> None:
    app = create_app(
        settings.replace(auth="required", subscriptions_per_connection=2, subscriptions_per_key=3)
    )
    async with serving(app) as port:
        store = store_of(app)
        _, reader = await issue_key(store, "acme", "read")
        async with Subscriber.connect(port, reader) as first:
            await first.subscribe(EVENTS, operation="a")
            await first.subscribe(EVENTS, operation="b")
            await first.subscribe(EVENTS, operation="c")
            refused = await first.receive()
            assert refused["type"] == "error"
            assert refused["id"] == "c"
            assert "limit" in refused["payload"][0]["message"]
            async with Subscriber.connect(port, reader) as second:
                await second.subscribe(EVENTS, operation="d")
                await until(lambda: hub(app).listening("acme") == 3)
                await second.subscribe(EVENTS, operation="e")
                errors = await errors_of(second)
                assert errors[0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        await store.drop_database()


async def test_a_reader_that_stops_reading_is_disconnected(settings: Settings) -> None:
    app = create_app(settings.replace(auth="required", subscription_buffer=5))
    async with serving(app) as port:
        store = store_of(app)
        _, reader = await issue_key(store, "acme", "read")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        async with Subscriber.connect(
            port, reader, sock=sock, max_queue=1, compression=None
        ) as subscriber:
            await subscriber.subscribe(EVENTS)
            await until(lambda: hub(app).listening("acme") == 1)
            content = "x" * domain.CONTENT_MAX
            created = 0
            while not hub(app).lagging("acme"):  # the socket's buffers fill, then the box
                assert created < 300, "the subscriber never fell behind"
                await store.create(ACME, new_persona(f"P{created}", content))
                created += 1
            # Nothing more is kept for it; once it reads again, what was on the way comes,
            # then the close.
            received = await drain(subscriber)
            assert subscriber.connection.close_code == 4008
            reason = subscriber.connection.close_reason or ""
            assert "too slow" in reason
            assert "resume with after" in reason
            assert received < created
        await until(lambda: hub(app).listening("acme") == 0)
        await store.drop_database()


async def test_subscriptions_need_a_websocket(gql: GraphQLClient) -> None:
    error = await gql.error(EVENTS)
    assert "WebSocket" in error["message"] or "not allowed" in error["message"], error


async def test_a_consumer_whose_cancellation_was_swallowed_stops_at_its_next_wait() -> None:
    """A database call that is cancelled may answer as if it was not (the driver's own
    retries): the consumer, waiting for its mailbox next, must stop there, not sleep on."""
    box = Mailbox(None, capacity=10)
    reached_wait = asyncio.Event()

    async def consumer() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as a driver call may
            await asyncio.sleep(30)  # a database call
        reached_wait.set()
        await box.wait(30)

    task = asyncio.create_task(consumer())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert reached_wait.is_set()
    assert done == {task}, "the consumer went on waiting after its cancellation"
    assert task.cancelled()
