"""Revisions, optimistic concurrency and atomic metadata operations: nothing is lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from personas import domain
from personas.settings import Settings
from personas.store import PersonaStore
from tests.conftest import GraphQLClient

FIELDS = "id name content metadata version createdAt updatedAt"
CREATE = f"""
mutation($input: CreatePersonaInput!) {{ createPersona(input: $input) {{ {FIELDS} }} }}
"""
UPDATE = f"""
mutation($id: ID!, $input: UpdatePersonaInput!, $expected: Int) {{
  updatePersona(id: $id, input: $input, expectedVersion: $expected) {{ {FIELDS} }}
}}
"""
DELETE = "mutation($id: ID!, $expected: Int) { deletePersona(id: $id, expectedVersion: $expected) }"
ADD_TAGS = f"""
mutation($id: ID!, $tags: [String!]!, $expected: Int) {{
  addPersonaTags(id: $id, tags: $tags, expectedVersion: $expected) {{ {FIELDS} }}
}}
"""
REMOVE_TAGS = f"""
mutation($id: ID!, $tags: [String!]!, $expected: Int) {{
  removePersonaTags(id: $id, tags: $tags, expectedVersion: $expected) {{ {FIELDS} }}
}}
"""
SET = f"""
mutation($id: ID!, $path: String!, $value: JSON!, $expected: Int) {{
  setPersonaMetadata(id: $id, path: $path, value: $value, expectedVersion: $expected) {{
    {FIELDS}
  }}
}}
"""
UNSET = f"""
mutation($id: ID!, $path: String!, $expected: Int) {{
  unsetPersonaMetadata(id: $id, path: $path, expectedVersion: $expected) {{ {FIELDS} }}
}}
"""
RESTORE = f"""
mutation($id: ID!, $version: Int!, $expected: Int) {{
  restorePersonaRevision(id: $id, version: $version, expectedVersion: $expected) {{ {FIELDS} }}
}}
"""
REVISION_FIELDS = "personaId version name content metadata operation actor createdAt"
REVISIONS = f"""
query($id: ID!, $first: Int, $after: String) {{
  persona(id: $id) {{
    version
    revisions(first: $first, after: $after) {{
      nodes {{ {REVISION_FIELDS} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
REVISIONS_BY_ID = f"""
query($id: ID!, $first: Int) {{
  personaRevisions(id: $id, first: $first) {{ nodes {{ {REVISION_FIELDS} }} }}
}}
"""
REVISION = f"""
query($id: ID!, $version: Int!) {{
  personaRevision(id: $id, version: $version) {{ {REVISION_FIELDS} }}
}}
"""
GET = f"query($id: ID!) {{ persona(id: $id) {{ {FIELDS} }} }}"


async def create(gql: GraphQLClient, metadata: Any = None) -> dict[str, Any]:
    persona_input: dict[str, Any] = {"name": "Support Agent", "content": "You help."}
    if metadata is not None:
        persona_input["metadata"] = metadata
    created: dict[str, Any] = (await gql.data(CREATE, {"input": persona_input}))["createPersona"]
    return created


async def all_revisions(gql: GraphQLClient, persona_id: str) -> list[dict[str, Any]]:
    revisions: list[dict[str, Any]] = []
    after = None
    while True:
        data = await gql.data(REVISIONS, {"id": persona_id, "first": 3, "after": after})
        connection = data["persona"]["revisions"]
        revisions.extend(connection["nodes"])
        if not connection["pageInfo"]["hasNextPage"]:
            return revisions
        after = connection["pageInfo"]["endCursor"]


# -- no lost updates -----------------------------------------------------------------


async def test_concurrent_updates_with_the_same_expected_version_one_wins(
    gql: GraphQLClient,
) -> None:
    created = await create(gql)
    results = await asyncio.gather(
        *(
            gql.execute(
                UPDATE,
                {"id": created["id"], "input": {"content": f"edit {index}"}, "expected": 1},
            )
            for index in range(20)
        )
    )
    winners = [result for result in results if "errors" not in result]
    losers = [result["errors"][0] for result in results if "errors" in result]
    assert len(winners) == 1
    assert len(losers) == 19
    for error in losers:
        assert error["extensions"]["code"] == "CONFLICT"
        assert error["extensions"]["currentVersion"] == 2
    final = (await gql.data(GET, {"id": created["id"]}))["persona"]
    assert final["version"] == 2
    assert final["content"] == winners[0]["data"]["updatePersona"]["content"]
    revisions = await all_revisions(gql, created["id"])
    assert [revision["version"] for revision in revisions] == [2, 1]


CONCURRENT_WRITERS = 20
"""Concurrent writers to one persona. Every change of a tenant also takes the tenant's event
counter, so conflicting writers retry one after another; on a slow machine 50 of them ran
past the database time limit (README: The event log)."""


async def test_concurrent_tag_additions_are_all_kept(gql: GraphQLClient) -> None:
    created = await create(gql, {"tags": ["dev"]})
    tags = [f"tag-{index}" for index in range(CONCURRENT_WRITERS)]
    results = await asyncio.gather(
        *(gql.execute(ADD_TAGS, {"id": created["id"], "tags": [tag]}) for tag in tags)
    )
    assert all("errors" not in result for result in results)
    final = (await gql.data(GET, {"id": created["id"]}))["persona"]
    assert sorted(final["metadata"]["tags"]) == sorted(["dev", *tags])
    assert final["version"] == CONCURRENT_WRITERS + 1
    revisions = await all_revisions(gql, created["id"])
    assert [revision["version"] for revision in revisions] == list(
        range(CONCURRENT_WRITERS + 1, 0, -1)
    )
    assert {revision["operation"] for revision in revisions[:CONCURRENT_WRITERS]} == {"ADD_TAGS"}


@pytest.mark.parametrize(
    ("operation", "variables"),
    [
        (UPDATE, {"input": {"name": "x"}}),
        (ADD_TAGS, {"tags": ["prod"]}),
        (REMOVE_TAGS, {"tags": ["dev"]}),
        (SET, {"path": "status", "value": "approved"}),
        (UNSET, {"path": "tags"}),
        (RESTORE, {"version": 1}),
        (DELETE, {}),
    ],
)
async def test_a_stale_expected_version_conflicts_and_writes_nothing(
    gql: GraphQLClient, operation: str, variables: dict[str, Any]
) -> None:
    created = await create(gql, {"tags": ["dev"]})
    await gql.data(UPDATE, {"id": created["id"], "input": {"content": "second"}})
    error = await gql.error(operation, {"id": created["id"], "expected": 1, **variables})
    assert error["extensions"] == {"code": "CONFLICT", "currentVersion": 2}
    after = (await gql.data(GET, {"id": created["id"]}))["persona"]
    assert after["version"] == 2
    assert after["content"] == "second"
    assert after["metadata"] == {"tags": ["dev"]}
    assert len(await all_revisions(gql, created["id"])) == 2
    good = await gql.execute(operation, {"id": created["id"], "expected": 2, **variables})
    assert "errors" not in good, good


async def test_a_missing_persona_is_not_found_even_with_an_expected_version(
    gql: GraphQLClient,
) -> None:
    error = await gql.error(UPDATE, {"id": "0" * 24, "input": {"name": "x"}, "expected": 1})
    assert error["extensions"]["code"] == "NOT_FOUND"
    error = await gql.error(UPDATE, {"id": "0" * 24, "input": {"name": "x"}, "expected": 0})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "expectedVersion"}


# -- revisions -----------------------------------------------------------------------


async def test_each_change_is_a_revision_equal_to_what_the_api_returned(
    gql: GraphQLClient,
) -> None:
    steps = [await create(gql, {"tags": ["dev"]})]
    persona_id = steps[0]["id"]
    steps.append(
        (await gql.data(UPDATE, {"id": persona_id, "input": {"content": "v2"}}))["updatePersona"]
    )
    steps.append(
        (await gql.data(ADD_TAGS, {"id": persona_id, "tags": ["tested"]}))["addPersonaTags"]
    )
    steps.append(
        (
            await gql.data(
                SET, {"id": persona_id, "path": "deployment.environment", "value": "production"}
            )
        )["setPersonaMetadata"]
    )
    steps.append(
        (await gql.data(REMOVE_TAGS, {"id": persona_id, "tags": ["dev"]}))["removePersonaTags"]
    )
    steps.append(
        (await gql.data(UNSET, {"id": persona_id, "path": "deployment"}))["unsetPersonaMetadata"]
    )
    revisions = list(reversed(await all_revisions(gql, persona_id)))
    assert [revision["version"] for revision in revisions] == list(range(1, len(steps) + 1))
    for step, revision in zip(steps, revisions, strict=True):
        assert revision["version"] == step["version"]
        assert (revision["name"], revision["content"], revision["metadata"]) == (
            step["name"],
            step["content"],
            step["metadata"],
        )
        assert revision["personaId"] == persona_id
        assert revision["actor"] is None
    assert [revision["operation"] for revision in revisions] == [
        "CREATE",
        "UPDATE",
        "ADD_TAGS",
        "SET_METADATA",
        "REMOVE_TAGS",
        "UNSET_METADATA",
    ]
    restored = (await gql.data(RESTORE, {"id": persona_id, "version": 2}))["restorePersonaRevision"]
    assert restored["version"] == len(steps) + 1
    assert (restored["content"], restored["metadata"]) == (
        steps[1]["content"],
        steps[1]["metadata"],
    )
    newest = (await gql.data(REVISION, {"id": persona_id, "version": restored["version"]}))[
        "personaRevision"
    ]
    assert newest["operation"] == "RESTORE"
    assert (await gql.data(REVISION, {"id": persona_id, "version": 2}))["personaRevision"][
        "content"
    ] == "v2"


async def test_restoring_a_missing_version_is_not_found(gql: GraphQLClient) -> None:
    created = await create(gql)
    error = await gql.error(RESTORE, {"id": created["id"], "version": 7})
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_deleted_personas_keep_their_revisions(gql: GraphQLClient) -> None:
    created = await create(gql, {"tags": ["prod"]})
    await gql.data(UPDATE, {"id": created["id"], "input": {"name": "Renamed"}})
    await gql.data(DELETE, {"id": created["id"]})
    assert (await gql.data(GET, {"id": created["id"]}))["persona"] is None
    revisions = (await gql.data(REVISIONS_BY_ID, {"id": created["id"]}))["personaRevisions"]
    assert [(r["version"], r["operation"]) for r in revisions["nodes"]] == [
        (3, "DELETE"),
        (2, "UPDATE"),
        (1, "CREATE"),
    ]
    assert revisions["nodes"][0]["name"] == "Renamed"
    first = (await gql.data(REVISION, {"id": created["id"], "version": 1}))["personaRevision"]
    assert first["name"] == "Support Agent"


async def test_revision_cursor_of_another_persona_is_refused(gql: GraphQLClient) -> None:
    one = await create(gql)
    other = await create(gql)
    for _ in range(2):
        await gql.data(UPDATE, {"id": one["id"], "input": {"content": "again"}})
    page = await gql.data(REVISIONS, {"id": one["id"], "first": 1})
    cursor = page["persona"]["revisions"]["pageInfo"]["endCursor"]
    error = await gql.error(REVISIONS, {"id": other["id"], "after": cursor})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_a_change_whose_revision_cannot_be_written_is_not_kept(
    store: PersonaStore, settings: Settings
) -> None:
    """The persona and its revision commit together or not at all."""
    persona = await store.create(domain.ANONYMOUS, domain.new_persona("a", "b", {"tags": []}))
    assert settings.mongodb_uri is not None
    raw: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri)
    try:
        raw[settings.db_name]["persona_revisions"].insert_one(
            {"tenant": "default", "persona_id": ObjectId(persona.id), "version": 2}
        )
    finally:
        raw.close()
    with pytest.raises(Exception, match="duplicate key"):
        await store.add_tags(domain.ANONYMOUS, persona.id, ["prod"])
    kept = await store.get(domain.ANONYMOUS, persona.id)
    assert kept == persona


# -- atomic metadata operations --------------------------------------------------------


async def test_tags_are_added_uniquely_and_removed(gql: GraphQLClient) -> None:
    created = await create(gql)
    added = (await gql.data(ADD_TAGS, {"id": created["id"], "tags": ["dev", "prod", "dev"]}))[
        "addPersonaTags"
    ]
    assert added["metadata"] == {"tags": ["dev", "prod"]}
    again = (await gql.data(ADD_TAGS, {"id": created["id"], "tags": ["prod", "approved"]}))[
        "addPersonaTags"
    ]
    assert again["metadata"]["tags"] == ["dev", "prod", "approved"]
    removed = (await gql.data(REMOVE_TAGS, {"id": created["id"], "tags": ["dev", "missing"]}))[
        "removePersonaTags"
    ]
    assert removed["metadata"]["tags"] == ["prod", "approved"]


async def test_set_and_unset_nested_paths(gql: GraphQLClient) -> None:
    created = await create(gql, {"version": "1.0.0"})
    data = await gql.data(
        SET, {"id": created["id"], "path": "deployment.approved_by", "value": "lead@x.com"}
    )
    assert data["setPersonaMetadata"]["metadata"] == {
        "version": "1.0.0",
        "deployment": {"approved_by": "lead@x.com"},
    }
    data = await gql.data(SET, {"id": created["id"], "path": "version", "value": {"major": 2}})
    assert data["setPersonaMetadata"]["metadata"]["version"] == {"major": 2}
    data = await gql.data(UNSET, {"id": created["id"], "path": "deployment.approved_by"})
    assert data["unsetPersonaMetadata"]["metadata"] == {"version": {"major": 2}, "deployment": {}}


@pytest.mark.parametrize(
    ("operation", "variables", "field"),
    [
        (SET, {"path": "version.major", "value": 2}, "path"),
        (SET, {"path": "$where", "value": 1}, "path"),
        (SET, {"path": "a..b", "value": 1}, "path"),
        (SET, {"path": "ok", "value": {"$gt": 1}}, "value"),
        (SET, {"path": "ok", "value": {"a.b": 1}}, "value"),
        (SET, {"path": "ok", "value": "x" * 70_000}, "value"),
        (UNSET, {"path": "$x"}, "path"),
        (ADD_TAGS, {"tags": []}, "tags"),
        (ADD_TAGS, {"tags": [""]}, "tags.0"),
        (ADD_TAGS, {"tags": ["ok", "t" * 101]}, "tags.1"),
        (REMOVE_TAGS, {"tags": []}, "tags"),
    ],
)
async def test_invalid_metadata_operations_write_nothing(
    gql: GraphQLClient, operation: str, variables: dict[str, Any], field: str
) -> None:
    created = await create(gql, {"version": "1.0.0", "tags": ["dev"]})
    error = await gql.error(operation, {"id": created["id"], **variables})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert (await gql.data(GET, {"id": created["id"]}))["persona"] == created


async def test_tag_operations_on_a_non_list_are_refused(gql: GraphQLClient) -> None:
    created = await create(gql, {"tags": "prod"})
    for operation in (ADD_TAGS, REMOVE_TAGS):
        error = await gql.error(operation, {"id": created["id"], "tags": ["x"]})
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "tags"}
    assert (await gql.data(GET, {"id": created["id"]}))["persona"] == created


async def test_metadata_operations_on_a_persona_without_metadata(gql: GraphQLClient) -> None:
    tagged = await create(gql)
    data = await gql.data(ADD_TAGS, {"id": tagged["id"], "tags": ["dev"]})
    assert data["addPersonaTags"]["metadata"] == {"tags": ["dev"]}
    assigned = await create(gql)
    data = await gql.data(SET, {"id": assigned["id"], "path": "a.b", "value": [1]})
    assert data["setPersonaMetadata"]["metadata"] == {"a": {"b": [1]}}


async def test_growing_metadata_past_the_limit_is_refused(gql: GraphQLClient) -> None:
    created = await create(gql, {"blob": "x" * 40_000})
    error = await gql.error(SET, {"id": created["id"], "path": "more", "value": "y" * 40_000})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "metadata"}
    assert (await gql.data(GET, {"id": created["id"]}))["persona"] == created
