"""Safe retries: an idempotency key makes a write happen at most once per tenant; a retry
answers what the first request answered, a different request with the key is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from starlette.applications import Starlette

from personas import domain
from personas.app import create_app
from personas.auth import generate_key
from personas.settings import Settings
from personas.store import PersonaStore
from tests.conftest import GraphQLClient

PERSONAS = "/v1/personas"
FIELDS = "id name content metadata version createdAt updatedAt"
CREATE = f"""
mutation($input: CreatePersonaInput!, $key: String) {{
  createPersona(input: $input, idempotencyKey: $key) {{ {FIELDS} }}
}}
"""
BODY = {"name": "Support Agent", "content": "You are...", "metadata": {"tags": ["dev"]}}


def key_header(key: str | bytes) -> dict[str, Any]:
    return {"Idempotency-Key": key}


async def personas(store: PersonaStore, principal: domain.Principal = domain.ANONYMOUS) -> int:
    return await store.count(principal, domain.persona_query())


async def revisions(store: PersonaStore, persona_id: str) -> list[int]:
    page = await store.revisions(domain.ANONYMOUS, persona_id, 100)
    return [revision.version for revision in page.items]


def records(settings: Settings) -> Any:
    """The idempotency records, read directly."""
    assert settings.mongodb_uri is not None
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri, tz_aware=True)
    return client[settings.db_name]["personas_idempotency"]


async def create(
    client: httpx.AsyncClient, key: str | bytes | None = None, **body: Any
) -> httpx.Response:
    headers = {} if key is None else key_header(key)
    return await client.post(PERSONAS, json={**BODY, **body}, headers=headers)


def unprocessable(response: httpx.Response, field: str = "Idempotency-Key") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == HTTPStatus(422).phrase
    assert [error["field"] for error in problem["errors"]] == [field]
    assert "different request" in problem["detail"]


# -- the rules (pure) ------------------------------------------------------------------


def test_the_fingerprint_is_the_operation_and_the_canonical_input() -> None:
    same = domain.request_fingerprint("update", {"id": "a", "changes": {"x": 1, "y": [1, 2]}})
    reordered = domain.request_fingerprint("update", {"changes": {"y": [1, 2], "x": 1}, "id": "a"})
    assert same == reordered
    assert same != domain.request_fingerprint(
        "patch", {"id": "a", "changes": {"x": 1, "y": [1, 2]}}
    )
    assert same != domain.request_fingerprint(
        "update", {"id": "a", "changes": {"x": 1, "y": [2, 1]}}
    )
    assert domain.request_fingerprint("create", {"n": 2**70}) != domain.request_fingerprint(
        "create", {"n": 2**70 + 1}
    )


def test_a_key_is_validated_and_a_different_request_refused() -> None:
    assert domain.idempotency_key(None, "idempotencyKey") is None
    key = domain.idempotency_key("0190a3c2-e4b0", "idempotencyKey")
    assert key == domain.IdempotencyKey("0190a3c2-e4b0", "idempotencyKey")
    with pytest.raises(domain.InvalidInput) as refused:
        domain.idempotency_key("k" * 256, "Idempotency-Key")
    assert refused.value.field == "Idempotency-Key"
    assert domain.once(None, "create", {}) is None
    once = domain.once(key, "create", {"name": "a"})
    assert once is not None
    domain.same_request(once, domain.request_fingerprint("create", {"name": "a"}))
    with pytest.raises(domain.KeyReused) as reused:
        domain.same_request(once, domain.request_fingerprint("create", {"name": "b"}))
    assert reused.value.field == "idempotencyKey"
    assert reused.value.code == "BAD_USER_INPUT"


# -- REST -----------------------------------------------------------------------------


async def test_a_retried_create_answers_the_first_answer_and_writes_once(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    first = await create(client, "order-42")
    again = await create(client, "order-42")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    for header in ("Location", "ETag"):
        assert again.headers[header] == first.headers[header]
    assert await personas(store) == 1
    assert await revisions(store, first.json()["id"]) == [1]


async def test_the_same_key_with_another_request_is_a_422_and_writes_nothing(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    first = await create(client, "k1")
    unprocessable(await create(client, "k1", name="Another Agent"))
    unprocessable(await create(client, "k1", metadata={"tags": ["prod"]}))
    assert await personas(store) == 1
    assert await revisions(store, first.json()["id"]) == [1]


async def test_without_a_key_every_request_writes(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    await create(client)
    await create(client)
    assert await personas(store) == 2


async def test_a_retried_update_answers_the_version_it_made(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    persona_id = (await create(client)).json()["id"]
    url = f"{PERSONAS}/{persona_id}"
    headers = {**key_header("put-1"), "If-Match": '"1"'}
    first = await client.put(url, json={"content": "v2"}, headers=headers)
    assert first.status_code == 200
    # Without the key this would be a 412: the persona is at version 2 now.
    again = await client.put(url, json={"content": "v2"}, headers=headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["ETag"] == '"2"'
    # A later change does not alter what the retry answers: the first answer.
    assert (await client.put(url, json={"content": "v3"})).status_code == 200
    late = await client.put(url, json={"content": "v2"}, headers=headers)
    assert late.json() == first.json()
    assert await revisions(store, persona_id) == [3, 2, 1]
    unprocessable(await client.put(url, json={"content": "other"}, headers=headers))
    unprocessable(await client.put(url, json={"content": "v2"}, headers=key_header("put-1")))


async def test_a_retried_patch_and_delete_write_once(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    persona_id = (await create(client)).json()["id"]
    url = f"{PERSONAS}/{persona_id}"
    patch_headers = {**key_header("patch-1"), "content-type": "application/merge-patch+json"}
    patch = b'{"metadata": {"status": "approved"}}'
    first = await client.patch(url, content=patch, headers=patch_headers)
    again = await client.patch(url, content=patch, headers=patch_headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["metadata"] == {"tags": ["dev"], "status": "approved"}
    unprocessable(await client.patch(url, content=b'{"name": "x"}', headers=patch_headers))

    deleted = await client.delete(url, headers=key_header("delete-1"))
    assert deleted.status_code == 204
    retried = await client.delete(url, headers=key_header("delete-1"))
    assert retried.status_code == 204  # without the key: 404
    assert (await client.delete(url)).status_code == 404
    assert await revisions(store, persona_id) == [3, 2, 1]


async def test_a_key_is_taken_bare_or_quoted(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    first = await create(client, "b1f0a7c2-5d3e-4f6a-9b8c-7d6e5f4a3b2c")
    again = await create(client, '"b1f0a7c2-5d3e-4f6a-9b8c-7d6e5f4a3b2c"')
    assert again.json() == first.json()
    assert await personas(store) == 1


@pytest.mark.parametrize("key", ["", " ", "a b", "k" * 256, "é".encode(), '"', '""', "a,b"])
async def test_a_malformed_key_is_a_400_naming_the_header(
    client: httpx.AsyncClient, store: PersonaStore, key: str | bytes
) -> None:
    response = await create(client, key)
    assert response.status_code == 400, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["Idempotency-Key"]
    assert await personas(store) == 0


async def test_two_key_headers_are_a_400(client: httpx.AsyncClient, store: PersonaStore) -> None:
    headers = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    response = await client.post(PERSONAS, json=BODY, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await personas(store) == 0


async def test_a_refused_request_leaves_its_key_unused(
    client: httpx.AsyncClient, store: PersonaStore, settings: Settings
) -> None:
    refused = await create(client, "k", name="")
    assert refused.status_code == 400
    missing = await client.put(
        f"{PERSONAS}/{'0' * 24}", json={"name": "x"}, headers=key_header("k")
    )
    assert missing.status_code == 404
    assert records(settings).count_documents({}) == 0
    assert (await create(client, "k")).status_code == 201
    assert await personas(store) == 1


# -- the record: in MongoDB, in the write's transaction, kept a day ----------------------


async def test_the_record_is_kept_a_day_under_a_ttl_index(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    before = datetime.now(UTC)
    await create(client, "ttl")
    collection = records(settings)
    [record] = collection.find({})
    assert record["tenant"] == "default"
    assert record["key"] == "ttl"
    assert timedelta(hours=24) <= record["expires_at"] - before < timedelta(hours=24, minutes=1)
    ttl = [
        spec
        for spec in collection.index_information().values()
        if spec["key"] == [("expires_at", 1)]
    ]
    assert ttl
    assert ttl[0]["expireAfterSeconds"] == 0


async def test_an_expired_key_is_forgotten(
    client: httpx.AsyncClient, store: PersonaStore, settings: Settings
) -> None:
    await create(client, "old")
    past = datetime.now(UTC) - timedelta(seconds=1)
    records(settings).update_many({}, {"$set": {"expires_at": past}})
    again = await create(client, "old", name="A New Agent")
    assert again.status_code == 201
    assert again.json()["name"] == "A New Agent"
    assert await personas(store) == 2


async def test_a_write_that_fails_in_its_transaction_leaves_no_record(
    gql: GraphQLClient, store: PersonaStore, settings: Settings
) -> None:
    """The record shares the change's transaction: the change is refused after its update
    (the metadata would outgrow its limit), and neither is kept."""
    big = {"blob": "x" * 60_000}
    created = await gql.data(CREATE, {"input": {**BODY, "metadata": big}})
    persona_id = created["createPersona"]["id"]
    setting = """
    mutation($id: ID!, $value: JSON!, $key: String) {
      setPersonaMetadata(id: $id, path: "more", value: $value, idempotencyKey: $key) { version }
    }
    """
    variables = {"id": persona_id, "value": "y" * 10_000, "key": "set-1"}
    error = await gql.error(setting, variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert records(settings).count_documents({}) == 0
    assert await revisions(store, persona_id) == [1]
    fits = await gql.data(setting, {**variables, "value": "y"})
    assert fits["setPersonaMetadata"]["version"] == 2


# -- GraphQL ----------------------------------------------------------------------------


async def test_a_retried_create_mutation_answers_the_first_answer(
    gql: GraphQLClient, store: PersonaStore
) -> None:
    variables = {"input": BODY, "key": "gql-1"}
    first = await gql.data(CREATE, variables)
    again = await gql.data(CREATE, variables)
    assert again == first
    assert await personas(store) == 1
    error = await gql.error(CREATE, {"input": {**BODY, "content": "other"}, "key": "gql-1"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "idempotencyKey"
    assert await personas(store) == 1
    bad = await gql.error(CREATE, {"input": BODY, "key": "not a key"})
    assert bad["extensions"] == {"code": "BAD_USER_INPUT", "field": "idempotencyKey"}


MUTATIONS: dict[str, tuple[str, str | None, str]] = {
    # the field, the type of $text (None: no $text) and the first value of $text
    "updatePersona": (
        "updatePersona(id: $id, input: {content: $text}, idempotencyKey: $key) { version }",
        "String!",
        "new text",
    ),
    "setPersonaMetadata": (
        'setPersonaMetadata(id: $id, path: "note", value: $text, idempotencyKey: $key) { version }',
        "JSON!",
        "new text",
    ),
    "unsetPersonaMetadata": (
        "unsetPersonaMetadata(id: $id, path: $text, idempotencyKey: $key) { version }",
        "String!",
        "tags",
    ),
    "addPersonaTags": (
        "addPersonaTags(id: $id, tags: [$text], idempotencyKey: $key) { version }",
        "String!",
        "new",
    ),
    "removePersonaTags": (
        "removePersonaTags(id: $id, tags: [$text], idempotencyKey: $key) { version }",
        "String!",
        "dev",
    ),
    "restorePersonaRevision": (
        "restorePersonaRevision(id: $id, version: 1, idempotencyKey: $key) { version }",
        None,
        "",
    ),
    "deletePersona": ("deletePersona(id: $id, idempotencyKey: $key)", None, ""),
}


@pytest.mark.parametrize("name", MUTATIONS)
async def test_every_mutation_takes_a_key_and_writes_once(
    gql: GraphQLClient, store: PersonaStore, name: str
) -> None:
    field, text_type, text = MUTATIONS[name]
    uses_text = text_type is not None
    declared = "$id: ID!, $key: String" + (f", $text: {text_type}" if uses_text else "")
    mutation = f"mutation({declared}) {{ {field} }}"
    persona_id = (await gql.data(CREATE, {"input": BODY}))["createPersona"]["id"]
    variables: dict[str, Any] = {"id": persona_id, "key": f"{name}-1"}
    if uses_text:
        variables["text"] = text
    first = await gql.data(mutation, variables)
    again = await gql.data(mutation, variables)
    assert again == first
    assert await revisions(store, persona_id) == [2, 1]
    if uses_text:
        error = await gql.error(mutation, {**variables, "text": "another text"})
        assert error["extensions"]["field"] == "idempotencyKey"
    else:
        other = (await gql.data(CREATE, {"input": BODY}))["createPersona"]["id"]
        error = await gql.error(mutation, {**variables, "id": other})
        assert error["extensions"]["field"] == "idempotencyKey"
        assert await revisions(store, other) == [1]
    assert await revisions(store, persona_id) == [2, 1]


async def test_a_key_retried_through_the_other_api_answers_the_same_persona(
    client: httpx.AsyncClient, gql: GraphQLClient, store: PersonaStore
) -> None:
    created = (await create(client, "either-api")).json()
    retried = await gql.data(CREATE, {"input": BODY, "key": "either-api"})
    assert retried["createPersona"]["id"] == created["id"]
    assert retried["createPersona"]["version"] == 1
    assert await personas(store) == 1


# -- tenants, workers, concurrency ----------------------------------------------------


async def issue(store: PersonaStore, tenant: str) -> dict[str, str]:
    new = generate_key()
    await store.keys.create(new.id, new.secret_hash, tenant, frozenset({"read", "write"}), "t")
    return {"authorization": f"Bearer {new.token}"}


async def test_keys_are_per_tenant(client: httpx.AsyncClient, store: PersonaStore) -> None:
    acme, globex = await issue(store, "acme"), await issue(store, "globex")
    mine = await client.post(PERSONAS, json=BODY, headers={**acme, **key_header("shared")})
    theirs = await client.post(PERSONAS, json=BODY, headers={**globex, **key_header("shared")})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    other = {**BODY, "name": "Globex Agent"}
    reused = await client.post(PERSONAS, json=other, headers={**globex, **key_header("acme-only")})
    await client.post(PERSONAS, json=BODY, headers={**acme, **key_header("acme-only")})
    assert reused.status_code == 201
    for tenant in ("acme", "globex"):
        principal = domain.Principal(tenant=tenant, scopes=frozenset({"read"}))
        assert await personas(store, principal) == 2


@pytest.fixture
async def second_worker(settings: Settings, app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Another application on the same database, as a second worker process would be."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker2") as http:
            yield http


async def test_keys_hold_across_workers(
    client: httpx.AsyncClient, second_worker: httpx.AsyncClient, store: PersonaStore
) -> None:
    first = await create(client, "across")
    again = await create(second_worker, "across")
    assert again.status_code == 201
    assert again.json() == first.json()
    unprocessable(await create(second_worker, "across", content="changed"))
    persona_id = first.json()["id"]
    url = f"{PERSONAS}/{persona_id}"
    updated = await second_worker.put(url, json={"name": "n"}, headers=key_header("put"))
    retried = await client.put(url, json={"name": "n"}, headers=key_header("put"))
    assert retried.json() == updated.json()
    assert await personas(store) == 1
    assert await revisions(store, persona_id) == [2, 1]


async def test_concurrent_requests_with_one_key_write_once(
    client: httpx.AsyncClient, second_worker: httpx.AsyncClient, store: PersonaStore
) -> None:
    workers = [client, second_worker] * 4
    answers = await asyncio.gather(*(create(http, "race") for http in workers))
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.text for answer in answers}) == 1
    assert await personas(store) == 1
    persona_id = answers[0].json()["id"]
    url = f"{PERSONAS}/{persona_id}"
    updates = await asyncio.gather(
        *(http.put(url, json={"content": "c2"}, headers=key_header("race-put")) for http in workers)
    )
    assert {answer.status_code for answer in updates} == {200}
    assert {answer.json()["version"] for answer in updates} == {2}
    assert await revisions(store, persona_id) == [2, 1]


async def test_concurrent_different_requests_with_one_key_one_wins(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    answers = await asyncio.gather(
        *(create(client, "contested", name=f"Agent {index}") for index in range(6))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 422, 422, 422, 422, 422]
    assert await personas(store) == 1
