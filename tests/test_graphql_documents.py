"""Prepared documents: refused from the cache exactly as when first seen, bounded, and the
same on strawberry's own execution path (the extensions) as on the quick one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from starlette.applications import Starlette

from personas.app import create_app
from personas.graphql.documents import MISSING_NAME, Documents
from personas.graphql.schema import PersonaSchema, build_schema
from personas.settings import Settings

LIMITS = Settings(
    env="production", graphql_max_depth=3, graphql_max_aliases=2, graphql_max_tokens=60
)
DEEP = "{ personas { nodes { revisions { nodes { version } } } } }"
ALIASES = '{ a: metadataValues(path: "x") { count } b: metadataValues(path: "x") { count } c: metadataValues(path: "x") { count } }'  # noqa: E501
TOKENS = "{ personas { nodes { " + "id " * 80 + "} } }"
INTROSPECTION = "{ __schema { types { name } } }"
TYPO = "{ persnas { nodes { id } } }"
SYNTAX = "{ personas { nodes { id }"
REFUSED = (DEEP, ALIASES, TOKENS, INTROSPECTION, TYPO, SYNTAX)


def shown(errors: list[GraphQLError] | None) -> list[dict[str, Any]]:
    return [dict(error.formatted) for error in errors or ()]


def prepared_schema(settings: Settings = LIMITS) -> PersonaSchema:
    schema = build_schema(settings)
    assert isinstance(schema, PersonaSchema)
    return schema


@pytest.mark.parametrize("query", REFUSED)
async def test_a_document_refused_once_is_refused_again_from_the_cache(query: str) -> None:
    schema = prepared_schema()
    first = await schema.execute(query)
    assert first.data is None
    assert first.errors
    assert len(schema.documents) == 1
    again = await schema.execute(query)
    assert shown(again.errors) == shown(first.errors)
    assert all(error["extensions"]["code"].startswith("GRAPHQL_") for error in shown(first.errors))
    assert "Did you mean" not in str(shown(first.errors))
    # strawberry's own path (its extension runner, as subscriptions take) refuses it alike
    fresh = prepared_schema()
    assert shown(fresh.execute_sync(query).errors) == shown(first.errors)


async def test_each_limit_is_the_one_that_refuses() -> None:
    schema = prepared_schema()
    messages = {
        query: " ".join(error.message for error in schema.documents.prepare(query).errors)
        for query in REFUSED
    }
    assert "exceeds maximum operation depth" in messages[DEEP]
    assert "aliases" in messages[ALIASES]
    assert "more than 60 tokens" in messages[TOKENS]
    assert "introspection" in messages[INTROSPECTION].lower()
    assert "persnas" in messages[TYPO]
    assert messages[SYNTAX].startswith("Syntax Error")


def test_development_allows_introspection_and_shows_suggestions() -> None:
    schema = prepared_schema(Settings())
    assert schema.documents.prepare(INTROSPECTION).errors == ()
    result = schema.execute_sync(TYPO)
    assert "Did you mean" in shown(result.errors)[0]["message"]


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    graphql_schema = prepared_schema().documents.schema
    documents = Documents(graphql_schema, prepared_schema().documents.rules, max_entries=2)
    first = documents.prepare("{ personas { totalCount } }")
    documents.prepare("{ a: personas { totalCount } }")
    assert documents.prepare("{ personas { totalCount } }") is first  # used again: kept
    documents.prepare("{ b: personas { totalCount } }")
    assert len(documents) == 2
    assert documents.prepare("{ personas { totalCount } }") is first
    assert documents.prepare("{ a: personas { totalCount } }") is not first


def test_the_operation_is_chosen_per_request() -> None:
    prepared = prepared_schema().documents.prepare(
        "query A { personas { totalCount } } query B { personas { totalCount } }"
    )
    assert prepared.errors == ()
    [refusal] = prepared.refusals(None)
    assert refusal.message == MISSING_NAME
    assert prepared.refusals("B") == []
    operation = prepared.operation("B")
    assert operation is not None
    assert operation.name is not None
    assert operation.name.value == "B"
    assert prepared.operation("C") is None


async def test_cached_documents_stay_as_strict_over_http(settings: Settings) -> None:
    application: Starlette = create_app(
        settings.replace(env="production", graphql_max_depth=3, graphql_max_tokens=60)
    )
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        for query in (DEEP, TOKENS, INTROSPECTION):
            answers = [(await c.post("/graphql", json={"query": query})).json() for _ in range(3)]
            assert answers[0]["data"] is None
            assert answers[0]["errors"]
            assert answers[1] == answers[0] == answers[2]
        await application.state.store.drop_database()
