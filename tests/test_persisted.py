"""Automatic persisted queries, registered documents, and GET answers that revalidate."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from personas.app import create_app
from personas.graphql.persisted import (
    DocumentCache,
    PersistedQueries,
    document_hash,
    load_registered,
)
from personas.settings import Settings

QUERY = "query Count { personas(first: 1) { totalCount } }"
FILTERED = "query($f: [MetadataFilter!]) { personas(metadataFilter: $f) { totalCount } }"
CREATE = 'mutation { createPersona(input: {name: "n", content: "c"}) { id } }'


def persisted(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": document_hash(document)}}


async def test_a_hash_alone_is_not_found_until_sent_with_its_query(
    client: httpx.AsyncClient,
) -> None:
    only_hash = await client.post("/graphql", json={"extensions": persisted(QUERY)})
    assert only_hash.status_code == 200
    assert only_hash.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    registered = await client.post(
        "/graphql", json={"query": QUERY, "extensions": persisted(QUERY)}
    )
    assert registered.json() == {"data": {"personas": {"totalCount": 0}}}
    by_hash = await client.post("/graphql", json={"extensions": persisted(QUERY)})
    assert by_hash.json() == {"data": {"personas": {"totalCount": 0}}}


async def test_a_wrong_hash_is_refused_and_registers_nothing(client: httpx.AsyncClient) -> None:
    wrong = persisted("{ __typename }")
    refused = await client.post("/graphql", json={"query": QUERY, "extensions": wrong})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    later = await client.post("/graphql", json={"extensions": wrong})
    assert later.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extension",
    [
        {"version": 2, "sha256Hash": "0" * 64},
        {"version": 1, "sha256Hash": "not-a-hash"},
        {"version": 1},
        "a string",
    ],
)
async def test_a_malformed_extension_is_refused(client: httpx.AsyncClient, extension: Any) -> None:
    response = await client.post("/graphql", json={"extensions": {"persistedQuery": extension}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


def test_the_store_is_bounded_and_drops_the_least_recently_used() -> None:
    cache = DocumentCache(max_entries=2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # now b is the least recently used
    cache.put("c", "C")
    assert len(cache) == 2
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == ("A", "C")
    queries = PersistedQueries(cache_size=1)
    for document in ("{ a }", "{ b }"):
        queries.document(document, persisted(document))
    assert queries.document(None, persisted("{ b }")) == "{ b }"
    with pytest.raises(Exception, match="PersistedQueryNotFound"):
        queries.document(None, persisted("{ a }"))


async def test_a_query_by_get_carries_an_etag_and_revalidates(client: httpx.AsyncClient) -> None:
    params = {"query": QUERY}
    first = await client.get("/graphql", params=params)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, no-cache"
    etag = first.headers["etag"]
    assert etag.startswith('"')
    again = await client.get("/graphql", params=params, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = await client.get("/graphql", params=params, headers={"if-none-match": f"W/{etag}"})
    assert weak.status_code == 304
    await client.post("/graphql", json={"query": CREATE})
    changed = await client.get("/graphql", params=params, headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed.json() == {"data": {"personas": {"totalCount": 1}}}
    assert changed.headers["etag"] != etag


async def test_a_persisted_query_by_get(client: httpx.AsyncClient) -> None:
    extensions = json.dumps(persisted(QUERY))
    missing = await client.get("/graphql", params={"extensions": extensions})
    assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await client.get("/graphql", params={"query": QUERY, "extensions": extensions})
    assert registered.json() == {"data": {"personas": {"totalCount": 0}}}
    by_hash = await client.get(
        "/graphql", params={"extensions": extensions}, headers={"accept": "text/html,*/*"}
    )
    assert by_hash.json() == {"data": {"personas": {"totalCount": 0}}}
    assert by_hash.headers["etag"] == registered.headers["etag"]


async def test_mutations_never_run_by_get(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": CREATE})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    await client.post("/graphql", json={"query": CREATE, "extensions": persisted(CREATE)})
    by_hash = await client.get("/graphql", params={"extensions": json.dumps(persisted(CREATE))})
    assert by_hash.status_code == 400
    count = await client.post("/graphql", json={"query": QUERY})
    assert count.json() == {"data": {"personas": {"totalCount": 1}}}


@pytest.fixture
async def allow_listed(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({f"sha256:{document_hash(QUERY)}": QUERY}))
    app = create_app(settings.replace(persisted_queries=manifest, persisted_only=True))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http
        await app.state.store.drop_database()


async def test_persisted_only_runs_registered_documents_alone(
    allow_listed: httpx.AsyncClient,
) -> None:
    by_hash = await allow_listed.post("/graphql", json={"extensions": persisted(QUERY)})
    assert by_hash.json() == {"data": {"personas": {"totalCount": 0}}}
    in_full = await allow_listed.post("/graphql", json={"query": QUERY})
    assert in_full.json() == {"data": {"personas": {"totalCount": 0}}}
    for body in (
        {"query": CREATE},
        {"query": CREATE, "extensions": persisted(CREATE)},
    ):
        refused = await allow_listed.post("/graphql", json=body)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_ONLY"
    unknown = await allow_listed.post("/graphql", json={"extensions": persisted(CREATE)})
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_a_manifest_with_a_wrong_hash_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({document_hash(QUERY): CREATE}))
    with pytest.raises(ValueError, match="is not the sha256 hash of its document"):
        load_registered(manifest)
    manifest.write_text("[]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_registered(manifest)


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        (
            {
                "query": "query($n: Int) { personas(first: $n) { totalCount } }",
                "variables": {"n": "abc"},
            },
            200,
            "BAD_USER_INPUT",
        ),
        (
            {"query": "query($n: Int!) { personas(first: $n) { totalCount } }"},
            200,
            "BAD_USER_INPUT",
        ),
        (
            {
                "query": FILTERED,
                "variables": {"f": [{"path": 1}]},
            },
            200,
            "BAD_USER_INPUT",
        ),
        ({"query": "{ personas(first: 500) { totalCount } }"}, 200, "BAD_USER_INPUT"),
        ({"query": "{ personas { nodes { id }"}, 200, "GRAPHQL_PARSE_FAILED"),
        ({"query": "query($n: Int) { personas { totalCount } }"}, 200, "GRAPHQL_VALIDATION_FAILED"),
        ({}, 400, "BAD_REQUEST"),
        ({"query": "{ a } { b }"}, 200, "GRAPHQL_VALIDATION_FAILED"),
        (
            {"query": "query A { personas { totalCount } }", "operationName": "B"},
            400,
            "BAD_REQUEST",
        ),
        ({"query": 5}, 400, "BAD_REQUEST"),
    ],
)
async def test_every_error_has_a_code(
    client: httpx.AsyncClient, request_body: dict[str, Any], status: int, code: str
) -> None:
    response = await client.post("/graphql", json=request_body)
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert [error["extensions"]["code"] for error in errors] == [code] * len(errors)


async def test_a_body_that_is_not_json_is_a_coded_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not valid JSON" in error["message"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_a_coded_405(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/graphql")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
