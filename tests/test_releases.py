"""Releases over GraphQL: labels point at versions, edits never move them, protected labels
need approvers, and every move is in the history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonpatch
import pytest
from starlette.applications import Starlette

from personas import domain
from personas.app import create_app
from personas.domain import ANONYMOUS, FilterSpec, Operator
from personas.settings import Settings
from personas.store import PersonaStore
from tests.conftest import GraphQLClient, issue_key, keyed_client, plan_stages

CREATE = """
mutation($input: CreatePersonaInput!) { createPersona(input: $input) { id version } }
"""
UPDATE = """
mutation($id: ID!, $input: UpdatePersonaInput!) {
  updatePersona(id: $id, input: $input) { version }
}
"""
SET = """
mutation($id: ID!, $label: String!, $version: Int!, $from: Int) {
  setPersonaLabel(id: $id, label: $label, version: $version, fromVersion: $from) {
    name version setBy setAt
  }
}
"""
REMOVE = """
mutation($id: ID!, $label: String!, $from: Int) {
  removePersonaLabel(id: $id, label: $label, fromVersion: $from)
}
"""
BY_LABEL = """
query($id: ID!, $label: String, $version: Int) {
  personaRevision(id: $id, label: $label, version: $version) {
    version content metadata labels
  }
}
"""
RELEASES = """
query($label: String!, $filter: [MetadataFilter!], $first: Int, $after: String) {
  personaReleases(label: $label, metadataFilter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { personaId version metadata } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
HISTORY = """
query($id: ID!, $label: String, $first: Int, $after: String) {
  personaLabelHistory(id: $id, label: $label, first: $first, after: $after) {
    nodes { label fromVersion toVersion actor }
    pageInfo { hasNextPage endCursor }
  }
}
"""
PERSONA = "query($id: ID!) { persona(id: $id) { version tags labels { name version } } }"
DIFF = """
query($id: ID!, $from: Int!, $to: Int!) {
  personaDiff(id: $id, from: $from, to: $to) { from to name contentDiff metadataPatch }
}
"""


class Keyed(GraphQLClient):
    """A GraphQL client with one API key."""

    def __init__(self, app: Starlette, token: str) -> None:
        super().__init__(keyed_client(app, token))


@pytest.fixture
async def two_person(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings.replace(auth="required", approval="two-person"))
    async with application.router.lifespan_context(application):
        yield application
        await application.state.store.drop_database()


async def clients(app: Starlette) -> dict[str, Any]:
    store = app.state.store
    made: dict[str, Any] = {}
    for name, tenant, scopes in [
        ("author", "acme", ("read", "write")),
        ("approver", "acme", ("read", "write", "approve")),
        ("writer", "acme", ("read", "write")),
        ("other", "globex", ("read", "write", "approve")),
    ]:
        key_id, token = await issue_key(store, tenant, *scopes)
        made[name] = Keyed(app, token)
        made[name + "_id"] = key_id
    return made


async def three_versions(gql: GraphQLClient) -> str:
    created = await gql.data(
        CREATE,
        {"input": {"name": "Support", "content": "v1", "metadata": {"tags": ["dev"], "n": 1}}},
    )
    persona_id: str = created["createPersona"]["id"]
    metadata = {"tags": ["prod"], "n": 2, "owner": {"team": "a"}}
    await gql.data(UPDATE, {"id": persona_id, "input": {"content": "v2", "metadata": metadata}})
    return persona_id


async def test_the_release_workflow_end_to_end(secured: Starlette) -> None:
    keys = await clients(secured)
    author, approver = keys["author"], keys["approver"]
    persona_id = await three_versions(author)
    staging = await author.data(SET, {"id": persona_id, "label": "staging", "version": 2})
    assert staging["setPersonaLabel"]["name"] == "staging"
    assert staging["setPersonaLabel"]["setBy"] == keys["author_id"]
    production = await approver.data(SET, {"id": persona_id, "label": "production", "version": 2})
    assert production["setPersonaLabel"]["version"] == 2
    third = {"content": "v3", "metadata": {"tags": ["prod"], "n": 3}}
    await author.data(UPDATE, {"id": persona_id, "input": third})

    served = await author.data(BY_LABEL, {"id": persona_id, "label": "production"})
    assert served["personaRevision"]["version"] == 2
    assert served["personaRevision"]["content"] == "v2"
    assert served["personaRevision"]["metadata"]["n"] == 2
    assert served["personaRevision"]["labels"] == ["production", "staging"]
    latest = await author.data(BY_LABEL, {"id": persona_id, "label": "latest"})
    assert latest["personaRevision"]["version"] == 3
    assert latest["personaRevision"]["content"] == "v3"
    assert latest["personaRevision"]["labels"] == []

    filters = [{"path": "tags", "value": "prod"}]
    releases = await author.data(RELEASES, {"label": "production", "filter": filters})
    listed = releases["personaReleases"]
    assert listed["totalCount"] == 1
    assert [edge["node"]["metadata"]["n"] for edge in listed["edges"]] == [2]
    v2_only = [{"path": "n", "value": 3}]
    releases = await author.data(RELEASES, {"label": "production", "filter": v2_only})
    assert releases["personaReleases"]["edges"] == []

    persona = await author.data(PERSONA, {"id": persona_id})
    assert persona["persona"]["version"] == 3
    assert persona["persona"]["tags"] == ["prod"]
    assert persona["persona"]["labels"] == [
        {"name": "production", "version": 2},
        {"name": "staging", "version": 2},
    ]

    await approver.data(SET, {"id": persona_id, "label": "production", "version": 1, "from": 2})
    rolled = await author.data(BY_LABEL, {"id": persona_id, "label": "production"})
    assert rolled["personaRevision"]["content"] == "v1"
    history = await author.data(HISTORY, {"id": persona_id, "label": "production"})
    assert history["personaLabelHistory"]["nodes"] == [
        {"label": "production", "fromVersion": 2, "toVersion": 1, "actor": keys["approver_id"]},
        {"label": "production", "fromVersion": None, "toVersion": 2, "actor": keys["approver_id"]},
    ]
    everything = await author.data(HISTORY, {"id": persona_id, "first": 2})
    page = everything["personaLabelHistory"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await author.data(
        HISTORY, {"id": persona_id, "first": 2, "after": page["pageInfo"]["endCursor"]}
    )
    assert rest["personaLabelHistory"]["nodes"] == [
        {"label": "staging", "fromVersion": None, "toVersion": 2, "actor": keys["author_id"]}
    ]


async def test_a_write_only_key_cannot_touch_a_protected_label(secured: Starlette) -> None:
    keys = await clients(secured)
    persona_id = await three_versions(keys["author"])
    error = await keys["writer"].error(SET, {"id": persona_id, "label": "production", "version": 1})
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "approve" in error["message"]
    await keys["approver"].data(SET, {"id": persona_id, "label": "production", "version": 1})
    error = await keys["writer"].error(REMOVE, {"id": persona_id, "label": "production"})
    assert error["extensions"]["code"] == "FORBIDDEN"
    history = await keys["writer"].data(HISTORY, {"id": persona_id})
    assert len(history["personaLabelHistory"]["nodes"]) == 1


async def test_under_two_person_the_author_cannot_approve_their_own_version(
    two_person: Starlette,
) -> None:
    store = two_person.state.store
    _, token = await issue_key(store, "acme", "read", "write", "approve")
    _, second = await issue_key(store, "acme", "read", "write", "approve")
    author, reviewer = Keyed(two_person, token), Keyed(two_person, second)
    persona_id = await three_versions(author)
    error = await author.error(SET, {"id": persona_id, "label": "production", "version": 2})
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "second person" in error["message"]
    approved = await reviewer.data(SET, {"id": persona_id, "label": "production", "version": 2})
    assert approved["setPersonaLabel"]["version"] == 2
    unprotected = await author.data(SET, {"id": persona_id, "label": "staging", "version": 2})
    assert unprotected["setPersonaLabel"]["version"] == 2


async def test_anonymous_access_is_never_the_second_person(settings: Settings) -> None:
    application = create_app(settings.replace(approval="two-person"))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            gql = GraphQLClient(http)
            persona_id = await three_versions(gql)
            error = await gql.error(SET, {"id": persona_id, "label": "production", "version": 1})
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert "anonymous" in error["message"]
        await application.state.store.drop_database()


async def test_racing_moves_with_the_same_from_version_let_exactly_one_win(
    gql: GraphQLClient,
) -> None:
    persona_id = await three_versions(gql)
    await gql.data(SET, {"id": persona_id, "label": "canary", "version": 1})
    moves = [
        gql.execute(SET, {"id": persona_id, "label": "canary", "version": 2, "from": 1})
        for _ in range(20)
    ]
    answers = await asyncio.gather(*moves)
    won = [answer for answer in answers if "errors" not in answer]
    lost = [answer["errors"][0]["extensions"]["code"] for answer in answers if "errors" in answer]
    assert len(won) == 1
    assert lost == ["CONFLICT"] * 19
    history = await gql.data(HISTORY, {"id": persona_id, "label": "canary"})
    assert [node["toVersion"] for node in history["personaLabelHistory"]["nodes"]] == [2, 1]


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"label": "latest", "version": 1}, "BAD_USER_INPUT", "label"),
        ({"label": "Prod", "version": 1}, "BAD_USER_INPUT", "label"),
        ({"label": "x" * 65, "version": 1}, "BAD_USER_INPUT", "label"),
        ({"label": "beta", "version": 0}, "BAD_USER_INPUT", "version"),
        ({"label": "beta", "version": 9}, "NOT_FOUND", None),
        ({"label": "beta", "version": 1, "from": 1}, "CONFLICT", None),
    ],
)
async def test_bad_label_moves_are_refused_and_write_nothing(
    gql: GraphQLClient, variables: dict[str, Any], code: str, field: str | None
) -> None:
    persona_id = await three_versions(gql)
    error = await gql.error(SET, {"id": persona_id, **variables})
    assert error["extensions"]["code"] == code
    if field is not None:
        assert error["extensions"]["field"] == field
    history = await gql.data(HISTORY, {"id": persona_id})
    assert history["personaLabelHistory"]["nodes"] == []


