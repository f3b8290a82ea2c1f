"""The GraphQL API through HTTP: the contract client teams generate code from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from personas.graphql.schema import build_schema
from personas.settings import Settings
from personas.store import PersonaStore
from tests.conftest import GraphQLClient
from tests.examples import DESIGN_EXAMPLES, leaf_filters

PERSONA_FIELDS = "id name content metadata version createdAt updatedAt"
CREATE = f"""
mutation Create($input: CreatePersonaInput!) {{
  createPersona(input: $input) {{ {PERSONA_FIELDS} }}
}}
"""
UPDATE = f"""
mutation Update($id: ID!, $input: UpdatePersonaInput!) {{
  updatePersona(id: $id, input: $input) {{ {PERSONA_FIELDS} }}
}}
"""
DELETE = "mutation Delete($id: ID!) { deletePersona(id: $id) }"
GET = f"query Get($id: ID!) {{ persona(id: $id) {{ {PERSONA_FIELDS} }} }}"
LIST = """
query List($filter: [MetadataFilter!], $first: Int, $after: String) {
  personas(metadataFilter: $filter, first: $first, after: $after) {
    nodes { id name metadata }
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
COUNT = """
query Count($filter: [MetadataFilter!]) { personas(metadataFilter: $filter) { totalCount } }
"""


async def create(
    gql: GraphQLClient, name: str = "Support Agent", metadata: Any = None, **extra: Any
) -> dict[str, Any]:
    persona_input: dict[str, Any] = {"name": name, "content": "You are a helpful agent.", **extra}
    if metadata is not None:
        persona_input["metadata"] = metadata
    data = await gql.data(CREATE, {"input": persona_input})
    created: dict[str, Any] = data["createPersona"]
    return created


async def ids_matching(gql: GraphQLClient, *filters: dict[str, Any]) -> list[str]:
    data = await gql.data(LIST, {"filter": list(filters), "first": 100})
    return [node["id"] for node in data["personas"]["nodes"]]


async def total(gql: GraphQLClient) -> int:
    data = await gql.data(COUNT)
    count: int = data["personas"]["totalCount"]
    return count


# -- create / read / update / delete ------------------------------------------


async def test_create_returns_the_stored_persona(gql: GraphQLClient) -> None:
    metadata = {"tags": ["prod", "approved"], "version": "2.0.0"}
    created = await create(gql, name="  Support Agent v2  ", metadata=metadata)
    assert created["name"] == "Support Agent v2"
    assert created["metadata"] == metadata
    assert created["version"] == 1
    assert created["createdAt"] == created["updatedAt"]
    fetched = await gql.data(GET, {"id": created["id"]})
    assert fetched["persona"] == created


async def test_create_without_metadata_reads_null(gql: GraphQLClient) -> None:
    created = await create(gql)
    assert created["metadata"] is None


async def test_json_scalar_round_trips_any_json(gql: GraphQLClient) -> None:
    metadata = {
        "nested": {"deep": {"deeper": [1, 2.5, -3, {"x": None}]}},
        "unicode": "héllo wörld ✓ 日本語 🚀",
        "booleans": [True, False],
        "null": None,
        "empty": {},
        "emptyList": [],
        "big": 2**53,
        "negative": -(2**62),
        "float": 1e-9,
    }
    created = await create(gql, metadata=metadata)
    assert created["metadata"] == metadata
    fetched = await gql.data(GET, {"id": created["id"]})
    assert fetched["persona"]["metadata"] == metadata


async def test_update_changes_only_given_fields_and_bumps_version(gql: GraphQLClient) -> None:
    created = await create(gql, metadata={"tags": ["dev"]})
    data = await gql.data(UPDATE, {"id": created["id"], "input": {"content": "New prompt."}})
    updated = data["updatePersona"]
    assert updated["content"] == "New prompt."
    assert updated["name"] == created["name"]
    assert updated["metadata"] == {"tags": ["dev"]}
    assert updated["version"] == 2
    assert updated["updatedAt"] > created["updatedAt"]
    assert updated["createdAt"] == created["createdAt"]


async def test_update_metadata_replaces_the_whole_object(gql: GraphQLClient) -> None:
    created = await create(gql, metadata={"tags": ["dev"], "owner": "a@b.c"})
    replacement = {"tags": ["prod", "approved", "tested"], "version": "2.1.0"}
    data = await gql.data(UPDATE, {"id": created["id"], "input": {"metadata": replacement}})
    assert data["updatePersona"]["metadata"] == replacement
    assert await ids_matching(gql, {"path": "owner", "value": "a@b.c"}) == []


async def test_update_metadata_null_clears_it(gql: GraphQLClient) -> None:
    created = await create(gql, metadata={"tags": ["dev"]})
    data = await gql.data(UPDATE, {"id": created["id"], "input": {"metadata": None}})
    assert data["updatePersona"]["metadata"] is None
    assert data["updatePersona"]["version"] == 2


async def test_every_change_bumps_the_version(gql: GraphQLClient) -> None:
    created = await create(gql)
    for expected in range(2, 6):
        data = await gql.data(UPDATE, {"id": created["id"], "input": {"name": f"v{expected}"}})
        assert data["updatePersona"]["version"] == expected


async def test_delete_removes_the_persona(gql: GraphQLClient) -> None:
    created = await create(gql)
    data = await gql.data(DELETE, {"id": created["id"]})
    assert data["deletePersona"] == created["id"]
    assert (await gql.data(GET, {"id": created["id"]}))["persona"] is None


async def test_missing_persona_reads_null(gql: GraphQLClient) -> None:
    assert (await gql.data(GET, {"id": "0" * 24}))["persona"] is None


@pytest.mark.parametrize("operation", [UPDATE, DELETE])
async def test_changing_a_missing_persona_is_not_found(gql: GraphQLClient, operation: str) -> None:
    variables: dict[str, Any] = {"id": "0" * 24, "input": {"name": "x"}}
    if operation is DELETE:
        del variables["input"]
    error = await gql.error(operation, variables)
    assert error["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("operation", [GET, UPDATE, DELETE])
async def test_malformed_id_is_bad_user_input(gql: GraphQLClient, operation: str) -> None:
    variables: dict[str, Any] = {"id": "not-an-id", "input": {"name": "x"}}
    if operation is not UPDATE:
        del variables["input"]
    error = await gql.error(operation, variables)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}


async def test_persona_stored_before_metadata_existed_reads_null(
    gql: GraphQLClient, settings: Settings, store: PersonaStore
) -> None:
    assert settings.mongodb_uri is not None
    legacy: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        collection = legacy[settings.db_name]["personas"]
        moment = datetime(2024, 1, 1, tzinfo=UTC)
        result = collection.insert_one(
            {"name": "Legacy", "content": "Old prompt", "created_at": moment}
        )
    finally:
        legacy.close()
    assert await store.adopt_legacy_personas() == 3
    persona_id = str(result.inserted_id)
    fetched = (await gql.data(GET, {"id": persona_id}))["persona"]
    assert fetched["metadata"] is None
    assert fetched["version"] == 1
    assert persona_id in [node["id"] for node in (await gql.data(LIST))["personas"]["nodes"]]
    data = await gql.data(UPDATE, {"id": persona_id, "input": {"metadata": {"tags": ["prod"]}}})
    assert data["updatePersona"]["version"] == 2
    assert await ids_matching(gql, {"path": "tags", "value": "prod"}) == [persona_id]
    by_update = """
    query { personas(orderBy: [{field: UPDATED_AT, direction: DESC}], first: 1) {
      nodes { id } pageInfo { endCursor } } }
    """
    page = (await gql.data(by_update))["personas"]
    assert page["nodes"] == [{"id": persona_id}]
    assert page["pageInfo"]["endCursor"]


# -- metadataFilter -------------------------------------------------------------


async def test_every_design_example_is_found_by_each_of_its_paths(gql: GraphQLClient) -> None:
    created = {
        label: (await create(gql, name=label, metadata=metadata))["id"]
        for label, metadata in DESIGN_EXAMPLES.items()
    }
    for label, metadata in DESIGN_EXAMPLES.items():
        for path, value in leaf_filters(metadata):
            found = await ids_matching(gql, {"path": path, "value": value})
            assert created[label] in found, (label, path, value)
            others_have_it = [
                other
                for other, other_metadata in DESIGN_EXAMPLES.items()
                if any(item == (path, value) for item in leaf_filters(other_metadata))
            ]
            assert sorted(found) == sorted(created[other] for other in others_have_it)


async def test_tag_matches_array_membership_and_scalar(gql: GraphQLClient) -> None:
    listed = await create(gql, metadata={"tags": ["prod", "dev"]})
    scalar = await create(gql, metadata={"tags": "prod"})
    await create(gql, metadata={"tags": ["dev"]})
    await create(gql)
    found = await ids_matching(gql, {"path": "tags", "value": "prod"})
    assert found == [scalar["id"], listed["id"]]


async def test_filters_are_anded(gql: GraphQLClient) -> None:
    both = await create(gql, metadata={"status": "approved", "department": "support"})
    await create(gql, metadata={"status": "approved", "department": "sales"})
    await create(gql, metadata={"status": "draft", "department": "support"})
    found = await ids_matching(
        gql, {"path": "status", "value": "approved"}, {"path": "department", "value": "support"}
    )
    assert found == [both["id"]]


async def test_values_keep_their_json_type(gql: GraphQLClient) -> None:
    number = await create(gql, metadata={"performance": {"avg_rating": 4.2}})
    text = await create(gql, metadata={"performance": {"avg_rating": "4.2"}})
    flag = await create(gql, metadata={"tested": True})
    assert await ids_matching(gql, {"path": "performance.avg_rating", "value": 4.2}) == [
        number["id"]
    ]
    assert await ids_matching(gql, {"path": "performance.avg_rating", "value": "4.2"}) == [
        text["id"]
    ]
    assert await ids_matching(gql, {"path": "tested", "value": True}) == [flag["id"]]
    assert await ids_matching(gql, {"path": "tested", "value": "true"}) == []


async def test_object_value_matches_the_exact_sub_document(gql: GraphQLClient) -> None:
    exact = await create(gql, metadata={"deployment": {"environment": "production", "zone": "eu"}})
    await create(gql, metadata={"deployment": {"environment": "production"}})
    found = await ids_matching(
        gql, {"path": "deployment", "value": {"environment": "production", "zone": "eu"}}
    )
    assert found == [exact["id"]]


async def test_null_value_matches_null_and_missing(gql: GraphQLClient) -> None:
    explicit = await create(gql, metadata={"owner": None})
    missing = await create(gql, metadata={"tags": ["x"]})
    owned = await create(gql, metadata={"owner": "a@b.c"})
    found = await ids_matching(gql, {"path": "owner", "value": None})
    assert owned["id"] not in found
    assert {explicit["id"], missing["id"]} <= set(found)


async def test_operator_like_values_are_compared_not_executed(gql: GraphQLClient) -> None:
    await create(gql, metadata={"status": "approved"})
    for value in [{"$ne": None}, {"$gt": ""}, {"a": {"$where": "1"}}]:
        error = await gql.error(LIST, {"filter": [{"path": "status", "value": value}]})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"].startswith("metadataFilter.0.value")
    literal = {"where": "1"}
    assert await ids_matching(gql, {"path": "status", "value": literal}) == []


# -- pagination -----------------------------------------------------------------


async def walk(gql: GraphQLClient, first: int, filters: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        data = await gql.data(LIST, {"filter": filters, "first": first, "after": after})
        connection = data["personas"]
        seen.extend(node["id"] for node in connection["nodes"])
        assert [edge["node"]["id"] for edge in connection["edges"]] == [
            node["id"] for node in connection["nodes"]
        ]
        if connection["edges"]:
            assert connection["edges"][-1]["cursor"] == connection["pageInfo"]["endCursor"]
        if not connection["pageInfo"]["hasNextPage"]:
            assert len(connection["nodes"]) <= first
            return seen
        assert len(connection["nodes"]) == first
        after = connection["pageInfo"]["endCursor"]


async def test_pagination_over_250_personas_returns_each_once(
    gql: GraphQLClient, store: PersonaStore
) -> None:
    from personas import domain

    for index in range(250):
        tags = ["prod"] if index % 2 else ["dev"]
        await store.create(
            domain.ANONYMOUS, domain.new_persona(f"p{index}", "prompt", {"tags": tags})
        )
    everything = await walk(gql, 100, [])
    assert len(everything) == 250
    assert len(set(everything)) == 250
    assert await walk(gql, 7, []) == everything
    prod = await walk(gql, 20, [{"path": "tags", "value": "prod"}])
    assert len(prod) == 125
    assert prod == [persona_id for persona_id in everything if persona_id in set(prod)]


async def test_every_edge_cursor_resumes_right_after_its_node(gql: GraphQLClient) -> None:
    ids = [(await create(gql, name=f"p{index}"))["id"] for index in range(6)]
    first = (await gql.data(LIST, {"first": 6}))["personas"]
    assert [node["id"] for node in first["nodes"]] == ids[::-1]
    for index, edge in enumerate(first["edges"]):
        rest = (await gql.data(LIST, {"first": 6, "after": edge["cursor"]}))["personas"]
        assert [node["id"] for node in rest["nodes"]] == ids[::-1][index + 1 :]


async def test_pages_stay_exact_while_personas_are_created(gql: GraphQLClient) -> None:
    original = [(await create(gql, name=f"p{index}"))["id"] for index in range(30)]
    seen: list[str] = []
    after = None
    while True:
        data = await gql.data(LIST, {"first": 7, "after": after})
        seen.extend(node["id"] for node in data["personas"]["nodes"])
        if not data["personas"]["pageInfo"]["hasNextPage"]:
            break
        after = data["personas"]["pageInfo"]["endCursor"]
        await create(gql, name="created meanwhile")
    assert seen == list(reversed(original))


async def test_first_is_bounded(gql: GraphQLClient) -> None:
    for first in (0, 101, -1):
        error = await gql.error(LIST, {"first": first})
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}


async def test_cursor_from_another_filter_is_refused(gql: GraphQLClient) -> None:
    for _ in range(3):
        await create(gql, metadata={"tags": ["prod"]})
    page = await gql.data(LIST, {"first": 1})
    cursor = page["personas"]["pageInfo"]["endCursor"]
    error = await gql.error(
        LIST, {"first": 1, "after": cursor, "filter": [{"path": "tags", "value": "prod"}]}
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    for garbage in ("", "x", "e30", "WyJ4Il0"):
        error = await gql.error(LIST, {"after": garbage})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_total_count_is_computed_only_when_selected(
    gql: GraphQLClient, store: PersonaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(gql, metadata={"tags": ["prod"]})
    await create(gql, metadata={"tags": ["dev"]})
    calls: list[object] = []
    counted = store.count

    async def counting(*arguments: Any) -> int:
        calls.append(arguments)
        return await counted(*arguments)

    monkeypatch.setattr(store, "count", counting)
    await gql.data(LIST)
    assert calls == []
    data = await gql.data(COUNT, {"filter": [{"path": "tags", "value": "prod"}]})
    assert data["personas"]["totalCount"] == 1
    assert len(calls) == 1


# -- validation: each rule, nothing written --------------------------------------

LONG_KEY = "k" * 257


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


INVALID_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"name": "", "content": "x"}, "name"),
    ({"name": "   ", "content": "x"}, "name"),
    ({"name": "n" * 201, "content": "x"}, "name"),
    ({"name": "ok", "content": ""}, "content"),
    ({"name": "ok", "content": "c" * 100_001}, "content"),
    ({"name": "ok", "content": "x", "metadata": ["tags"]}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": "prod"}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": 3}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": {"blob": "x" * 65_536}}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": nested(21)}, "metadata" + ".n" * 20),
    ({"name": "ok", "content": "x", "metadata": {"": 1}}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": {LONG_KEY: 1}}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": {"$set": 1}}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": {"a.b": 1}}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": {"a\u0000b": 1}}, "metadata"),
    ({"name": "ok", "content": "x", "metadata": {"deep": {"$where": "1"}}}, "metadata.deep"),
    ({"name": "ok", "content": "x", "metadata": {"list": [{"$gt": 1}]}}, "metadata.list.0"),
    ({"name": "ok", "content": "x", "metadata": {"big": 2**63}}, "metadata.big"),
    ({"name": "bad \ud800", "content": "x"}, "name"),
    ({"name": "ok", "content": "\udfff"}, "content"),
    ({"name": "ok", "content": "x", "metadata": {"k": "\ud800"}}, "metadata.k"),
    ({"name": "ok", "content": "x", "metadata": {"\ud800": 1}}, "metadata"),
]


