"""REST errors: every one is application/problem+json, names what was wrong, and writes
nothing."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import httpx
import orjson
import pytest

from personas import domain
from personas.auth import generate_key
from personas.store import PersonaStore

PERSONAS = "/v1/personas"


async def problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    """The RFC 9457 body of an error response, checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in response.text
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
        assert all(error["message"] for error in body["errors"])
    return body


async def stored(store: PersonaStore) -> int:
    return await store.count(domain.ANONYMOUS, domain.persona_query())


@pytest.fixture
async def existing(client: httpx.AsyncClient) -> dict[str, Any]:
    """One persona, to check that failed requests leave it as it was."""
    response = await client.post(
        PERSONAS, json={"name": "Existing", "content": "c", "metadata": {"tags": ["dev"]}}
    )
    assert response.status_code == 201
    persona: dict[str, Any] = response.json()
    return persona


async def unchanged(
    client: httpx.AsyncClient, store: PersonaStore, persona: dict[str, Any]
) -> None:
    assert await stored(store) == 1
    assert (await client.get(f"{PERSONAS}/{persona['id']}")).json() == persona


# -- bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"name": "a",', "body"),
        (b"", "body"),
        (b'{"name": "a", "content": "c"} trailing', "body"),
        (b'{"name": "\xff", "content": "c"}', "body"),
        (b'{"name": "\\ud800", "content": "c"}', "body"),
        (b'{"name": "a", "content": "c", "metadata": {"n": NaN}}', "body"),
        (b"[]", "body"),
        (b'"a persona"', "body"),
        (b"null", "body"),
        (b"42", "body"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_a_400(
    client: httpx.AsyncClient, store: PersonaStore, content: bytes, field: str
) -> None:
    headers = {"content-type": "application/json"}
    response = await client.post(PERSONAS, content=content, headers=headers)
    await problem(response, 400, field)
    assert await stored(store) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "n", "content": "c", "tenant": "other"}, "tenant"),
        ({"name": "n", "content": "c", "id": "0" * 24}, "id"),
        ({"name": "n", "content": "c", "version": 7}, "version"),
        ({"content": "c"}, "name"),
        ({"name": "n"}, "content"),
        ({"name": 1, "content": "c"}, "name"),
        ({"name": "   ", "content": "c"}, "name"),
        ({"name": "n" * 201, "content": "c"}, "name"),
        ({"name": "n", "content": " \n "}, "content"),
        ({"name": "n", "content": "c" * 100_001}, "content"),
        ({"name": "n", "content": None}, "content"),
        ({"name": "n", "content": "c", "metadata": ["tags"]}, "metadata"),
        ({"name": "n", "content": "c", "metadata": "prod"}, "metadata"),
        ({"name": "n", "content": "c", "metadata": {"$where": "1"}}, "metadata"),
        ({"name": "n", "content": "c", "metadata": {"a.b": 1}}, "metadata"),
        ({"name": "n", "content": "c", "metadata": {"a": {"$ne": 1}}}, "metadata.a"),
        ({"name": "n", "content": "c", "metadata": {"k" * 257: 1}}, "metadata"),
        ({"name": "n", "content": "c", "metadata": {"n": 2**63}}, "metadata.n"),
        ({"name": "n", "content": "c", "metadata": {"n": 2**64}}, "metadata.n"),
        ({"name": "n", "content": "c", "metadata": {"n": -(2**63) - 1}}, "metadata.n"),
        ({"name": "n", "content": "c", "metadata": {"big": "x" * 70_000}}, "metadata"),
    ],
)
async def test_a_body_breaking_a_rule_is_a_400_naming_the_field(
    client: httpx.AsyncClient, store: PersonaStore, body: dict[str, Any], field: str
) -> None:
    await problem(await client.post(PERSONAS, json=body), 400, field)
    assert await stored(store) == 0


