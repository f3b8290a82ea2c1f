"""Releases over REST: the same rules and store calls as GraphQL, conditional reads, and
If-Match as the compare-and-set of a label."""

from __future__ import annotations

from typing import Any

import httpx
import jsonpatch
from pydantic import TypeAdapter
from starlette.applications import Starlette

from personas.rest.parameters import IF_NONE_MATCH
from personas.rest.routes import RESOURCES
from tests.conftest import issue_key, keyed_client, problem

PERSONAS = "/v1/personas"


async def versions(http: httpx.AsyncClient, count: int = 3) -> str:
    created = await http.post(
        PERSONAS, json={"name": "Support", "content": "v1", "metadata": {"tags": ["dev"], "n": 1}}
    )
    assert created.status_code == 201, created.text
    persona_id: str = created.json()["id"]
    for version in range(2, count + 1):
        body = {"content": f"v{version}", "metadata": {"tags": ["prod"], "n": version}}
        changed = await http.put(f"{PERSONAS}/{persona_id}", json=body)
        assert changed.status_code == 200, changed.text
    return persona_id


async def test_the_release_workflow_over_rest(secured: Starlette) -> None:
    store = secured.state.store
    author_id, author_token = await issue_key(store, "acme", "read", "write")
    approver_id, approver_token = await issue_key(store, "acme", "read", "write", "approve")
    async with (
        keyed_client(secured, author_token) as author,
        keyed_client(secured, approver_token) as approver,
    ):
        persona_id = await versions(author, 2)
        labels = f"{PERSONAS}/{persona_id}/labels"
        staged = await author.put(f"{labels}/staging", json={"version": 2})
        assert staged.status_code == 200, staged.text
        assert staged.json()["set_by"] == author_id
        refused = await author.put(f"{labels}/production", json={"version": 2})
        await problem(refused, 403)
        approved = await approver.put(f"{labels}/production", json={"version": 2})
        assert approved.status_code == 200
        assert approved.json()["version"] == 2
        third = {"content": "v3", "metadata": {"tags": ["prod"], "n": 3}}
        assert (await author.put(f"{PERSONAS}/{persona_id}", json=third)).status_code == 200

        served = await author.get(f"{labels}/production")
        assert served.status_code == 200
        assert served.headers["etag"] == '"2"'
        assert served.json()["content"] == "v2"
        assert (await author.get(f"{labels}/latest")).json()["content"] == "v3"
        released = await author.get(
            "/v1/releases", params={"label": "production", "metadata.tags": "prod"}
        )
        assert released.status_code == 200
        assert [item["metadata"]["n"] for item in released.json()["data"]] == [2]

        listed = await author.get(labels)
        assert [(item["name"], item["version"]) for item in listed.json()["data"]] == [
            ("production", 2),
            ("staging", 2),
        ]
        rolled = await approver.put(
            f"{labels}/production", json={"version": 1}, headers={"If-Match": '"2"'}
        )
        assert rolled.status_code == 200
        stale = await approver.put(
            f"{labels}/production", json={"version": 3}, headers={"If-Match": '"2"'}
        )
        body = await problem(stale, 412)
        assert body["current_version"] == 1
        history = await author.get(f"{labels}/production/history")
        assert [
            (event["from_version"], event["to_version"], event["actor"])
            for event in history.json()["data"]
        ] == [(2, 1, approver_id), (None, 2, approver_id)]
        removed = await approver.delete(f"{labels}/production", headers={"If-Match": '"1"'})
        assert removed.status_code == 204
        await problem(await author.get(f"{labels}/production"), 404)


