"""Persona.tags: metadata.tags as a typed list."""

from __future__ import annotations

from typing import Any

import pytest

from personas.domain import tags_of
from tests.conftest import GraphQLClient


@pytest.mark.parametrize(
    ("metadata", "tags"),
    [
        (None, []),
        ({}, []),
        ({"tags": ["prod", "approved"]}, ["prod", "approved"]),
        ({"tags": ["prod", 3, None, {"a": 1}, "prod", "dev"]}, ["prod", "dev"]),
        ({"tags": "prod"}, ["prod"]),
        ({"tags": {"prod": True}}, []),
        ({"tags": 7}, []),
        ({"tags": None}, []),
    ],
)
def test_tags_of(metadata: Any, tags: list[str]) -> None:
    assert tags_of(metadata) == tags


async def test_persona_tags_in_graphql(gql: GraphQLClient) -> None:
    create = "mutation($i: CreatePersonaInput!) { createPersona(input: $i) { id tags } }"
    tagged = await gql.data(
        create, {"i": {"name": "a", "content": "c", "metadata": {"tags": ["x", 1]}}}
    )
    assert tagged["createPersona"]["tags"] == ["x"]
    bare = await gql.data(create, {"i": {"name": "b", "content": "c"}})
    assert bare["createPersona"]["tags"] == []
    found = await gql.data(
        '{ personas(metadataFilter: [{path: "tags", value: "x"}]) { nodes { tags } } }'
    )
    assert found["personas"]["nodes"] == [{"tags": ["x"]}]