async def test_metadata_nested_too_deep_is_a_400(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(domain.METADATA_MAX_DEPTH):
        deep = {"k": deep}
    body = {"name": "n", "content": "c", "metadata": deep}
    response = await problem(await client.post(PERSONAS, json=body), 400)
    assert "nesting deeper" in response["detail"]
    assert await stored(store) == 0


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_a_body_not_sent_as_json_is_a_415(
    client: httpx.AsyncClient,
    store: PersonaStore,
    existing: dict[str, Any],
    content_type: str | None,
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    body = orjson.dumps({"name": "n", "content": "c"})
    await problem(await client.post(PERSONAS, content=body, headers=headers), 415)
    await problem(
        await client.put(f"{PERSONAS}/{existing['id']}", content=body, headers=headers), 415
    )
    await unchanged(client, store, existing)


async def test_a_body_over_the_limit_is_a_413(
    client: httpx.AsyncClient, store: PersonaStore, existing: dict[str, Any]
) -> None:
    content = "x" * (1024 * 1024)
    big = orjson.dumps({"name": "n", "content": content})
    headers = {"content-type": "application/json"}

    response = await client.post(PERSONAS, content=big, headers=headers)
    assert "exceeds 1048576 bytes" in (await problem(response, 413))["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        """Streamed without a Content-Length: the limit applies while reading."""
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    await problem(await client.post(PERSONAS, content=chunks(), headers=headers), 413)
    await problem(
        await client.put(f"{PERSONAS}/{existing['id']}", content=big, headers=headers), 413
    )
    await unchanged(client, store, existing)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "input"),
        ({"name": None}, "name"),
        ({"content": ""}, "content"),
        ({"metadata": {"$set": {"x": 1}}}, "metadata"),
        ({"metadata": [1]}, "metadata"),
        ({"name": "n", "tags": ["prod"]}, "tags"),
    ],
)
async def test_a_put_breaking_a_rule_is_a_400_and_changes_nothing(
    client: httpx.AsyncClient,
    store: PersonaStore,
    existing: dict[str, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    await problem(await client.put(f"{PERSONAS}/{existing['id']}", json=body), 400, field)
    await unchanged(client, store, existing)


async def test_a_malformed_put_changes_nothing(
    client: httpx.AsyncClient, store: PersonaStore, existing: dict[str, Any]
) -> None:
    headers = {"content-type": "application/json"}
    url = f"{PERSONAS}/{existing['id']}"
    await problem(await client.put(url, content=b'{"name": ', headers=headers), 400, "body")
    await problem(await client.put(url, content=b'["name"]', headers=headers), 400, "body")
    await unchanged(client, store, existing)


# -- ids and routes -------------------------------------------------------------------------


@pytest.mark.parametrize("persona_id", ["zz", "123", "0" * 25, "g" * 24, "%0Aabc"])
async def test_an_invalid_id_is_a_400(
    client: httpx.AsyncClient, store: PersonaStore, existing: dict[str, Any], persona_id: str
) -> None:
    url = f"{PERSONAS}/{persona_id}"
    await problem(await client.get(url), 400, "id")
    await problem(await client.put(url, json={"name": "n"}), 400, "id")
    await problem(await client.delete(url), 400, "id")
    await unchanged(client, store, existing)


async def test_a_missing_persona_is_a_404(
    client: httpx.AsyncClient, store: PersonaStore, existing: dict[str, Any]
) -> None:
    url = f"{PERSONAS}/{'0' * 24}"
    assert "not found" in (await problem(await client.get(url), 404))["detail"]
    await problem(await client.put(url, json={"name": "n"}), 404)
    await problem(await client.delete(url), 404)
    await unchanged(client, store, existing)


async def test_a_deleted_persona_is_gone_for_put_and_delete(
    client: httpx.AsyncClient, store: PersonaStore, existing: dict[str, Any]
) -> None:
    url = f"{PERSONAS}/{existing['id']}"
    assert (await client.delete(url)).status_code == 204
    await problem(await client.put(url, json={"name": "back"}), 404)
    await problem(await client.delete(url), 404)
    assert await stored(store) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/v1/nope",
        "/v1/personas/",
        f"/v1/personas/{'0' * 24}/history",
        f"/v1/personas/{'0' * 24}/revisions/1/name",
        "/v1/%0A",
    ],
)
async def test_an_unknown_path_is_a_404_problem(client: httpx.AsyncClient, path: str) -> None:
    await problem(await client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", PERSONAS, {"GET", "HEAD", "POST"}),
        ("PATCH", PERSONAS, {"GET", "HEAD", "POST"}),
        ("POST", PERSONAS + "/{id}", {"GET", "HEAD", "PUT", "PATCH", "DELETE"}),
        ("POST", PERSONAS + "/{id}/revisions", {"GET", "HEAD"}),
        ("DELETE", PERSONAS + "/{id}/revisions/1", {"GET", "HEAD"}),
        ("POST", "/v1/metadata/values", {"GET", "HEAD"}),
        ("DELETE", "/v1/openapi.json", {"GET", "HEAD"}),
    ],
)
async def test_a_wrong_method_is_a_405_problem_with_allow(
    client: httpx.AsyncClient,
    store: PersonaStore,
    existing: dict[str, Any],
    method: str,
    path: str,
    allowed: set[str],
) -> None:
    response = await client.request(
        method, path.format(id=existing["id"]), json={"name": "changed"}
    )
    await problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == allowed
    await unchanged(client, store, existing)


# -- query strings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("foo=1", "foo"),
        ("metadata=prod", "metadata"),
        ("tags=prod", "tags"),
        ("metadata.tags[$ne]=prod", "metadata.tags[$ne]"),
        ("metadata.tags[regex]=.*", "metadata.tags[regex]"),
        ("metadata.tags[NE]=prod", "metadata.tags[NE]"),
        ("metadata.tags[]=prod", "metadata.tags[]"),
        ("metadata.$where=1", "metadata.$where"),
        ("metadata.a.$gt=1", "metadata.a.$gt"),
        ("metadata..x=1", "metadata..x"),
        ("metadata.=1", "metadata."),
        ("metadata.a.=1", "metadata.a."),
        ("metadata.a%00b=1", "metadata.a\x00b"),
        ("metadata.a[gt][lt]=1", "metadata.a[gt][lt]"),
        ("metadata.a[gt=1", "metadata.a[gt"),
        ("metadata.a[exists]=maybe", "metadata.a[exists]"),
        ("metadata.a[exists]=", "metadata.a[exists]"),
        ("metadata.a[prefix]=", "metadata.a[prefix]"),
        ("metadata." + ".".join("a" * 17), "metadata." + ".".join("a" * 17)),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("limit=5&limit=6", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=", "cursor"),
        ("sort=color", "sort"),
        ("sort=", "sort"),
        ("sort=metadata", "sort"),
        ("sort=metadata.", "sort.path"),
        ("sort=metadata.$x", "sort.path"),
        ("sort=+name", "sort"),
        ("sort=name,created_at,updated_at,-name", "sort"),
        ("sort=name&sort=created_at", "sort"),
        ("q=" + "x" * 201, "q"),
        ("q=a&q=b", "q"),
        ("&".join(f"metadata.k{index}=v" for index in range(21)), "metadata"),
        ("metadata.tags[in]=" + ",".join(f"t{index}" for index in range(101)), "metadata.tags[in]"),
    ],
)
async def test_a_bad_listing_query_is_a_400_naming_the_parameter(
    client: httpx.AsyncClient, existing: dict[str, Any], query: str, field: str
) -> None:
    await problem(await client.get(f"{PERSONAS}?{query}"), 400, field)


async def test_a_cursor_of_another_listing_is_a_400(
    client: httpx.AsyncClient, existing: dict[str, Any]
) -> None:
    await client.post(PERSONAS, json={"name": "Second", "content": "c", "metadata": {"tags": []}})
    cursor = (await client.get(f"{PERSONAS}?limit=1")).json()["next_cursor"]
    assert cursor is not None
    assert (await client.get(f"{PERSONAS}?limit=1&cursor={cursor}")).status_code == 200
    for other in ("metadata.tags=dev", "sort=name", "q=e"):
        body = await problem(await client.get(f"{PERSONAS}?{other}&cursor={cursor}"), 400, "cursor")
        assert "another filter or order" in body["detail"]
    await problem(await client.get(f"{PERSONAS}?sort=name,-created_at&cursor={cursor}"), 400)
    forged = base64.urlsafe_b64encode(orjson.dumps(["x", [], "y"])).decode()
    await problem(await client.get(f"{PERSONAS}?cursor={forged}"), 400, "cursor")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "path"),
        ("path=", "path"),
        ("path=$where", "path"),
        ("path=a..b", "path"),
        ("path=tags&limit=0", "limit"),
        ("path=tags&limit=101", "limit"),
        ("path=tags&path=status", "path"),
        ("path=tags&q=x", "q"),
        ("path=tags&metadata.$x=1", "metadata.$x"),
    ],
)
async def test_a_bad_metadata_values_query_is_a_400(
    client: httpx.AsyncClient, existing: dict[str, Any], query: str, field: str
) -> None:
    await problem(await client.get(f"/v1/metadata/values?{query}"), 400, field)


# -- domain errors, authentication, the unexpected ----------------------------------------------


async def test_without_a_key_once_keys_exist_is_a_401(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    key = generate_key()
    await store.keys.create(key.id, key.secret_hash, "default", frozenset({"read", "write"}), "t")
    response = await client.post(PERSONAS, json={"name": "n", "content": "c"})
    await problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    authorized = {"authorization": f"Bearer {key.token}"}
    assert (await client.get(PERSONAS, headers=authorized)).json()["data"] == []


async def test_a_key_without_the_write_scope_is_a_403(
    client: httpx.AsyncClient, store: PersonaStore
) -> None:
    key = generate_key()
    await store.keys.create(key.id, key.secret_hash, "default", frozenset({"read"}), "reader")
    headers = {"authorization": f"Bearer {key.token}"}
    response = await client.post(PERSONAS, json={"name": "n", "content": "c"}, headers=headers)
    assert "'write' scope" in (await problem(response, 403))["detail"]
    assert await stored(store) == 0


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (domain.Unauthenticated("who are you"), 401),
        (domain.Forbidden("not yours"), 403),
        (domain.NotFound("gone"), 404),
        (domain.Conflict("changed meanwhile", current_version=4), 409),
        (domain.Unavailable("the database is unavailable; try again shortly"), 503),
    ],
)
async def test_domain_errors_map_to_statuses(
    client: httpx.AsyncClient,
    store: PersonaStore,
    monkeypatch: pytest.MonkeyPatch,
    error: domain.DomainError,
    status: int,
) -> None:
    async def failing(*args: object) -> None:
        raise error

    monkeypatch.setattr(store, "get", failing)
    body = await problem(await client.get(f"{PERSONAS}/{'0' * 24}"), status)
    assert body["detail"] == error.message
    assert body["title"] == HTTPStatus(status).phrase
    if isinstance(error, domain.Conflict):
        assert body["current_version"] == 4


async def test_an_unexpected_error_is_a_500_that_hides_the_details(
    client: httpx.AsyncClient,
    store: PersonaStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("secret connection string mongodb://admin:hunter2@db")

    monkeypatch.setattr(store, "find", broken)
    with caplog.at_level(logging.ERROR, logger="personas.rest"):
        response = await client.get(PERSONAS)
    body = await problem(response, 500)
    assert body["detail"] == "Unexpected error."
    assert "hunter2" not in response.text
    assert any("hunter2" in str(record.exc_info) for record in caplog.records)