async def test_a_persona_carries_at_most_20_labels(gql: GraphQLClient) -> None:
    persona_id = await three_versions(gql)
    for index in range(20):
        await gql.data(SET, {"id": persona_id, "label": f"l{index}", "version": 1})
    error = await gql.error(SET, {"id": persona_id, "label": "l20", "version": 1})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "label"}
    moved = await gql.data(SET, {"id": persona_id, "label": "l3", "version": 2})
    assert moved["setPersonaLabel"]["version"] == 2


async def test_exactly_one_of_version_and_label(gql: GraphQLClient) -> None:
    persona_id = await three_versions(gql)
    for variables in ({}, {"version": 1, "label": "latest"}):
        error = await gql.error(BY_LABEL, {"id": persona_id, **variables})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    unset = await gql.data(BY_LABEL, {"id": persona_id, "label": "production"})
    assert unset["personaRevision"] is None
    error = await gql.error(BY_LABEL, {"id": persona_id, "version": 0})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "version"}


async def test_deleting_a_persona_removes_its_labels_but_keeps_their_history(
    gql: GraphQLClient,
) -> None:
    persona_id = await three_versions(gql)
    await gql.data(SET, {"id": persona_id, "label": "beta", "version": 2})
    await gql.data("mutation($id: ID!) { deletePersona(id: $id) }", {"id": persona_id})
    gone = await gql.data(RELEASES, {"label": "beta"})
    assert gone["personaReleases"]["totalCount"] == 0
    history = await gql.data(HISTORY, {"id": persona_id})
    assert [node["toVersion"] for node in history["personaLabelHistory"]["nodes"]] == [None, 2]
    revision = await gql.data(BY_LABEL, {"id": persona_id, "version": 2})
    assert revision["personaRevision"]["content"] == "v2"


