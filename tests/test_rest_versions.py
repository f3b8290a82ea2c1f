"""REST versioning: ETags, If-Match on writes (412), JSON merge patch, revisions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from personas import domain
from personas.rest import handlers as rest
from personas.store import PersonaStore
from tests.conftest import GraphQLClient, accepts, issue_key, keyed_client, problem

PERSONAS = "/v1/personas"
MERGE_PATCH = {"content-type": "application/merge-patch+json"}
REVISION_KEYS = {
    "persona_id",
    "version",
    "name",
    "content",
    "metadata",
    "operation",
    "actor",
    "created_at",
}


async def create(
    client: httpx.AsyncClient, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Support Agent", "content": "You help."}
    if metadata is not None:
        body["metadata"] = metadata
    response = await client.post(PERSONAS, json=body)
    assert response.status_code == 201, response.text
    persona: dict[str, Any] = response.json()
    return persona


async def patch(
    client: httpx.AsyncClient, url: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.patch(
        url, content=orjson.dumps(body), headers={**MERGE_PATCH, **(headers or {})}
    )


async def current(client: httpx.AsyncClient, persona_id: str) -> dict[str, Any]:
    response = await client.get(f"{PERSONAS}/{persona_id}")
    assert response.status_code == 200, response.text
    persona: dict[str, Any] = response.json()
    return persona


async def revisions(client: httpx.AsyncClient, persona_id: str) -> list[dict[str, Any]]:
    """Every revision of a persona, newest first (at most 100)."""
    response = await client.get(f"{PERSONAS}/{persona_id}/revisions?limit=100")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    items: list[dict[str, Any]] = body["data"]
    return items


async def unchanged(client: httpx.AsyncClient, persona: dict[str, Any]) -> None:
    """Nothing was written: the persona is as it was and has no newer revision."""
    assert await current(client, persona["id"]) == persona
    assert (await revisions(client, persona["id"]))[0]["version"] == persona["version"]


def etag(response: httpx.Response) -> str:
    value: str = response.headers["etag"]
    return value


# -- ETag --------------------------------------------------------------------------------


async def test_every_persona_response_carries_its_version_as_a_strong_etag(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(PERSONAS, json={"name": "A", "content": "c"})
    assert created.status_code == 201
    assert etag(created) == '"1"'
    url = f"{PERSONAS}/{created.json()['id']}"

    got = await client.get(url)
    assert etag(got) == '"1"'
    assert etag(await client.head(url)) == '"1"'

    put = await client.put(url, json={"name": "B"})
    assert put.status_code == 200
    assert etag(put) == '"2"' == f'"{put.json()["version"]}"'

    patched = await patch(client, url, {"name": "C"})
    assert patched.status_code == 200
    assert etag(patched) == '"3"' == f'"{patched.json()["version"]}"'
    assert etag(await client.get(url)) == '"3"'


async def test_deletions_and_errors_carry_no_etag(client: httpx.AsyncClient) -> None:
    persona = await create(client)
    assert "etag" not in (await client.get(f"{PERSONAS}/{'0' * 24}")).headers
    deleted = await client.delete(f"{PERSONAS}/{persona['id']}")
    assert deleted.status_code == 204
    assert "etag" not in deleted.headers


# -- If-Match ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], None),
        (["*"], None),
        ([" * "], None),
        (['"1"'], 1),
        (['"42"'], 42),
        ([' "7" '], 7),
    ],
)
def test_if_match_reads_one_strong_tag_or_star(raw: list[str], expected: int | None) -> None:
    assert rest.if_match(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        ['"1", "2"'],
        ['"1"', '"2"'],
        ['*, "1"'],
        ['W/"1"'],
        ["1"],
        ['"0"'],
        ['"01"'],
        ['"abc"'],
        ['"1'],
        [""],
        ['"1234567890123456789"'],
    ],
)
def test_if_match_refuses_lists_weak_tags_and_garbage(raw: list[str]) -> None:
    with pytest.raises(domain.InvalidInput) as caught:
        rest.if_match(raw)
    assert caught.value.field == "If-Match"


@pytest.mark.parametrize(
    "raw",
    [
        "*",
        '"1"',
        '"42"',
        '"999999999999999999"',
        '"1000000000000000000"',
        '"0"',
        '"01"',
        "1",
        'W/"1"',
        '"1", "2"',
        '*, "1"',
        "**",
        '"abc"',
        '"1',
        "",
    ],
)
def test_the_documented_if_match_pattern_is_the_rule(raw: str) -> None:
    accepted = accepts(lambda: rest.if_match([raw]))
    assert accepted == bool(re.fullmatch(rest.IF_MATCH_PATTERN, raw))


async def write(
    client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    if method == "PUT":
        return await client.put(url, json={"name": "Changed"}, headers=headers)
    if method == "PATCH":
        return await patch(client, url, {"name": "Changed"}, headers)
    return await client.delete(url, headers=headers)


WRITES = ["PUT", "PATCH", "DELETE"]


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("condition", ['"2"', "*"])
async def test_a_write_with_a_matching_if_match_goes_through(
    client: httpx.AsyncClient, method: str, condition: str
) -> None:
    persona = await create(client)
    url = f"{PERSONAS}/{persona['id']}"
    await client.put(url, json={"content": "Now at version 2."})
    response = await write(client, method, url, {"If-Match": condition})
    if method == "DELETE":
        assert response.status_code == 204
        assert (await client.get(url)).status_code == 404
        assert (await revisions(client, persona["id"]))[0]["operation"] == "delete"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Changed"
        assert response.json()["version"] == 3
        assert etag(response) == '"3"'


@pytest.mark.parametrize("method", WRITES)
async def test_a_write_with_a_stale_if_match_is_412_and_writes_nothing(
    client: httpx.AsyncClient, method: str
) -> None:
    persona = await create(client, {"tags": ["dev"]})
    url = f"{PERSONAS}/{persona['id']}"
    moved = (await client.put(url, json={"content": "Someone else's change."})).json()
    assert moved["version"] == 2
    response = await write(client, method, url, {"If-Match": '"1"'})
    body = await problem(response, 412)
    assert body["title"] == "Precondition Failed"
    assert body["current_version"] == 2
    assert "version 2" in body["detail"]
    await unchanged(client, moved)


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("condition", ['W/"1"', '"1", "2"', "1", '"v1"', "", '"0"'])
async def test_a_malformed_if_match_is_400_naming_it_and_writes_nothing(
    client: httpx.AsyncClient, method: str, condition: str
) -> None:
    persona = await create(client)
    url = f"{PERSONAS}/{persona['id']}"
    response = await write(client, method, url, {"If-Match": condition})
    await problem(response, 400, "If-Match")
    await unchanged(client, persona)


@pytest.mark.parametrize("method", WRITES)
async def test_two_if_match_headers_are_a_list_refused_with_400(
    client: httpx.AsyncClient, method: str
) -> None:
    persona = await create(client)
    url = f"{PERSONAS}/{persona['id']}"
    headers = [("If-Match", '"1"'), ("If-Match", '"1"')]
    if method == "PUT":
        request = client.build_request("PUT", url, json={"name": "Changed"}, headers=headers)
    elif method == "PATCH":
        request = client.build_request(
            "PATCH", url, content=b'{"name": "Changed"}', headers=[*headers, *MERGE_PATCH.items()]
        )
    else:
        request = client.build_request("DELETE", url, headers=headers)
    await problem(await client.send(request), 400, "If-Match")
    await unchanged(client, persona)


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("condition", [None, '"1"', "*"])
async def test_a_missing_persona_is_404_whatever_if_match_says(
    client: httpx.AsyncClient, method: str, condition: str | None
) -> None:
    headers = {} if condition is None else {"If-Match": condition}
    response = await write(client, method, f"{PERSONAS}/{'0' * 24}", headers)
    body = await problem(response, 404)
    assert "current_version" not in body


async def test_without_if_match_writes_go_through_as_before(client: httpx.AsyncClient) -> None:
    persona = await create(client)
    url = f"{PERSONAS}/{persona['id']}"
    assert (await client.put(url, json={"name": "One"})).json()["version"] == 2
    assert (await patch(client, url, {"name": "Two"})).json()["version"] == 3
    assert (await client.delete(url)).status_code == 204


async def test_if_match_agrees_with_graphql_expected_version(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    persona = await create(client)
    await client.put(f"{PERSONAS}/{persona['id']}", json={"name": "Moved on"})
    error = await gql.error(
        """mutation($id: ID!) {
          updatePersona(id: $id, input: {name: "Stale"}, expectedVersion: 1) { version }
        }""",
        {"id": persona["id"]},
    )
    assert error["extensions"]["code"] == "CONFLICT"
    response = await client.put(
        f"{PERSONAS}/{persona['id']}", json={"name": "Stale"}, headers={"If-Match": '"1"'}
    )
    body = await problem(response, 412)
    assert body["current_version"] == error["extensions"]["currentVersion"] == 2
    assert body["detail"] == error["message"]


async def test_a_conflict_other_than_a_stale_if_match_stays_409(
    client: httpx.AsyncClient, store: PersonaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    persona = await create(client)

    async def raced(*args: object, **kwargs: object) -> domain.Persona:
        raise domain.Conflict("persona changed meanwhile", current_version=None)

    monkeypatch.setattr(store, "patch", raced)
    url = f"{PERSONAS}/{persona['id']}"
    response = await patch(client, url, {"name": "X"}, {"If-Match": '"1"'})
    body = await problem(response, 409)
    assert "current_version" not in body


# -- PATCH: JSON merge patch ---------------------------------------------------------------

METADATA = {
    "tags": ["prod", "approved"],
    "status": "draft",
    "deployment": {"environment": "staging", "region": "eu", "replicas": 2},
}


async def test_a_merge_patch_changes_only_the_nested_keys_it_names(
    client: httpx.AsyncClient,
) -> None:
    persona = await create(client, METADATA)
    response = await patch(
        client,
        f"{PERSONAS}/{persona['id']}",
        {"metadata": {"deployment": {"environment": "production", "replicas": None}}},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["metadata"] == {
        "tags": ["prod", "approved"],
        "status": "draft",
        "deployment": {"environment": "production", "region": "eu"},
    }
    assert (patched["name"], patched["content"]) == (persona["name"], persona["content"])
    assert patched["version"] == 2
    assert await current(client, persona["id"]) == patched
    latest = (await revisions(client, persona["id"]))[0]
    assert (latest["version"], latest["operation"], latest["metadata"]) == (
        2,
        "patch",
        patched["metadata"],
    )


async def test_null_deletes_a_key_and_arrays_are_replaced_whole(client: httpx.AsyncClient) -> None:
    persona = await create(client, METADATA)
    response = await patch(
        client, f"{PERSONAS}/{persona['id']}", {"metadata": {"status": None, "tags": ["dev"]}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == {
        "tags": ["dev"],
        "deployment": METADATA["deployment"],
    }


async def test_metadata_null_clears_it(client: httpx.AsyncClient) -> None:
    persona = await create(client, METADATA)
    response = await patch(client, f"{PERSONAS}/{persona['id']}", {"metadata": None})
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] is None
    assert (await current(client, persona["id"]))["metadata"] is None


async def test_a_name_only_patch_leaves_content_and_metadata(client: httpx.AsyncClient) -> None:
    persona = await create(client, METADATA)
    response = await patch(client, f"{PERSONAS}/{persona['id']}", {"name": "  Renamed  "})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Renamed"
    assert (patched["content"], patched["metadata"]) == (persona["content"], METADATA)


async def test_a_patch_of_a_persona_without_metadata_builds_it(client: httpx.AsyncClient) -> None:
    persona = await create(client)
    response = await patch(
        client, f"{PERSONAS}/{persona['id']}", {"metadata": {"a": {"b": 1, "c": None}}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == {"a": {"b": 1}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "0" * 24}, "id"),
        ({"version": 3}, "version"),
        ([{"name": "x"}], "body"),
        ("name", "body"),
        (None, "body"),
        ({}, "input"),
        ({"name": None}, "name"),
        ({"content": "   "}, "content"),
        ({"metadata": {"$where": "1"}}, "metadata"),
        ({"metadata": {"deployment": {"a.b": 1}}}, "metadata.deployment"),
        ({"metadata": []}, "metadata"),
    ],
)
async def test_a_bad_merge_patch_is_400_and_writes_nothing(
    client: httpx.AsyncClient, body: object, field: str
) -> None:
    persona = await create(client, METADATA)
    response = await patch(client, f"{PERSONAS}/{persona['id']}", body)
    problem_body = await problem(response, 400)
    assert [error["field"] for error in problem_body["errors"]] == [field]
    await unchanged(client, persona)


async def test_a_patch_that_is_not_json_is_400(client: httpx.AsyncClient) -> None:
    persona = await create(client)
    response = await client.patch(
        f"{PERSONAS}/{persona['id']}", content=b'{"name": ', headers=MERGE_PATCH
    )
    await problem(response, 400, "body")
    await unchanged(client, persona)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json-patch+json", "application/ld+json"]
)
async def test_a_patch_in_another_json_media_type_is_415_naming_merge_patch(
    client: httpx.AsyncClient, content_type: str
) -> None:
    persona = await create(client)
    response = await client.patch(
        f"{PERSONAS}/{persona['id']}",
        content=b'{"name": "Changed"}',
        headers={"content-type": content_type},
    )
    body = await problem(response, 415)
    assert "application/merge-patch+json" in body["detail"]
    assert response.headers["accept-patch"] == "application/merge-patch+json"
    await unchanged(client, persona)


async def test_a_patch_without_a_body_or_media_type_is_415(client: httpx.AsyncClient) -> None:
    persona = await create(client)
    response = await client.patch(f"{PERSONAS}/{persona['id']}")
    body = await problem(response, 415)
    assert "application/merge-patch+json" in body["detail"]
    await unchanged(client, persona)


async def test_a_merge_patch_media_type_with_charset_is_taken(client: httpx.AsyncClient) -> None:
    persona = await create(client)
    response = await client.patch(
        f"{PERSONAS}/{persona['id']}",
        content=b'{"name": "Changed"}',
        headers={"content-type": "Application/Merge-Patch+JSON; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Changed"


# -- revisions ----------------------------------------------------------------------------


def parse_timestamp(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


async def seven_changes(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """A persona created and changed 7 times: what the API returned at each step."""
    steps = [await create(client, {"step": 0})]
    url = f"{PERSONAS}/{steps[0]['id']}"
    for step in range(1, 8):
        if step % 2:
            response = await client.put(url, json={"metadata": {"step": step}})
        else:
            response = await patch(client, url, {"name": f"Step {step}"})
        assert response.status_code == 200, response.text
        steps.append(response.json())
    return steps


def as_revision(persona: dict[str, Any]) -> dict[str, Any]:
    return {key: persona[key] for key in ("version", "name", "content", "metadata")}


async def test_revisions_page_newest_first_each_exactly_once(client: httpx.AsyncClient) -> None:
    steps = await seven_changes(client)
    persona_id = steps[0]["id"]
    seen: list[dict[str, Any]] = []
    pages: list[int] = []
    url = f"{PERSONAS}/{persona_id}/revisions?limit=3"
    cursor: str | None = None
    while True:
        response = await client.get(url if cursor is None else f"{url}&cursor={cursor}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data", "next_cursor"}
        pages.append(len(body["data"]))
        seen += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [3, 3, 2]
    assert [item["version"] for item in seen] == [8, 7, 6, 5, 4, 3, 2, 1]
    assert [as_revision(item) for item in seen] == [as_revision(step) for step in reversed(steps)]
    assert [item["operation"] for item in seen] == [*["update", "patch"] * 3, "update", "create"]
    for item in seen:
        assert set(item) == REVISION_KEYS
        assert item["persona_id"] == persona_id
        assert item["actor"] is None
    moments = [parse_timestamp(item["created_at"]) for item in seen]
    assert moments == sorted(moments, reverse=True)


async def test_a_revision_is_the_persona_as_that_change_left_it(
    client: httpx.AsyncClient,
) -> None:
    steps = await seven_changes(client)
    persona_id = steps[0]["id"]
    listed = await revisions(client, persona_id)
    for step in (steps[0], steps[3], steps[7]):
        response = await client.get(f"{PERSONAS}/{persona_id}/revisions/{step['version']}")
        assert response.status_code == 200, response.text
        revision = response.json()
        assert as_revision(revision) == as_revision(step)
        assert revision == next(item for item in listed if item["version"] == step["version"])
        assert response.headers["etag"] == f'"{step["version"]}"'


async def test_revisions_default_to_pages_of_20(client: httpx.AsyncClient) -> None:
    persona = await create(client)
    url = f"{PERSONAS}/{persona['id']}"
    for step in range(21):
        assert (await client.put(url, json={"metadata": {"n": step}})).status_code == 200
    body = (await client.get(f"{url}/revisions")).json()
    assert len(body["data"]) == 20
    assert body["data"][0]["version"] == 22
    rest_of = (await client.get(f"{url}/revisions?cursor={body['next_cursor']}")).json()
    assert [item["version"] for item in rest_of["data"]] == [2, 1]
    assert rest_of["next_cursor"] is None


async def test_rest_and_graphql_revision_cursors_are_the_same(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    steps = await seven_changes(client)
    persona_id = steps[0]["id"]
    first = (await client.get(f"{PERSONAS}/{persona_id}/revisions?limit=2")).json()
    data = await gql.data(
        """query($id: ID!, $after: String) {
          personaRevisions(id: $id, first: 2, after: $after) {
            nodes { version } pageInfo { endCursor }
          }
        }""",
        {"id": persona_id, "after": first["next_cursor"]},
    )
    assert [node["version"] for node in data["personaRevisions"]["nodes"]] == [6, 5]
    second = (
        await client.get(f"{PERSONAS}/{persona_id}/revisions?limit=2&cursor={first['next_cursor']}")
    ).json()
    assert [item["version"] for item in second["data"]] == [6, 5]
    assert second["next_cursor"] == data["personaRevisions"]["pageInfo"]["endCursor"]


async def test_a_deleted_personas_revisions_stay_readable(client: httpx.AsyncClient) -> None:
    persona = await create(client, METADATA)
    url = f"{PERSONAS}/{persona['id']}"
    renamed = (await patch(client, url, {"name": "Renamed"})).json()
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    listed = await revisions(client, persona["id"])
    assert [(item["version"], item["operation"]) for item in listed] == [
        (3, "delete"),
        (2, "patch"),
        (1, "create"),
    ]
    assert as_revision(listed[0]) == {**as_revision(renamed), "version": 3}
    first = await client.get(f"{url}/revisions/1")
    assert first.status_code == 200
    assert as_revision(first.json()) == as_revision(persona)


async def test_an_unknown_persona_has_no_revisions(client: httpx.AsyncClient) -> None:
    url = f"{PERSONAS}/{'0' * 24}/revisions"
    response = await client.get(url)
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}
    await problem(await client.get(f"{url}/1"), 404)


async def test_a_version_a_persona_never_had_is_404(client: httpx.AsyncClient) -> None:
    persona = await create(client)
    body = await problem(await client.get(f"{PERSONAS}/{persona['id']}/revisions/2"), 404)
    assert "version 2" in body["detail"]


@pytest.mark.parametrize("version", ["0", "-1", "abc", "1.0", "+1", "\u0661", "9" * 19, "9" * 400])
async def test_a_malformed_version_is_400(client: httpx.AsyncClient, version: str) -> None:
    persona = await create(client)
    await problem(
        await client.get(f"{PERSONAS}/{persona['id']}/revisions/{version}"), 400, "version"
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=1&limit=2", "limit"),
        ("first=2", "first"),
        ("metadata.tags=prod", "metadata.tags"),
        ("cursor=nonsense", "cursor"),
    ],
)
async def test_bad_revision_list_parameters_are_400(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    persona = await create(client)
    await problem(await client.get(f"{PERSONAS}/{persona['id']}/revisions?{query}"), 400, field)


async def test_a_cursor_of_another_personas_revisions_is_400(client: httpx.AsyncClient) -> None:
    one, other = await create(client), await create(client)
    for persona in (one, other):
        await client.put(f"{PERSONAS}/{persona['id']}", json={"name": "Two"})
    cursor = (await client.get(f"{PERSONAS}/{one['id']}/revisions?limit=1")).json()["next_cursor"]
    assert cursor is not None
    body = await problem(
        await client.get(f"{PERSONAS}/{other['id']}/revisions?cursor={cursor}"), 400, "cursor"
    )
    assert "revisions" in body["detail"]
    listing_cursor = (await client.get(f"{PERSONAS}?limit=1")).json()["next_cursor"]
    await problem(
        await client.get(f"{PERSONAS}/{one['id']}/revisions?cursor={listing_cursor}"), 400, "cursor"
    )


async def test_a_bad_id_on_revision_routes_is_400(client: httpx.AsyncClient) -> None:
    await problem(await client.get(f"{PERSONAS}/nope/revisions"), 400, "id")
    await problem(await client.get(f"{PERSONAS}/nope/revisions/1"), 400, "id")


# -- tenants ------------------------------------------------------------------------------


async def tenant_client(app: Starlette, tenant: str) -> tuple[httpx.AsyncClient, str]:
    key_id, token = await issue_key(app.state.store, tenant, "read", "write")
    return keyed_client(app, token), key_id


@pytest.fixture
async def tenants(
    secured: Starlette,
) -> AsyncIterator[tuple[httpx.AsyncClient, str, httpx.AsyncClient]]:
    """The acme tenant's client and key id, and the globex tenant's client."""
    acme, acme_key = await tenant_client(secured, "acme")
    globex, _ = await tenant_client(secured, "globex")
    async with acme, globex:
        yield acme, acme_key, globex


async def tenant_requests(
    http: httpx.AsyncClient, persona_id: str, if_match: str | None
) -> list[httpx.Response]:
    url = f"{PERSONAS}/{persona_id}"
    headers = {} if if_match is None else {"If-Match": if_match}
    return [
        await http.get(url),
        await http.get(f"{url}/revisions/1"),
        await http.put(url, json={"name": "Taken"}, headers=headers),
        await patch(http, url, {"metadata": None}, headers),
        await http.delete(url, headers=headers),
    ]


@pytest.mark.parametrize("if_match", [None, '"1"', '"2"', "*"])
async def test_another_tenants_persona_is_exactly_like_a_missing_one(
    tenants: tuple[httpx.AsyncClient, str, httpx.AsyncClient], if_match: str | None
) -> None:
    acme, acme_key, globex = tenants
    persona = await create(acme, METADATA)
    missing = "0" * 24
    theirs = await tenant_requests(globex, persona["id"], if_match)
    absent = await tenant_requests(globex, missing, if_match)
    for response, reference in zip(theirs, absent, strict=True):
        body = await problem(response, 404)
        expected = await problem(reference, 404)
        assert body == {**expected, "detail": expected["detail"].replace(missing, persona["id"])}
        assert "etag" not in response.headers
    listed = await globex.get(f"{PERSONAS}/{persona['id']}/revisions")
    assert listed.status_code == 200
    assert listed.json() == {"data": [], "next_cursor": None}
    own = await current(acme, persona["id"])
    assert own == persona
    own_revisions = await revisions(acme, persona["id"])
    assert [(item["version"], item["actor"]) for item in own_revisions] == [(1, acme_key)]


async def test_revisions_record_the_key_that_made_each_change(
    tenants: tuple[httpx.AsyncClient, str, httpx.AsyncClient],
) -> None:
    acme, acme_key, _ = tenants
    persona = await create(acme)
    url = f"{PERSONAS}/{persona['id']}"
    assert (await patch(acme, url, {"name": "B"}, {"If-Match": '"1"'})).status_code == 200
    assert (await acme.delete(url, headers={"If-Match": '"2"'})).status_code == 204
    listed = await revisions(acme, persona["id"])
    assert [(item["operation"], item["actor"]) for item in listed] == [
        ("delete", acme_key),
        ("patch", acme_key),
        ("create", acme_key),
    ]
