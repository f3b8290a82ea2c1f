"""The REST API: the original design's requests, the query-string language, and parity with
GraphQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import GraphQLClient
from tests.examples import DESIGN_EXAMPLES

PERSONA_KEYS = {"id", "name", "content", "metadata", "version", "created_at", "updated_at"}


async def create(
    client: httpx.AsyncClient, name: str, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "content": f"You are {name}."}
    if metadata is not None:
        body["metadata"] = metadata
    response = await client.post("/v1/personas", json=body)
    assert response.status_code == 201, response.text
    persona: dict[str, Any] = response.json()
    return persona


async def names(client: httpx.AsyncClient, query: str) -> list[str]:
    """Names of every persona the listing `query` finds, in order (at most 100)."""
    separator = "&" if query else ""
    response = await client.get(f"/v1/personas?{query}{separator}limit=100")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return [item["name"] for item in body["data"]]


async def seed_design_examples(client: httpx.AsyncClient) -> None:
    for name, metadata in DESIGN_EXAMPLES.items():
        await create(client, name, metadata)


def parse_timestamp(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


# -- the original design's requests, in order ----------------------------------------


async def test_create_with_metadata(client: httpx.AsyncClient) -> None:
    body = {
        "name": "Support Agent v2",
        "content": "You are a helpful support agent...",
        "metadata": {
            "tags": ["prod", "approved"],
            "version": "2.0.0",
            "status": "production",
            "department": "customer_success",
        },
    }
    response = await client.post("/v1/personas", json=body)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    persona = response.json()
    assert set(persona) == PERSONA_KEYS
    assert response.headers["location"] == f"/v1/personas/{persona['id']}"
    assert {key: persona[key] for key in body} == body
    assert persona["version"] == 1
    created = parse_timestamp(persona["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert persona["updated_at"] == persona["created_at"]

    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == persona


async def test_filter_by_tag(client: httpx.AsyncClient) -> None:
    await seed_design_examples(client)
    found = await names(client, "metadata.tags=prod")
    assert sorted(found) == ["creation request", "structured", "version management"]


async def test_filter_by_several_criteria(client: httpx.AsyncClient) -> None:
    await create(client, "both", {"status": "approved", "department": "support"})
    await create(client, "other department", {"status": "approved", "department": "sales"})
    await create(client, "other status", {"status": "draft", "department": "support"})
    await create(client, "neither")
    found = await names(client, "metadata.status=approved&metadata.department=support")
    assert found == ["both"]


async def test_filter_by_version(client: httpx.AsyncClient) -> None:
    await seed_design_examples(client)
    found = await names(client, "metadata.version=2.0.0")
    assert sorted(found) == ["creation request", "version management"]


async def test_update_metadata_with_put(client: httpx.AsyncClient) -> None:
    created = await create(client, "Support Agent v2", DESIGN_EXAMPLES["creation request"])
    metadata = {
        "tags": ["prod", "approved", "tested"],
        "version": "2.1.0",
        "last_tested": "2025-01-15T14:30:00Z",
    }
    response = await client.put(f"/v1/personas/{created['id']}", json={"metadata": metadata})
    assert response.status_code == 200
    updated = response.json()
    assert updated["metadata"] == metadata, "metadata is replaced as a whole"
    assert (updated["name"], updated["content"]) == (created["name"], created["content"])
    assert updated["version"] == 2
    assert updated["created_at"] == created["created_at"]
    assert parse_timestamp(updated["updated_at"]) >= parse_timestamp(created["updated_at"])
    assert (await client.get(f"/v1/personas/{created['id']}")).json() == updated
    assert await names(client, "metadata.tags=tested") == ["Support Agent v2"]
    assert await names(client, "metadata.status=production") == []


async def test_put_replaces_only_the_fields_given(client: httpx.AsyncClient) -> None:
    created = await create(client, "Agent", {"tags": ["dev"]})
    url = f"/v1/personas/{created['id']}"
    renamed = (await client.put(url, json={"name": "  Renamed  "})).json()
    assert renamed["name"] == "Renamed"
    assert renamed["metadata"] == {"tags": ["dev"]}
    assert renamed["content"] == created["content"]

    cleared = (await client.put(url, json={"metadata": None})).json()
    assert cleared["metadata"] is None
    assert cleared["version"] == 3
    assert await names(client, "metadata.tags=dev") == []


async def test_delete(client: httpx.AsyncClient) -> None:
    created = await create(client, "Doomed")
    response = await client.delete(f"/v1/personas/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/v1/personas/{created['id']}")).status_code == 404
    assert await names(client, "") == []


# -- the query-string language -----------------------------------------------------------


async def test_nested_path(client: httpx.AsyncClient) -> None:
    await seed_design_examples(client)
    assert await names(client, "metadata.deployment.environment=production") == ["structured"]
    assert await names(client, "metadata.integrations.jira.project_key=PROJ-123") == [
        "integration metadata"
    ]


async def test_a_number_like_value_matches_the_number_and_the_string(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "number", {"performance": {"usage_count": 150}})
    await create(client, "string", {"performance": {"usage_count": "150"}})
    await create(client, "other", {"performance": {"usage_count": 151}})
    await create(client, "float", {"performance": {"usage_count": 150.0}})
    found = await names(client, "metadata.performance.usage_count=150")
    assert sorted(found) == ["float", "number", "string"]
    assert await names(client, "metadata.performance.usage_count=151") == ["other"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("metadata.tested=false", ["false", "false string"]),
        ("metadata.tested=true", ["true", "true string"]),
        ("metadata.tested=null", ["missing", "null", "null string"]),
        ("metadata.tested=False", []),
        ("metadata.tested=yes", ["yes"]),
    ],
)
async def test_true_false_and_null_match_the_json_value_and_the_string(
    client: httpx.AsyncClient, query: str, expected: list[str]
) -> None:
    values: dict[str, Any] = {
        "false": False,
        "false string": "false",
        "true": True,
        "true string": "true",
        "null": None,
        "null string": "null",
        "yes": "yes",
    }
    for name, value in values.items():
        await create(client, name, {"tested": value})
    await create(client, "missing", {"other": 1})
    assert sorted(await names(client, query)) == expected


async def test_the_same_key_twice_must_match_both(client: httpx.AsyncClient) -> None:
    await create(client, "both", {"tags": ["prod", "approved"]})
    await create(client, "prod only", {"tags": ["prod"]})
    await create(client, "approved only", {"tags": ["approved"]})
    assert await names(client, "metadata.tags=prod&metadata.tags=approved") == ["both"]


async def test_pagination_returns_every_persona_exactly_once(client: httpx.AsyncClient) -> None:
    created = [(await create(client, f"Persona {index:02d}"))["id"] for index in range(45)]
    seen: list[str] = []
    sizes: list[int] = []
    url = "/v1/personas?limit=10"
    cursor: str | None = None
    while True:
        response = await client.get(url if cursor is None else f"{url}&cursor={cursor}")
        assert response.status_code == 200
        body = response.json()
        sizes.append(len(body["data"]))
        seen += [item["id"] for item in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sizes == [10, 10, 10, 10, 5]
    assert seen == list(reversed(created)), "newest first, each exactly once"
    default = (await client.get("/v1/personas")).json()
    assert len(default["data"]) == 20
    assert default["next_cursor"] is not None


async def test_pagination_under_a_filter_and_a_sort(client: httpx.AsyncClient) -> None:
    for index in range(30):
        await create(client, f"P{index:02d}", {"tags": ["even" if index % 2 == 0 else "odd"]})
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"metadata.tags": "even", "sort": "-name", "limit": "4"}
        if cursor is not None:
            params["cursor"] = cursor
        body = (await client.get("/v1/personas", params=params)).json()
        seen += [item["name"] for item in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"P{index:02d}" for index in range(28, -1, -2)]


OPERATOR_ROWS: dict[str, dict[str, Any] | None] = {
    "a": {"n": 1, "s": "alpha", "tags": ["x", "y"]},
    "b": {"n": 5, "s": "beta", "tags": ["y"]},
    "c": {"n": "5", "s": "alpine", "tags": ["z"]},
    "d": {"n": 10},
    "e": None,
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("metadata.s[eq]=beta", "b"),
        ("metadata.s[ne]=alpha", "bcde"),
        ("metadata.n[ne]=5", "ade"),
        ("metadata.s[in]=alpha,beta", "ab"),
        ("metadata.n[in]=1,5", "abc"),
        ("metadata.tags[in]=x,z", "ac"),
        ("metadata.n[nin]=5,10", "ae"),
        ("metadata.tags[all]=x,y", "a"),
        ("metadata.tags[all]=y", "ab"),
        ("metadata.n[all]=5", "bc"),
        ("metadata.s[exists]=true", "abc"),
        ("metadata.s[exists]=false", "de"),
        ("metadata.n[gt]=4", "bd"),
        ("metadata.n[gte]=5", "bd"),
        ("metadata.n[lt]=5", "a"),
        ("metadata.n[lte]=5", "ab"),
        ("metadata.s[gt]=alpine", "b"),
        ("metadata.s[lt]=alpine", "a"),
        ("metadata.s[prefix]=alp", "ac"),
        ("metadata.s[prefix]=alp&metadata.n[gt]=0", "a"),
    ],
)
async def test_operators(client: httpx.AsyncClient, query: str, expected: str) -> None:
    for name, metadata in OPERATOR_ROWS.items():
        await create(client, name, metadata)
    assert "".join(sorted(await names(client, query))) == expected


async def test_q_searches_names(client: httpx.AsyncClient) -> None:
    await create(client, "Support Agent v2", {"tags": ["prod"]})
    await create(client, "Sales Agent", {"tags": ["prod"]})
    await create(client, "customer SUPPORT bot", {"tags": ["dev"]})
    assert sorted(await names(client, "q=support")) == ["Support Agent v2", "customer SUPPORT bot"]
    assert await names(client, "q=support&metadata.tags=prod") == ["Support Agent v2"]
    assert await names(client, "q=%20agent%20&sort=name") == ["Sales Agent", "Support Agent v2"]


async def test_sort(client: httpx.AsyncClient) -> None:
    await create(client, "b-2025-01-15 older", {"last_tested": "2025-01-15"})
    await create(client, "c-2025-01-10", {"last_tested": "2025-01-10"})
    await create(client, "a-2025-01-15 newer", {"last_tested": "2025-01-15"})
    await create(client, "d-never tested")
    assert await names(client, "sort=metadata.last_tested,-created_at") == [
        "d-never tested",
        "c-2025-01-10",
        "a-2025-01-15 newer",
        "b-2025-01-15 older",
    ]
    assert await names(client, "sort=-metadata.last_tested,created_at") == [
        "b-2025-01-15 older",
        "a-2025-01-15 newer",
        "c-2025-01-10",
        "d-never tested",
    ]
    ascending = await names(client, "sort=name")
    assert ascending == sorted(ascending)
    assert await names(client, "sort=-name") == list(reversed(ascending))
    assert await names(client, "sort=created_at") == list(reversed(await names(client, "")))
    assert await names(client, "sort=-updated_at") == await names(client, "")


async def test_metadata_values(client: httpx.AsyncClient) -> None:
    await seed_design_examples(client)
    response = await client.get("/v1/metadata/values", params={"path": "tags"})
    assert response.status_code == 200
    counts = response.json()["data"]
    assert counts[:3] == [
        {"value": "approved", "count": 3},
        {"value": "prod", "count": 3},
        {"value": "dev", "count": 2},
    ]
    assert {row["value"] for row in counts} >= {"experiment", "multilingual", "team-alpha"}

    filtered = await client.get("/v1/metadata/values?path=tags&metadata.status=production&limit=1")
    assert filtered.json() == {"data": [{"value": "approved", "count": 2}]}

    nested = await client.get("/v1/metadata/values?path=performance.usage_count")
    assert nested.json() == {"data": [{"value": 150, "count": 1}]}


# -- REST and GraphQL agree ---------------------------------------------------------------

GRAPHQL_LIST = """
query List($filter: [MetadataFilter!], $search: String, $order: [PersonaOrder!],
           $first: Int, $after: String) {
  personas(metadataFilter: $filter, search: $search, orderBy: $order, first: $first,
           after: $after) {
    nodes { id }
    pageInfo { endCursor hasNextPage }
  }
}
"""


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("metadata.tags=prod", {"filter": [{"path": "tags", "value": "prod"}]}),
        (
            "metadata.deployment.environment=production",
            {"filter": [{"path": "deployment.environment", "value": "production"}]},
        ),
        (
            "metadata.performance.usage_count=150",
            {"filter": [{"path": "performance.usage_count", "op": "IN", "value": [150, "150"]}]},
        ),
        (
            "metadata.tags=prod&metadata.tags=approved",
            {
                "filter": [
                    {"path": "tags", "value": "prod"},
                    {"path": "tags", "value": "approved"},
                ]
            },
        ),
        (
            "metadata.version[prefix]=2.&sort=-name",
            {
                "filter": [{"path": "version", "op": "PREFIX", "value": "2."}],
                "order": [{"field": "NAME", "direction": "DESC"}],
            },
        ),
        (
            "metadata.tags[nin]=dev,prod&sort=metadata.version,created_at",
            {
                "filter": [{"path": "tags", "op": "NIN", "value": ["dev", "prod"]}],
                "order": [
                    {"field": "METADATA", "path": "version"},
                    {"field": "CREATED_AT"},
                ],
            },
        ),
        ("q=agent", {"search": "agent"}),
        ("", {}),
    ],
)
async def test_rest_and_graphql_find_the_same_personas(
    client: httpx.AsyncClient, gql: GraphQLClient, query: str, variables: dict[str, Any]
) -> None:
    await seed_design_examples(client)
    await create(client, "Agent with usage as text", {"performance": {"usage_count": "150"}})
    await create(client, "Sales agent", {"tags": ["prod"], "version": "2.0.1"})
    rest = await client.get(f"/v1/personas?{query}")
    assert rest.status_code == 200, rest.text
    data = await gql.data(GRAPHQL_LIST, variables)
    graphql_ids = [node["id"] for node in data["personas"]["nodes"]]
    assert [item["id"] for item in rest.json()["data"]] == graphql_ids
    assert graphql_ids, "the comparison means something only when something is found"


async def test_rest_and_graphql_share_cursors(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    for index in range(7):
        await create(client, f"P{index}", {"tags": ["prod"]})
    first = (await client.get("/v1/personas?metadata.tags=prod&limit=3")).json()
    variables = {"filter": [{"path": "tags", "value": "prod"}], "first": 3}
    graphql_first = (await gql.data(GRAPHQL_LIST, variables))["personas"]
    assert first["next_cursor"] == graphql_first["pageInfo"]["endCursor"]

    after = {**variables, "after": first["next_cursor"]}
    graphql_second = (await gql.data(GRAPHQL_LIST, after))["personas"]
    rest_second = await client.get(
        "/v1/personas", params={"metadata.tags": "prod", "limit": 3, "cursor": first["next_cursor"]}
    )
    assert [item["id"] for item in rest_second.json()["data"]] == [
        node["id"] for node in graphql_second["nodes"]
    ]
