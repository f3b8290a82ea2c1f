"""The domain's matcher (what subscriptions and webhooks match events with) agrees with
the store's listings for the same filters."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personas import domain
from personas.domain import ANONYMOUS, FilterSpec, Operator
from personas.domain.matching import matches
from personas.store import PersonaStore
from tests.test_query_language import PATHS, filter_specs, listed, random_metadata

NESTED_PATHS = ["items.k", "items.0", "items.0.k", "n.a"]
NESTED: list[dict[str, Any] | None] = [
    {"items": [{"k": 1}, {"k": "x"}]},
    {"items": [{"k": [1, 2]}, {"j": 3}]},
    {"items": [{"j": 3}]},
    {"items": []},
    {"items": [1, "x"]},
    {"items": {"k": 1}},
    {"items": [[{"k": 1}]]},
    {"items": [{"k": None}]},
    {"items": [{"0": "zero"}, {"k": 2}]},
    {"n": [{"a": "x"}, {"a": "y"}]},
]
VALUES: list[Any] = [1, 2, "x", None, [1, 2], True, 1.0, "zero", 3]


async def corpus(store: PersonaStore) -> dict[str, dict[str, Any] | None]:
    rng = random.Random(11)
    rows = [random_metadata(rng) for _ in range(60)] + NESTED
    found = {}
    for index, metadata in enumerate(rows):
        persona = await store.create(
            ANONYMOUS, domain.new_persona(f"Persona {index:03d}", "prompt", metadata)
        )
        found[persona.id] = metadata
    return found


def matched(rows: dict[str, dict[str, Any] | None], query: domain.PersonaQuery) -> set[str]:
    return {
        persona_id
        for persona_id, metadata in rows.items()
        if matches(query, f"Persona {list(rows).index(persona_id):03d}", metadata)
    }


def specs_for(op: Operator) -> list[Any]:
    if op in domain.LIST_OPERATORS:
        return [[1], ["x", 2], [None], [1, 2], [[1, 2]]]
    if op is Operator.EXISTS:
        return [True, False]
    if op is Operator.PREFIX:
        return ["x", "ze"]
    if op in domain.RANGE_OPERATORS:
        return [1, 2, "x", "a"]
    return VALUES


@pytest.mark.parametrize("op", list(Operator))
async def test_each_operator_matches_as_the_store_does(store: PersonaStore, op: Operator) -> None:
    rows = await corpus(store)
    for path in [*PATHS, *NESTED_PATHS]:
        for value in specs_for(op):
            query = domain.persona_query(all_of=[FilterSpec(path, value, op)])
            assert matched(rows, query) == set(await listed(store, query)), (path, op, value)


_seeded: dict[int, dict[str, dict[str, Any] | None]] = {}


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    all_of=st.lists(filter_specs(), max_size=2),
    any_of=st.lists(filter_specs(), max_size=2),
    search=st.sampled_from([None, "persona 01", "0"]),
)
async def test_groups_and_search_match_as_the_store_does(
    store: PersonaStore, all_of: list[FilterSpec], any_of: list[FilterSpec], search: str | None
) -> None:
    if id(store) not in _seeded:  # one data set for all examples
        _seeded[id(store)] = await corpus(store)
    rows = _seeded[id(store)]
    query = domain.persona_query(all_of=all_of, any_of=any_of, search=search)
    assert matched(rows, query) == set(await listed(store, query)), (all_of, any_of, search)