async def test_releases_page_through_every_labelled_persona_once(gql: GraphQLClient) -> None:
    ids = []
    for index in range(7):
        created = await gql.data(
            CREATE, {"input": {"name": f"P{index}", "content": "c", "metadata": {"tags": ["prod"]}}}
        )
        ids.append(created["createPersona"]["id"])
        await gql.data(SET, {"id": ids[-1], "label": "beta", "version": 1})
    seen: list[str] = []
    after = None
    while True:
        found = await gql.data(RELEASES, {"label": "beta", "first": 3, "after": after})
        page = found["personaReleases"]
        seen += [edge["node"]["personaId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(ids))


async def test_the_diff_applied_to_the_old_metadata_gives_the_new(gql: GraphQLClient) -> None:
    persona_id = await three_versions(gql)
    await gql.data(
        UPDATE,
        {"id": persona_id, "input": {"name": "Support v3", "metadata": {"tags": ["prod", "x"]}}},
    )
    old = await gql.data(BY_LABEL, {"id": persona_id, "version": 1})
    new = await gql.data(BY_LABEL, {"id": persona_id, "version": 3})
    found = await gql.data(DIFF, {"id": persona_id, "from": 1, "to": 3})
    changes = found["personaDiff"]
    assert (changes["from"], changes["to"]) == (1, 3)
    assert changes["name"] == ["Support", "Support v3"]
    assert changes["contentDiff"].startswith("--- v1\n+++ v3\n")
    patched = jsonpatch.apply_patch(old["personaRevision"]["metadata"], changes["metadataPatch"])
    assert patched == new["personaRevision"]["metadata"]
    same = await gql.data(DIFF, {"id": persona_id, "from": 3, "to": 3})
    assert same["personaDiff"] == {
        "from": 3,
        "to": 3,
        "name": None,
        "contentDiff": None,
        "metadataPatch": [],
    }
    missing = await gql.data(DIFF, {"id": persona_id, "from": 1, "to": 9})
    assert missing["personaDiff"] is None


async def test_other_tenants_see_no_labels(secured: Starlette) -> None:
    keys = await clients(secured)
    persona_id = await three_versions(keys["author"])
    await keys["approver"].data(SET, {"id": persona_id, "label": "production", "version": 2})
    other = keys["other"]
    assert (await other.data(BY_LABEL, {"id": persona_id, "label": "production"})) == {
        "personaRevision": None
    }
    listed = await other.data(RELEASES, {"label": "production"})
    assert listed["personaReleases"]["totalCount"] == 0
    error = await other.error(SET, {"id": persona_id, "label": "production", "version": 1})
    assert error["extensions"]["code"] == "NOT_FOUND"
    history = await other.data(HISTORY, {"id": persona_id})
    assert history["personaLabelHistory"]["nodes"] == []


@pytest.mark.parametrize(
    "spec",
    [
        FilterSpec("tags", "prod"),
        FilterSpec("tags", ["prod", "rare"], Operator.IN),
        FilterSpec("status", "approved"),
    ],
)
async def test_a_release_listing_reads_only_labelled_versions_through_an_index(
    store: PersonaStore, spec: FilterSpec
) -> None:
    for index in range(120):
        metadata = {"tags": ["prod"] if index % 4 == 0 else ["dev"], "status": "approved"}
        created = await store.create(ANONYMOUS, domain.new_persona(f"p{index}", "c", metadata))
        for _ in range(2):
            await store.update(ANONYMOUS, created.id, domain.persona_changes(content="edited"))
        if index % 3 == 0:
            await store.labels.set(ANONYMOUS, created.id, "production", 1)
    query = domain.persona_query(all_of=[spec])
    explained = await store.labels.explain_releases(ANONYMOUS, "production", query)
    assert "IXSCAN" in plan_stages(explained["queryPlanner"]["winningPlan"])
    stats = explained["executionStats"]
    assert stats["nReturned"] > 0
    assert stats["totalDocsExamined"] <= 2 * stats["nReturned"] + 2, stats
    assert stats["nReturned"] == await store.labels.count_releases(ANONYMOUS, "production", query)
