"""Webhooks: refusals, signed deliveries to a local receiver, retries with growing delays,
disabling, rotation, several workers, and a delivery that outlives a killed server."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook
from starlette.applications import Starlette

from personas.app import create_app
from personas.domain import ALL_SCOPES, PersonaChanges, Principal, new_persona
from personas.domain.webhooks import DeliveryStatus
from personas.notifications import egress, services, signing
from personas.settings import Settings
from personas.store import PersonaStore
from tests.conftest import GraphQLClient, issue_key, keyed_client, problem
from tests.realtime import Receiver, serving, until

CREATE = """
mutation($url: String!, $types: [PersonaEventType!], $filter: [MetadataFilter!],
         $label: String) {
  createWebhook(url: $url, types: $types, metadataFilter: $filter, label: $label) {
    id url types metadataFilter label secret createdAt disabledReason
  }
}
"""
WEBHOOKS = "{ webhooks { id url secret disabledReason disabledAt } }"
DELIVERIES = """
query($id: ID!) {
  webhookDeliveries(webhookId: $id) {
    nodes { id eventId type status nextAttemptAt attempts { at statusCode durationMs error } }
  }
}
"""
ROTATE = "mutation($id: ID!) { rotateWebhookSecret(id: $id) { id secret } }"
DELETE = "mutation($id: ID!) { deleteWebhook(id: $id) }"
ACME = Principal("acme", ALL_SCOPES, "writer")
ADMIN = Principal("acme", frozenset({"admin"}), "admin")


def store_of(app: Starlette) -> PersonaStore:
    found: PersonaStore = app.state.store
    return found


@pytest.fixture
def hooked(settings: Settings) -> Settings:
    return settings.replace(
        auth="required", webhook_allow_loopback=True, webhook_retry_base=0.2, webhook_timeout=2.0
    )


@pytest.fixture
async def started(hooked: Settings) -> AsyncIterator[Starlette]:
    app = create_app(hooked)
    async with app.router.lifespan_context(app):
        yield app
        await store_of(app).drop_database()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    endpoint = Receiver()
    async with serving(endpoint.app()) as port:
        yield endpoint, f"http://127.0.0.1:{port}/hook"


async def admin_client(app: Starlette) -> GraphQLClient:
    _, token = await issue_key(store_of(app), "acme", "admin", "read")
    return GraphQLClient(keyed_client(app, token))


async def settled(admin: GraphQLClient, webhook_id: str, count: int) -> list[dict[str, Any]]:
    """A webhook's deliveries once `count` of them are no longer pending."""
    for _ in range(200):
        found = await admin.data(DELIVERIES, {"id": webhook_id})
        nodes: list[dict[str, Any]] = found["webhookDeliveries"]["nodes"]
        if len(nodes) == count and all(node["status"] != "PENDING" for node in nodes):
            return nodes
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries still pending: {nodes}")


def verified(secret: str, received: Any) -> dict[str, Any]:
    """The payload of a delivery whose signature verifies (Standard Webhooks' own check)."""
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


def test_signatures_match_the_specifications_published_example() -> None:
    headers = signing.headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        '{"test": 2432232314}',
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"


async def test_bad_webhooks_are_refused_and_nothing_is_registered(started: Starlette) -> None:
    admin = await admin_client(started)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"url": "http://example.com/hook"}, "url", "https"),
        ({"url": "ftp://example.com/hook"}, "url", "https"),
        ({"url": "not a url"}, "url", "spaces"),
        ({"url": "https://10.1.2.3/hook"}, "url", "private"),
        ({"url": "https://192.168.0.10/hook"}, "url", "private"),
        ({"url": "https://169.254.169.254/latest"}, "url", "link-local"),
        ({"url": "https://[::ffff:10.0.0.1]/hook"}, "url", "private"),
        ({"url": "https://user:secret@example.com/hook"}, "url", "credentials"),
        ({"url": "https://example.com/hook#part"}, "url", "fragment"),
        ({"url": "https://example.com:99999/"}, "url", "not a valid URL"),
        (
            {"url": "https://example.com/h", "filter": [{"path": "$where", "value": 1}]},
            "metadataFilter.0",
            "$",
        ),
        ({"url": "https://example.com/h", "label": "Prod!"}, "label", "a label is"),
        ({"url": "https://example.com/h", "types": []}, "types", "at least one"),
        (
            {"url": "https://example.com/h", "label": "production", "types": ["CREATED"]},
            "label",
            "LABEL_MOVED",
        ),
    ]
    for variables, field, message in cases:
        error = await admin.error(CREATE, variables)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (variables, error)
        assert error["extensions"]["field"] == field, (variables, error)
        assert message in error["message"], (variables, error)
    assert (await admin.data(WEBHOOKS))["webhooks"] == []


