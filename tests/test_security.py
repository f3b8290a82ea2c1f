"""API keys, tenant isolation and hardening: every bad input refused, none writes anything."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from starlette.applications import Starlette

from personas.app import anonymous_allowed, create_app
from personas.auth import Authenticator, generate_key
from personas.settings import Settings
from personas.store import PersonaStore

FIELDS = "id name metadata version"
CREATE = f"mutation($i: CreatePersonaInput!) {{ createPersona(input: $i) {{ {FIELDS} }} }}"
GET = f"query($id: ID!) {{ persona(id: $id) {{ {FIELDS} }} }}"
LIST = f"""
query($f: [MetadataFilter!]) {{
  personas(metadataFilter: $f, first: 100) {{ nodes {{ {FIELDS} }} }}
}}
"""
UPDATE = f"""
mutation($id: ID!) {{ updatePersona(id: $id, input: {{name: "taken"}}) {{ {FIELDS} }} }}
"""
DELETE = "mutation($id: ID!) { deletePersona(id: $id) }"
ADD_TAGS = f'mutation($id: ID!) {{ addPersonaTags(id: $id, tags: ["x"]) {{ {FIELDS} }} }}'
VALUES = 'query { metadataValues(path: "tags") { value count } }'
REVISIONS = "query($id: ID!) { personaRevisions(id: $id) { nodes { version actor } } }"
REVISION = "query($id: ID!) { personaRevision(id: $id, version: 1) { version } }"


class Caller:
    """One API client with one key (or none)."""

    def __init__(self, http: httpx.AsyncClient, token: str | None) -> None:
        self.http = http
        self.headers = {} if token is None else {"authorization": f"Bearer {token}"}

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = await self.graphql(query, variables)
        assert "errors" not in body, body
        return body["data"]


@pytest.fixture
async def secured(settings: Settings) -> AsyncIterator[Starlette]:
    """An app that requires API keys."""
    application = create_app(settings.replace(auth="required"))
    async with application.router.lifespan_context(application):
        yield application
        await application.state.store.drop_database()


@pytest.fixture
async def http(secured: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=secured)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def issue(store: PersonaStore, tenant: str, *scopes: str) -> tuple[str, str]:
    new = generate_key()
    await store.keys.create(new.id, new.secret_hash, tenant, frozenset(scopes), "test")
    return new.id, new.token


@pytest.fixture
async def keys(secured: Starlette) -> dict[str, tuple[str, str]]:
    store: PersonaStore = secured.state.store
    return {
        "acme": await issue(store, "acme", "read", "write"),
        "globex": await issue(store, "globex", "read", "write"),
        "reader": await issue(store, "acme", "read"),
        "writer": await issue(store, "acme", "write"),
    }


def caller(http: httpx.AsyncClient, keys: dict[str, tuple[str, str]], name: str) -> Caller:
    return Caller(http, keys[name][1])


async def test_keys_are_stored_only_as_hashes(secured: Starlette, settings: Settings) -> None:
    key_id, token = await issue(secured.state.store, "acme", "read")
    assert settings.mongodb_uri is not None
    raw: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri)
    try:
        stored = raw[settings.db_name]["api_keys"].find_one({"_id": key_id})
    finally:
        raw.close()
    assert stored is not None
    secret = token.split("_", 2)[2]
    assert secret not in str(stored)
    assert stored["hash"] == hashlib.sha256(secret.encode()).hexdigest()


async def test_missing_unknown_and_malformed_keys_are_unauthenticated(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]]
) -> None:
    key_id, token = keys["acme"]
    for authorization in [
        None,
        "Bearer pk_0000000000000000_nope",
        f"Bearer {token}x",
        f"Bearer pk_{key_id}_{'a' * 43}",
        token,
        f"Basic {token}",
        "Bearer",
    ]:
        headers = {} if authorization is None else {"authorization": authorization}
        response = await http.post("/graphql", json={"query": VALUES}, headers=headers)
        assert response.status_code == 401, authorization
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_revoked_key_stops_working(
    http: httpx.AsyncClient, secured: Starlette, settings: Settings
) -> None:
    store: PersonaStore = secured.state.store
    key_id, token = await issue(store, "acme", "read")
    await store.keys.revoke(key_id)
    fresh = create_app(settings.replace(auth="required"))
    async with (
        fresh.router.lifespan_context(fresh),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=fresh), base_url="http://t") as other,
    ):
        response = await other.post(
            "/graphql", json={"query": VALUES}, headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401


async def test_missing_scope_is_forbidden_and_writes_nothing(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]]
) -> None:
    reader = caller(http, keys, "reader")
    writer = caller(http, keys, "writer")
    owner = caller(http, keys, "acme")
    body = await reader.graphql(CREATE, {"i": {"name": "n", "content": "c"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await writer.graphql(LIST)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await owner.data(LIST))["personas"]["nodes"] == []
    created = await writer.data(CREATE, {"i": {"name": "n", "content": "c"}})
    assert created["createPersona"]["version"] == 1


async def test_tenants_never_see_each_other(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]]
) -> None:
    acme = caller(http, keys, "acme")
    globex = caller(http, keys, "globex")
    created = (
        await acme.data(
            CREATE, {"i": {"name": "Acme", "content": "c", "metadata": {"tags": ["prod"]}}}
        )
    )["createPersona"]
    persona_id = created["id"]
    assert (await globex.data(GET, {"id": persona_id}))["persona"] is None
    assert (await globex.data(LIST, {"f": [{"path": "tags", "value": "prod"}]}))["personas"][
        "nodes"
    ] == []
    assert (await globex.data(VALUES))["metadataValues"] == []
    assert (await globex.data(REVISIONS, {"id": persona_id}))["personaRevisions"]["nodes"] == []
    assert (await globex.data(REVISION, {"id": persona_id}))["personaRevision"] is None
    for mutation in (UPDATE, DELETE, ADD_TAGS):
        body = await globex.graphql(mutation, {"id": persona_id})
        error = body["errors"][0]
        assert error["extensions"]["code"] == "NOT_FOUND"
        missing = await globex.graphql(mutation, {"id": "0" * 24})
        assert missing["errors"][0]["message"].replace("0" * 24, persona_id) == error["message"]
    assert (await acme.data(GET, {"id": persona_id}))["persona"] == created
    revisions = (await acme.data(REVISIONS, {"id": persona_id}))["personaRevisions"]["nodes"]
    assert revisions == [{"version": 1, "actor": keys["acme"][0]}]


# -- secure by default -------------------------------------------------------------


async def test_anonymous_access_on_loopback_only_while_no_key_exists(
    settings: Settings,
) -> None:
    for host, allowed in [("127.0.0.1", True), ("::1", True), ("0.0.0.0", False)]:
        application = create_app(settings.replace(host=host))
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url="http://t"
            ) as client,
        ):
            response = await client.post("/graphql", json={"query": VALUES})
            assert (response.status_code == 200) is allowed, host
            if allowed:
                store: PersonaStore = application.state.store
                await issue(store, "acme", "read")
                late = create_app(settings.replace(host=host))
                async with (
                    late.router.lifespan_context(late),
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=late), base_url="http://t"
                    ) as second,
                ):
                    refused = await second.post("/graphql", json={"query": VALUES})
                    assert refused.status_code == 401
                await application.state.store.drop_database()


async def test_health_routes_need_no_key(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200


# -- GraphQL hardening -------------------------------------------------------------


def aliases(count: int) -> str:
    return " ".join(f'a{index}: metadataValues(path: "tags") {{ count }}' for index in range(count))


@pytest.mark.parametrize(
    ("query", "allowed"),
    [
        ("query { " + aliases(30) + " }", True),
        ("query { " + aliases(31) + " }", False),
        ("fragment F on Query { " + aliases(31) + " } query { ...F }", False),
        ("query { personas { nodes { id } } }" + " " + "# x\n" * 10, True),
        ("query { personas { nodes { " + "id " * 5000 + "} } }", False),
        ("fragment A on Query { ...B } fragment B on Query { ...A } query { ...A }", False),
    ],
)
async def test_graphql_limits_refuse_expensive_documents(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]], query: str, allowed: bool
) -> None:
    acme = caller(http, keys, "acme")
    body = (await acme.post(query)).json()
    if allowed:
        assert "errors" not in body, body
    else:
        assert body.get("errors"), body
        assert body.get("data") is None


async def test_depth_limit(settings: Settings) -> None:
    application = create_app(settings.replace(graphql_max_depth=3))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        shallow = "{ personas { nodes { revisions { __typename } } } }"
        deep = "{ personas { nodes { revisions { nodes { version } } } } }"
        assert "errors" not in (await c.post("/graphql", json={"query": shallow})).json()
        refused = (await c.post("/graphql", json={"query": deep})).json()
        assert "exceeds maximum operation depth" in refused["errors"][0]["message"]
        await application.state.store.drop_database()


async def test_mutation_by_get_is_refused(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]], secured: Starlette
) -> None:
    acme = caller(http, keys, "acme")
    response = await http.get(
        "/graphql",
        params={"query": 'mutation { createPersona(input: {name: "n", content: "c"}) { id } }'},
        headers=acme.headers,
    )
    assert response.status_code in {400, 405}
    assert (await acme.data(LIST))["personas"]["nodes"] == []
    query = await http.get("/graphql", params={"query": VALUES}, headers=acme.headers)
    assert query.status_code == 200
    assert query.json()["data"] == {"metadataValues": []}


async def test_batching_is_off(http: httpx.AsyncClient, keys: dict[str, tuple[str, str]]) -> None:
    acme = caller(http, keys, "acme")
    response = await http.post("/graphql", json=[{"query": VALUES}], headers=acme.headers)
    assert response.status_code == 400


async def test_production_hides_the_schema(settings: Settings) -> None:
    application = create_app(settings.replace(env="production"))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        introspection = await c.post("/graphql", json={"query": "{ __schema { types { name } } }"})
        assert introspection.json()["errors"]
        typo = await c.post("/graphql", json={"query": "{ persnas { nodes { id } } }"})
        message = typo.json()["errors"][0]["message"]
        assert "persnas" in message
        assert "Did you mean" not in message
        page = await c.get("/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        await application.state.store.drop_database()
    development = create_app(settings)
    async with (
        development.router.lifespan_context(development),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=development), base_url="http://t") as c,
    ):
        typo = await c.post("/graphql", json={"query": "{ persnas { nodes { id } } }"})
        assert "Did you mean" in typo.json()["errors"][0]["message"]
        await development.state.store.drop_database()


# -- HTTP hardening -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_non_json_bodies_are_unsupported(
    http: httpx.AsyncClient,
    keys: dict[str, tuple[str, str]],
    content_type: str | None,
) -> None:
    acme = caller(http, keys, "acme")
    headers = dict(acme.headers)
    if content_type is not None:
        headers["content-type"] = content_type
    body = (
        '{"query": "mutation { createPersona(input: {name: \\"n\\", content: \\"c\\"}) { id } }"}'
    )
    for path in ("/graphql", "/v1/personas"):
        response = await http.post(path, content=body, headers=headers)
        assert response.status_code == 415, (path, content_type)
    assert (await acme.data(LIST))["personas"]["nodes"] == []


async def test_a_request_without_body_reaches_its_route(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]]
) -> None:
    acme = caller(http, keys, "acme")
    assert (await http.put("/v1/openapi.json", headers=acme.headers)).status_code == 405
    assert (await http.post("/v1/nothing-here", headers=acme.headers)).status_code == 404
    empty = await http.post("/v1/personas", headers=acme.headers)
    assert empty.status_code == 400
    assert (await acme.data(LIST))["personas"]["nodes"] == []


async def test_oversized_body_is_refused(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]]
) -> None:
    acme = caller(http, keys, "acme")
    big = {"query": CREATE, "variables": {"i": {"name": "n", "content": "x" * (1024 * 1024)}}}
    response = await http.post("/graphql", json=big, headers=acme.headers)
    assert response.status_code == 413
    assert (await acme.data(LIST))["personas"]["nodes"] == []


@pytest.mark.parametrize(
    "attempt",
    [
        {"f": [{"path": "$where", "value": "sleep(1000)"}]},
        {"f": [{"path": "tags", "value": {"$ne": None}}]},
        {"f": [{"path": "tags", "value": {"$regex": ".*"}}]},
        {"f": [{"path": "tags", "value": {"$expr": {"$eq": [1, 1]}}}]},
        {"f": [{"path": "a.$where", "value": 1}]},
        {"f": [{"path": "tags", "op": "IN", "value": [{"$gt": ""}]}]},
    ],
)
async def test_filter_injection_is_refused(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]], attempt: dict[str, Any]
) -> None:
    acme = caller(http, keys, "acme")
    await acme.data(CREATE, {"i": {"name": "n", "content": "c", "metadata": {"tags": ["a"]}}})
    body = await acme.graphql(LIST, attempt)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "metadata",
    [{"$where": "1"}, {"a": {"$ne": 1}}, {"$expr": 1}, {"tags": [{"$regex": "x"}]}, {"a.b": 1}],
)
async def test_metadata_injection_is_refused(
    http: httpx.AsyncClient, keys: dict[str, tuple[str, str]], metadata: dict[str, Any]
) -> None:
    acme = caller(http, keys, "acme")
    body = await acme.graphql(CREATE, {"i": {"name": "n", "content": "c", "metadata": metadata}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await acme.data(LIST))["personas"]["nodes"] == []


def unprepared_app(settings: Settings) -> Starlette:
    """An app whose database never answered (its lifespan would wait for it)."""
    application = create_app(settings)
    store = PersonaStore.connect(
        settings.mongodb_uri or "", settings.db_name, settings.db_timeout_ms
    )
    application.state.store = store
    application.state.authenticator = Authenticator(store, anonymous_allowed(settings))
    return application


async def test_unreachable_database_is_a_clean_503(settings: Settings) -> None:
    closed = settings.replace(
        mongodb_uri="mongodb://127.0.0.1:9/?directConnection=true", db_timeout_ms=300
    )
    application = unprepared_app(closed)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://t"
    ) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        body = (await client.post("/graphql", json={"query": VALUES})).json()
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "Traceback" not in str(body)
        rest = await client.get("/v1/personas")
        assert rest.status_code == 503
        assert rest.headers["content-type"] == "application/problem+json"
    await application.state.store.close()


async def test_a_database_that_hangs_times_out_without_blocking_others(
    settings: Settings,
) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        hanging = settings.replace(
            mongodb_uri=f"mongodb://127.0.0.1:{port}/?directConnection=true",
            db_timeout_ms=1500,
        )
        application = unprepared_app(hanging)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://t"
        ) as client:
            slow = asyncio.create_task(client.post("/graphql", json={"query": VALUES}))
            await asyncio.sleep(0.2)
            assert (await client.get("/healthz")).status_code == 200
            assert not slow.done()
            body = (await slow).json()
            assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        await application.state.store.close()