@pytest.mark.parametrize(("persona_input", "field"), INVALID_CREATES)
async def test_invalid_create_names_the_field_and_writes_nothing(
    gql: GraphQLClient, persona_input: dict[str, Any], field: str
) -> None:
    error = await gql.error(CREATE, {"input": persona_input})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert field in error["message"]
    assert await total(gql) == 0


async def test_limits_are_inclusive(gql: GraphQLClient) -> None:
    await create(gql, name="n" * 200, content="c" * 100_000)
    await create(gql, metadata=nested(20))
    await create(gql, metadata={"k" * 256: 1, "blob": "x" * 60_000})
    assert await total(gql) == 3


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"content": None}, "content"),
        ({"metadata": [1]}, "metadata"),
        ({"metadata": {"$inc": {"version": 1}}}, "metadata"),
        ({}, "input"),
    ],
)
async def test_invalid_update_writes_nothing(
    gql: GraphQLClient, changes: dict[str, Any], field: str
) -> None:
    created = await create(gql, metadata={"tags": ["dev"]})
    error = await gql.error(UPDATE, {"id": created["id"], "input": changes})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert (await gql.data(GET, {"id": created["id"]}))["persona"] == created


@pytest.mark.parametrize(
    ("metadata_filter", "field"),
    [
        ({"path": "", "value": 1}, "metadataFilter.0"),
        ({"path": "a..b", "value": 1}, "metadataFilter.0"),
        ({"path": ".a", "value": 1}, "metadataFilter.0"),
        ({"path": "$where", "value": 1}, "metadataFilter.0"),
        ({"path": "a.$ne", "value": 1}, "metadataFilter.0"),
        ({"path": "a\u0000b", "value": 1}, "metadataFilter.0"),
        ({"path": ".".join(["a"] * 17), "value": 1}, "metadataFilter.0"),
        ({"path": "k" * 257, "value": 1}, "metadataFilter.0"),
        ({"path": "a.\u00b9", "value": 1}, "metadataFilter.0"),
        ({"path": "a.\u2460", "value": 1}, "metadataFilter.0"),
        ({"path": "a.\ud800", "value": 1}, "metadataFilter.0"),
        ({"path": "a", "value": {"$ne": None}}, "metadataFilter.0.value"),
    ],
)
async def test_invalid_filter_is_refused(
    gql: GraphQLClient, metadata_filter: dict[str, Any], field: str
) -> None:
    error = await gql.error(LIST, {"filter": [metadata_filter]})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


