"""Completion plans (graphql/plans.py): objects of plain attributes completed from a plan give
exactly what graphql-core's executor gives, data and errors alike, and whatever is off the
plan's way is handed back to graphql-core."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError

from personas.graphql.documents import DocumentRules
from personas.graphql.execution import PreparedSchema


async def later(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


@strawberry.type
class Leaf:
    code: str
    weight: int | None


@strawberry.type
class Item:
    name: str
    count: int
    note: str | None
    tags: list[str]
    leaves: list[Leaf]
    child: Item | None

    @strawberry.field
    def shout(self) -> str:  # a resolver of its own: never planned
        return self.name.upper()


def item(shape: str) -> Any:
    """Items whose attributes break the schema in one way each (`ok`: none)."""
    good: dict[str, Any] = {
        "name": "a",
        "count": 2,
        "note": None,
        "tags": ["x", "y"],
        "leaves": [Leaf(code="l1", weight=1), Leaf(code="l2", weight=None)],
        "child": Item(name="b", count=1, note="n", tags=[], leaves=[], child=None),
    }
    broken_by: dict[str, Callable[[], dict[str, Any]]] = {
        "ok": lambda: {},
        "null_name": lambda: {"name": None},
        "not_an_int": lambda: {"count": "many"},
        "null_tag": lambda: {"tags": ["x", None]},
        "not_a_list": lambda: {"tags": 7},
        "tuple_tags": lambda: {"tags": ("x", "y")},
        "awaited_name": lambda: {"name": later("late")},
        "awaited_tag": lambda: {"tags": ["x", later("late")]},
        "null_leaf_code": lambda: {"leaves": [Leaf(code=None, weight=3)]},  # type: ignore[arg-type]
        "error_value": lambda: {"note": ValueError("a note that failed")},
        "deep_null": lambda: {
            "child": Item(name=None, count=1, note=None, tags=[], leaves=[], child=None)  # type: ignore[arg-type]
        },
    }
    return Item(**{**good, **broken_by[shape]()})


@strawberry.type
class Query:
    @strawberry.field
    def item(self, shape: str = "ok") -> Item:
        return item(shape)  # type: ignore[no-any-return]

    @strawberry.field
    async def later_item(self, shape: str = "ok") -> Item | None:
        return item(shape)  # type: ignore[no-any-return]


RULES = DocumentRules(max_tokens=10_000, validation=())
SHAPES = (
    "ok",
    "null_name",
    "not_an_int",
    "null_tag",
    "not_a_list",
    "tuple_tags",
    "awaited_name",
    "awaited_tag",
    "null_leaf_code",
    "error_value",
    "deep_null",
)
EVERY_FIELD = """
query Q($shape: String!) {
  item(shape: $shape) {
    __typename name count note tags
    leaves { __typename code weight }
    child { name count note tags leaves { code } child { name } }
  }
  laterItem(shape: $shape) { name tags child { name } }
}
"""
FRAGMENTS = """
query Q($shape: String!) {
  item(shape: $shape) {
    ...Named
    ... on Item { total: count tags }
    name
    leaves { ...LeafParts }
  }
}
fragment Named on Item { name child { ...Named2 } }
fragment Named2 on Item { name note }
fragment LeafParts on Leaf { code w: weight code }
"""


def schemas() -> tuple[PreparedSchema, strawberry.Schema]:
    return PreparedSchema(rules=RULES, cache_size=10, query=Query), strawberry.Schema(query=Query)


def shown(errors: list[GraphQLError] | None) -> list[dict[str, Any]]:
    return [dict(error.formatted) for error in errors or ()]


async def both(query: str, variables: dict[str, Any]) -> tuple[Any, Any]:
    planned, plain = schemas()
    first = await planned.execute(query, variables)
    again = await planned.execute(query, variables)  # from the plans the first run made
    reference = await plain.execute(query, variables)
    assert (again.data, shown(again.errors)) == (first.data, shown(first.errors))
    return (first.data, shown(first.errors)), (reference.data, shown(reference.errors))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("query", [EVERY_FIELD, FRAGMENTS], ids=["fields", "fragments"])
async def test_planned_completion_equals_graphql_core(query: str, shape: str) -> None:
    planned, reference = await both(query, {"shape": shape})
    assert planned == reference
    # key order too: a response lists fields in the order the query selects them
    assert repr(planned[0]) == repr(reference[0])


async def test_a_broken_value_is_reported_with_its_path_as_graphql_core_does() -> None:
    (data, errors), _ = await both(EVERY_FIELD, {"shape": "null_tag"})
    assert data is None  # item is non-null, so the null climbs to the root
    assert ["item", "tags", 1] in [error["path"] for error in errors]
    (data, errors), _ = await both(EVERY_FIELD, {"shape": "deep_null"})
    assert data["item"]["child"] is None  # nullable: the null stops there
    assert data["item"]["name"] == "a"
    assert ["item", "child", "name"] in [error["path"] for error in errors]


async def test_plain_objects_are_planned_and_others_are_not() -> None:
    planned, _ = schemas()
    result = await planned.execute(EVERY_FIELD, {"shape": "ok"})
    assert result.errors is None
    plans = planned.documents.prepare(EVERY_FIELD).plans
    assert plans
    assert all(plan is not None for plan in plans.values())

    with_resolver = "{ item { name shout } }"
    result = await planned.execute(with_resolver)
    assert result.data == {"item": {"name": "a", "shout": "A"}}
    assert list(planned.documents.prepare(with_resolver).plans.values()) == [None]


@pytest.mark.parametrize("included", [True, False])
async def test_a_selection_with_directives_is_left_to_graphql_core(included: bool) -> None:
    query = "query Q($on: Boolean!) { item { name tags @include(if: $on) } }"
    planned, reference = await both(query, {"on": included})
    assert planned == reference
    assert ("tags" in planned[0]["item"]) is included
    planned_schema, _ = schemas()
    await planned_schema.execute(query, {"on": included})
    assert list(planned_schema.documents.prepare(query).plans.values()) == [None]