async def test_loopback_needs_the_setting_and_admin_needs_its_scope(
    settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    app = create_app(settings.replace(auth="required"))
    async with app.router.lifespan_context(app):
        admin = await admin_client(app)
        for target in (url, "https://localhost/hook", "https://127.0.0.1/hook"):
            error = await admin.error(CREATE, {"url": target})
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            assert "loopback" in error["message"] or "https" in error["message"], error
        _, token = await issue_key(store_of(app), "acme", "read", "write")
        writer = GraphQLClient(keyed_client(app, token))
        error = await writer.error(CREATE, {"url": "https://example.com/hook"})
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert (await writer.error(WEBHOOKS))["extensions"]["code"] == "FORBIDDEN"
        assert (await admin.data(WEBHOOKS))["webhooks"] == []
        await store_of(app).drop_database()


async def test_deliveries_are_signed_filtered_and_listed(
    started: Starlette, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    store = store_of(started)
    admin = await admin_client(started)
    created = (
        await admin.data(CREATE, {"url": url, "filter": [{"path": "tags", "value": "prod"}]})
    )["createWebhook"]
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["types"] == ["CREATED", "UPDATED", "DELETED", "LABEL_MOVED"]
    assert created["metadataFilter"] == [{"path": "tags", "op": "EQ", "value": "prod"}]
    listed = (await admin.data(WEBHOOKS))["webhooks"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert listed[0]["secret"] is None  # shown only when created

    prod = await store.create(ACME, new_persona("P", "p", {"tags": ["prod"]}))
    await store.create(ACME, new_persona("D", "d", {"tags": ["dev"]}))
    await store.create(Principal("other", ALL_SCOPES), new_persona("O", "o", {"tags": ["prod"]}))
    await store.update(ACME, prod.id, PersonaChanges(content="p2"))
    await until(lambda: len(endpoint.received) >= 2)

    payloads = [verified(secret, item) for item in endpoint.received]
    # Deliveries to one endpoint may go out side by side: compare without their order.
    assert sorted((item["type"], item["data"]["persona_id"]) for item in payloads) == [
        ("persona.created", prod.id),
        ("persona.updated", prod.id),
    ]
    updated = next(item for item in payloads if item["type"] == "persona.updated")
    assert updated["data"]["persona"]["content"] == "p2"
    assert updated["data"]["persona"]["metadata"] == {"tags": ["prod"]}
    headers = endpoint.received[0].headers
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300

    nodes = await settled(admin, created["id"], 2)
    for node in nodes:
        assert node["status"] == "DELIVERED"
        assert node["nextAttemptAt"] is None
        (attempt,) = node["attempts"]
        assert attempt["statusCode"] == 204
        assert attempt["error"] is None
        assert attempt["durationMs"] >= 0
    ids = {item.headers["webhook-id"] for item in endpoint.received}
    assert ids == {f"msg_{node['id']}" for node in nodes}

    rotated = (await admin.data(ROTATE, {"id": created["id"]}))["rotateWebhookSecret"]
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != secret
    await store.update(ACME, prod.id, PersonaChanges(content="p3"))
    await until(lambda: len(endpoint.received) == 3)
    latest = endpoint.received[2]
    assert len(latest.headers["webhook-signature"].split(" ")) == 2
    assert verified(rotated["secret"], latest)["data"]["persona"]["content"] == "p3"
    assert verified(secret, latest)  # the old secret still verifies during the grace period

    assert (await admin.data(DELETE, {"id": created["id"]}))["deleteWebhook"] == created["id"]
    await store.update(ACME, prod.id, PersonaChanges(content="p4"))
    assert (await admin.data(WEBHOOKS))["webhooks"] == []
    error = await admin.error(DELIVERIES, {"id": created["id"]})
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_a_failing_receiver_gets_retries_with_growing_delays(
    started: Starlette, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    endpoint.status = 500
    store = store_of(started)
    admin = await admin_client(started)
    hook = (await admin.data(CREATE, {"url": url, "types": ["CREATED"]}))["createWebhook"]
    await store.create(ACME, new_persona("P", "p"))
    await until(lambda: len(endpoint.received) >= 4)
    endpoint.status = 200
    await until(lambda: len(endpoint.received) >= 5)

    gaps = [b.at - a.at for a, b in itertools.pairwise(endpoint.received)]
    for index, gap in enumerate(gaps[:4]):
        assert gap >= 0.2 * 2**index * 0.9, gaps  # never sooner than the backoff says
    assert len({item.headers["webhook-id"] for item in endpoint.received}) == 1
    assert len({item.body for item in endpoint.received}) == 1

    (node,) = await settled(admin, hook["id"], 1)
    assert node["status"] == "DELIVERED"
    attempts = node["attempts"]
    assert [item["statusCode"] for item in attempts[:4]] == [500] * 4
    assert all("HTTP 500" in item["error"] for item in attempts[:4])
    assert attempts[-1]["statusCode"] == 200
    assert attempts[-1]["error"] is None
    starts = [datetime.fromisoformat(item["at"]) for item in attempts]
    waits = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert all(later > earlier for earlier, later in itertools.pairwise(waits)), waits


async def test_redirects_are_not_followed_and_attempts_have_a_time_limit(
    hooked: Settings, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    endpoint.status = 307
    endpoint.location = url.replace("/hook", "/elsewhere")
    app = create_app(hooked.replace(webhook_timeout=0.5))
    async with app.router.lifespan_context(app):
        admin = await admin_client(app)
        hook = (await admin.data(CREATE, {"url": url}))["createWebhook"]
        await store_of(app).create(ACME, new_persona("P", "p"))
        await until(lambda: len(endpoint.received) >= 1)
        endpoint.status, endpoint.location, endpoint.delay = 204, None, 2.0
        await until(lambda: len(endpoint.received) >= 2)
        endpoint.delay = 0.0
        (node,) = await settled(admin, hook["id"], 1)
        redirected, slow, *_ = node["attempts"]
        assert redirected["statusCode"] == 307
        assert "redirects are not followed" in redirected["error"]
        assert endpoint.elsewhere == 0
        assert slow["statusCode"] is None
        assert slow["error"] == "no answer within 0.5 s"
        assert node["status"] == "DELIVERED"
        await store_of(app).drop_database()


async def test_an_endpoint_that_keeps_failing_is_disabled_with_the_reason(
    hooked: Settings, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    endpoint.status = 503
    app = create_app(hooked.replace(webhook_retry_for=0.5, webhook_retry_base=0.1))
    async with app.router.lifespan_context(app):
        store = store_of(app)
        admin = await admin_client(app)
        hook = (await admin.data(CREATE, {"url": url}))["createWebhook"]
        await store.create(ACME, new_persona("P", "p"))

        async def listed() -> dict[str, Any]:
            found: dict[str, Any] = (await admin.data(WEBHOOKS))["webhooks"][0]
            return found

        for _ in range(100):
            if (await listed())["disabledReason"]:
                break
            await asyncio.sleep(0.05)
        found = await listed()
        assert found["disabledAt"] is not None
        assert "failed" in found["disabledReason"]
        assert "HTTP 503" in found["disabledReason"]
        nodes = (await admin.data(DELIVERIES, {"id": hook["id"]}))["webhookDeliveries"]["nodes"]
        assert [node["status"] for node in nodes] == ["FAILED"]
        attempts = len(endpoint.received)
        assert attempts >= 2
        await store.create(ACME, new_persona("Q", "q"))
        await asyncio.sleep(0.5)
        assert len(endpoint.received) == attempts  # nothing more goes to a disabled endpoint
        await store.drop_database()


async def test_two_workers_deliver_each_event_once(
    hooked: Settings, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    first, second = create_app(hooked), create_app(hooked)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        store = store_of(first)
        await services.create_webhook(store, ADMIN, url, None, [], None, allow_loopback=True)
        writers = [store_of(first), store_of(second)]
        for index in range(20):
            await writers[index % 2].create(ACME, new_persona(f"P{index}", "p"))
        await until(lambda: len(endpoint.received) >= 20)
        await asyncio.sleep(0.5)  # time for any second attempt to show
        ids = [item.headers["webhook-id"] for item in endpoint.received]
        assert len(ids) == 20
        assert len(set(ids)) == 20
        events = {orjson.loads(item.body)["data"]["id"] for item in endpoint.received}
        assert events == {str(seq) for seq in range(1, 21)}
        await store.drop_database()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "MONGODB_URI": settings.mongodb_uri or "",
        "PERSONAS_DB_NAME": settings.db_name,
        "PERSONAS_WEBHOOK_ALLOW_LOOPBACK": "true",
        "PERSONAS_WEBHOOK_RETRY_BASE": "0.3",
        "PERSONAS_WEBHOOK_TIMEOUT": "2",
        "PERSONAS_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "personas", "serve", "--port", str(port)]
    return subprocess.Popen(
        command, env=environment, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


async def _ready(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            assert process.poll() is None, "the server stopped"
            try:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the server did not start")


@pytest.fixture
async def bare_store(settings: Settings) -> AsyncIterator[PersonaStore]:
    """A store with no application around it: no delivery worker of this process competes
    with the server's."""
    assert settings.mongodb_uri is not None
    found = PersonaStore.connect(settings.mongodb_uri, settings.db_name, settings.db_timeout_ms)
    await found.prepare()
    yield found
    await found.drop_database()
    await found.close()


async def test_a_delivery_pending_when_the_server_is_killed_is_delivered_after_restart(
    settings: Settings, bare_store: PersonaStore, tmp_path: Path
) -> None:
    store = bare_store
    receiver_port, server_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{receiver_port}/hook"
    hook = await services.create_webhook(store, ADMIN, url, None, [], None, allow_loopback=True)
    assert hook.secret is not None
    log = tmp_path / "server.log"
    server = _serve(settings, server_port, log)
    try:
        await _ready(server_port, server)
        persona = await store.create(ACME, new_persona("P", "p"))
        # Nobody listens at the receiver's port yet: the attempt fails and is retried.
        for _ in range(200):
            page = await store.webhooks.deliveries(ADMIN, hook.id, 10)
            if page.items and page.items[0].attempts:
                break
            await asyncio.sleep(0.05)
        (pending,) = page.items
        assert pending.status is DeliveryStatus.PENDING
        assert pending.attempts[0].status_code is None
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)

    endpoint = Receiver()
    async with serving_on(endpoint, receiver_port):
        await asyncio.sleep(0.5)
        assert endpoint.received == []  # no server runs: nothing is delivered
        server = _serve(settings, server_port, log)
        try:
            await _ready(server_port, server)
            try:
                await until(lambda: len(endpoint.received) >= 1, seconds=30)
            except AssertionError:
                state = await store.webhooks.deliveries(ADMIN, hook.id, 10)
                raise AssertionError(f"not delivered: {state}; {log.read_text()[-2000:]}") from None
        finally:
            server.terminate()
            server.wait(10)
    (received,) = endpoint.received
    assert received.headers["webhook-id"] == f"msg_{pending.id}"
    payload = verified(hook.secret, received)
    assert payload["data"]["persona_id"] == persona.id
    (done,) = (await store.webhooks.deliveries(ADMIN, hook.id, 10)).items
    assert done.status is DeliveryStatus.DELIVERED


class serving_on:
    """A receiver served on a given port."""

    def __init__(self, endpoint: Receiver, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(endpoint.app(), host="127.0.0.1", port=port, log_level="warning")
        )

    async def __aenter__(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        await until(lambda: self.server.started)

    async def __aexit__(self, *_: object) -> None:
        self.server.should_exit = True
        await self.task


async def test_deliveries_reach_only_addresses_webhooks_may() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        async with egress.client(allow_loopback=False, timeout=2) as http:
            with pytest.raises(egress.RefusedAddress, match="loopback"):
                await http.post(f"http://127.0.0.1:{port}/hook")
            with pytest.raises(egress.RefusedAddress, match="loopback"):
                await http.post(f"http://localhost:{port}/hook")
        async with egress.client(allow_loopback=True, timeout=2) as http:
            with pytest.raises(egress.RefusedAddress, match="private"):
                await http.post("http://10.255.255.1/hook")


async def test_rest_webhooks(started: Starlette, receiver: tuple[Receiver, str]) -> None:
    endpoint, url = receiver
    _, token = await issue_key(store_of(started), "acme", "admin")
    async with keyed_client(started, token) as http:
        response = await http.post(
            "/v1/webhooks",
            json={
                "url": url,
                "types": ["persona.created"],
                "metadata_filter": [{"path": "tags", "op": "eq", "value": "prod"}],
            },
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert response.headers["location"] == f"/v1/webhooks/{created['id']}"
        assert created["secret"].startswith("whsec_")
        assert created["types"] == ["persona.created"]
        assert created["metadata_filter"] == [{"path": "tags", "op": "eq", "value": "prod"}]

        listed = (await http.get("/v1/webhooks")).json()["data"]
        assert [item["secret"] for item in listed] == [None]
        one = await http.get(f"/v1/webhooks/{created['id']}")
        assert one.json()["url"] == url

        await store_of(started).create(ACME, new_persona("P", "p", {"tags": ["prod"]}))
        await until(lambda: len(endpoint.received) == 1)
        for _ in range(50):
            deliveries = (await http.get(f"/v1/webhooks/{created['id']}/deliveries")).json()
            if deliveries["data"][0]["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
        assert deliveries["data"][0]["status"] == "delivered"
        assert deliveries["data"][0]["attempts"][0]["status_code"] == 204
        assert deliveries["next_cursor"] is None

        rotated = await http.post(f"/v1/webhooks/{created['id']}/rotate-secret")
        assert rotated.status_code == 200
        assert rotated.json()["secret"] != created["secret"]

        await problem(await http.post("/v1/webhooks", json={"url": "http://10.0.0.1/"}), 400, "url")
        await problem(
            await http.post("/v1/webhooks", json={"url": url, "types": ["persona.renamed"]}),
            400,
            "types.0",
        )
        await problem(
            await http.post(
                "/v1/webhooks", json={"url": url, "metadata_filter": [{"path": "a", "op": "is"}]}
            ),
            400,
            "metadata_filter.0.op",
        )
        await problem(await http.post("/v1/webhooks", json={"url": url, "secret": "x"}), 400)
        await problem(await http.get("/v1/webhooks/nope"), 400, "id")
        await problem(await http.get(f"/v1/webhooks/{'0' * 24}"), 404)
        assert (await http.delete(f"/v1/webhooks/{created['id']}")).status_code == 204
        await problem(await http.delete(f"/v1/webhooks/{created['id']}"), 404)
        assert (await http.get("/v1/webhooks")).json()["data"] == []

    _, reader = await issue_key(store_of(started), "acme", "read", "write")
    async with keyed_client(started, reader) as http:
        await problem(await http.get("/v1/webhooks"), 403)
        await problem(await http.post("/v1/webhooks", json={"url": url}), 403)