async def test_at_most_twenty_filters(gql: GraphQLClient) -> None:
    filters = [{"path": f"k{index}", "value": index} for index in range(21)]
    error = await gql.error(LIST, {"filter": filters})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "metadataFilter"}
    assert await ids_matching(gql, *filters[:20]) == []


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ personas { nodes { id }", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ personas { nodes { nope } } }", {}, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_refused_documents_carry_a_code(
    gql: GraphQLClient, query: str, variables: dict[str, Any], code: str
) -> None:
    error = await gql.error(query, variables)
    assert error["extensions"]["code"] == code


# -- schema, indexes, GraphiQL -------------------------------------------------------


def test_exported_sdl_is_up_to_date() -> None:
    exported = Path(__file__).parent.parent / "schema.graphql"
    assert exported.read_text().strip() == build_schema().as_str().strip(), (
        "schema.graphql is out of date: run `make schema`"
    )


async def test_indexes_are_created_idempotently(store: PersonaStore, settings: Settings) -> None:
    await store.ensure_indexes()
    await store.ensure_indexes()
    keys = await store.index_keys()
    assert [("tenant", 1), ("created_at", -1), ("_id", -1)] in keys
    for path in ("tags", *settings.indexed_paths):
        assert [("tenant", 1), (f"metadata.{path}", 1), ("created_at", -1), ("_id", -1)] in keys


async def test_graphiql_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_graphiql_can_be_switched_off(settings: Settings) -> None:
    from personas.app import create_app

    app = create_app(settings.replace(graphiql=False))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        response = await http.get("/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in response.text.lower()
        await app.state.store.drop_database()