async def test_if_none_match_answers_304_until_the_label_moves(client: httpx.AsyncClient) -> None:
    persona_id = await versions(client)
    target = f"{PERSONAS}/{persona_id}/labels/beta"
    assert (await client.put(target, json={"version": 2})).status_code == 200
    first = await client.get(target)
    tag = first.headers["etag"]
    unchanged = await client.get(target, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    assert (await client.put(target, json={"version": 3})).status_code == 200
    moved = await client.get(target, headers={"If-None-Match": tag})
    assert moved.status_code == 200
    assert moved.json()["version"] == 3


async def test_every_get_answers_an_etag_and_304_when_it_still_holds(
    client: httpx.AsyncClient,
) -> None:
    persona_id = await versions(client)
    await client.put(f"{PERSONAS}/{persona_id}/labels/beta", json={"version": 1})
    urls = {
        "getPersona": f"{PERSONAS}/{persona_id}",
        "getPersonaRevision": f"{PERSONAS}/{persona_id}/revisions/1",
        "listPersonaRevisions": f"{PERSONAS}/{persona_id}/revisions",
        "listPersonaLabels": f"{PERSONAS}/{persona_id}/labels",
        "getPersonaLabelTarget": f"{PERSONAS}/{persona_id}/labels/beta",
        "listPersonaLabelHistory": f"{PERSONAS}/{persona_id}/labels/beta/history",
        "listPersonas": f"{PERSONAS}?metadata.tags=prod",
        "listReleases": "/v1/releases?label=beta",
        "getPersonaDiff": f"/v1/personas/{persona_id}/diff?from=1&to=3",
        "metadataValues": "/v1/metadata/values?path=tags",
    }
    # exactly the operations the OpenAPI document says take If-None-Match and answer 304
    documented = {
        operation.operation_id: operation
        for resource in RESOURCES
        for operation in resource.methods.values()
        if IF_NONE_MATCH in operation.parameters
    }
    assert set(urls) == set(documented)
    for operation_id, url in urls.items():
        answer = await client.get(url)
        assert answer.status_code == 200, (url, answer.text)
        [etag] = [h for h in documented[operation_id].reply.headers if h.name == "ETag"]
        TypeAdapter(etag.shape).validate_python(answer.headers["etag"])  # its documented form
        again = await client.get(url, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304, url
        assert again.content == b""
        assert again.headers["etag"] == answer.headers["etag"]
    listing = await client.get(f"{PERSONAS}?metadata.tags=prod")
    await client.put(f"{PERSONAS}/{persona_id}", json={"name": "Renamed"})
    changed = await client.get(
        f"{PERSONAS}?metadata.tags=prod", headers={"If-None-Match": listing.headers["etag"]}
    )
    assert changed.status_code == 200
    assert changed.json()["data"][0]["name"] == "Renamed"


async def test_the_rest_diff_is_the_graphql_diff(client: httpx.AsyncClient) -> None:
    persona_id = await versions(client)
    answer = await client.get(f"{PERSONAS}/{persona_id}/diff", params={"from": 1, "to": 3})
    diff: dict[str, Any] = answer.json()
    old = (await client.get(f"{PERSONAS}/{persona_id}/revisions/1")).json()["metadata"]
    new = (await client.get(f"{PERSONAS}/{persona_id}/revisions/3")).json()["metadata"]
    assert jsonpatch.apply_patch(old, diff["metadata_patch"]) == new
    assert (diff["from"], diff["to"], diff["name"]) == (1, 3, None)
    assert "-v1" in diff["content_diff"]
    assert "+v3" in diff["content_diff"]
    query = """
    query($id: ID!) { personaDiff(id: $id, from: 1, to: 3) { contentDiff metadataPatch } }
    """
    graphql = await client.post("/graphql", json={"query": query, "variables": {"id": persona_id}})
    same = graphql.json()["data"]["personaDiff"]
    assert same == {"contentDiff": diff["content_diff"], "metadataPatch": diff["metadata_patch"]}
    await problem(await client.get(f"{PERSONAS}/{persona_id}/diff?from=1&to=9"), 404)
    await problem(await client.get(f"{PERSONAS}/{persona_id}/diff?from=0&to=1"), 400, "from")
    await problem(await client.get(f"{PERSONAS}/{persona_id}/diff?from=1"), 400, "to")


async def test_bad_label_requests_are_clear_and_write_nothing(client: httpx.AsyncClient) -> None:
    persona_id = await versions(client)
    labels = f"{PERSONAS}/{persona_id}/labels"
    await problem(await client.put(f"{labels}/latest", json={"version": 1}), 400, "label")
    await problem(await client.put(f"{labels}/Bad", json={"version": 1}), 400, "label")
    await problem(await client.put(f"{labels}/beta", json={"version": "1"}), 400, "version")
    await problem(await client.put(f"{labels}/beta", json={"version": 0}), 400, "version")
    await problem(await client.put(f"{labels}/beta", json={"v": 1}), 400, "body")
    await problem(await client.put(f"{labels}/beta", json={"version": 9}), 404)
    await problem(await client.delete(f"{labels}/beta"), 404)
    await problem(await client.get(f"{PERSONAS}/{'0' * 24}/labels"), 404)
    await problem(await client.get("/v1/releases"), 400, "label")
    await problem(await client.get("/v1/releases?label=beta&limit=0"), 400, "limit")
    history = await client.get(f"{labels}/beta/history")
    assert history.json() == {"data": [], "next_cursor": None}
