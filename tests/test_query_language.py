"""The metadata query language: operators, OR groups, search, orders, facets and indexes."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personas import domain, services
from personas.domain import ANONYMOUS, FilterSpec, Operator, SortField
from personas.store import PersonaStore
from tests.conftest import GraphQLClient, plan_stages
from tests.reference import matches, ordered

SCALARS: list[Any] = [0, 1, 2, -1, 1.5, 2.0, "x", "y", "xy", "X", "", True, False, None]
PATHS = ["a", "b", "c", "n.a", "n.b"]
Row = tuple[str, dict[str, Any] | None]


def random_value(rng: random.Random) -> Any:
    if rng.random() < 0.3:
        return [rng.choice(SCALARS) for _ in range(rng.randint(0, 3))]
    return rng.choice(SCALARS)


def random_metadata(rng: random.Random) -> dict[str, Any] | None:
    if rng.random() < 0.1:
        return None
    metadata: dict[str, Any] = {}
    for key in ("a", "b", "c"):
        if rng.random() < 0.75:
            metadata[key] = random_value(rng)
    if rng.random() < 0.6:
        metadata["n"] = {key: random_value(rng) for key in ("a", "b") if rng.random() < 0.7}
    return metadata


async def seed(store: PersonaStore, count: int = 80, seed_value: int = 7) -> list[Row]:
    rng = random.Random(seed_value)
    rows: list[Row] = []
    for index in range(count):
        metadata = random_metadata(rng)
        persona = await store.create(
            ANONYMOUS, domain.new_persona(f"Persona {index:03d}", "prompt", metadata)
        )
        rows.append((persona.id, metadata))
    return rows


async def listed(store: PersonaStore, query: domain.PersonaQuery, first: int = 100) -> list[str]:
    """Every id of a listing, walking all its pages."""
    ids: list[str] = []
    after = None
    while True:
        page = await services.list_personas(store, ANONYMOUS, query, first, after)
        ids.extend(item.id for item in page.items)
        if not page.has_next:
            return ids
        assert page.end_cursor is not None
        after = page.end_cursor


scalar = st.sampled_from(SCALARS)
ordered_value = st.sampled_from([0, 1, 2, -1, 1.5, 2.0, "x", "y", "xy", "X", ""])


@st.composite
def filter_specs(draw: st.DrawFn) -> FilterSpec:
    op = draw(st.sampled_from(list(Operator)))
    value: Any
    if op in domain.LIST_OPERATORS:
        value = draw(st.lists(scalar, min_size=1, max_size=3))
    elif op is Operator.EXISTS:
        value = draw(st.booleans())
    elif op in domain.RANGE_OPERATORS:
        value = draw(ordered_value)
    elif op is Operator.PREFIX:
        value = draw(st.sampled_from(["x", "y", "X", "xy"]))
    else:
        value = draw(st.one_of(scalar, st.lists(scalar, max_size=2)))
    return FilterSpec(draw(st.sampled_from(PATHS)), value, op)


def expected(rows: list[Row], all_of: list[FilterSpec], any_of: list[FilterSpec]) -> set[str]:
    def hit(metadata: dict[str, Any] | None, spec: FilterSpec) -> bool:
        return matches(metadata, str(spec.path), spec.op, spec.value)

    return {
        persona_id
        for persona_id, metadata in rows
        if all(hit(metadata, spec) for spec in all_of)
        and (not any_of or any(hit(metadata, spec) for spec in any_of))
    }


@pytest.mark.parametrize("op", list(Operator))
async def test_each_operator_matches_the_reference(store: PersonaStore, op: Operator) -> None:
    rows = await seed(store)
    special: dict[Operator, list[Any]] = {
        Operator.EXISTS: [True, False],
        Operator.PREFIX: ["x", "X", "xy"],
        Operator.IN: [[1, "x"], [None], [True, 2.0]],
        Operator.NIN: [[1, "x"], [None]],
        Operator.ALL: [["x"], ["x", "y"], [1, 2]],
    }
    values: list[Any] = [0, 1, 1.5, "x", "xy", ""]
    if op in {Operator.EQ, Operator.NE}:
        values += [None, True, [], ["x", "y"]]
    values = special.get(op, values)
    for path in PATHS:
        for value in values:
            spec = FilterSpec(path, value, op)
            found = await listed(store, domain.persona_query(all_of=[spec]))
            assert set(found) == expected(rows, [spec], []), (path, op, value)
            assert len(found) == len(set(found))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    all_of=st.lists(filter_specs(), max_size=3),
    any_of=st.lists(filter_specs(), max_size=3),
)
async def test_random_filters_match_the_reference(
    store: PersonaStore, all_of: list[FilterSpec], any_of: list[FilterSpec]
) -> None:
    rows = await store_rows(store)
    query = domain.persona_query(all_of=all_of, any_of=any_of)
    found = await listed(store, query, first=100)
    assert set(found) == expected(rows, all_of, any_of)


_seeded: dict[int, list[Row]] = {}


async def store_rows(store: PersonaStore) -> list[Row]:
    """The data set of one store, seeded once for all hypothesis examples."""
    key = id(store)
    if key not in _seeded:
        _seeded[key] = await seed(store)
    return _seeded[key]


async def test_or_groups_are_anded_with_the_filters(store: PersonaStore) -> None:
    rows = await seed(store)
    all_of = [FilterSpec("a", True, Operator.EXISTS)]
    any_of = [FilterSpec("b", "x"), FilterSpec("n.a", 1, Operator.GTE)]
    query = domain.persona_query(all_of=all_of, any_of=any_of)
    found = set(await listed(store, query))
    assert found == expected(rows, all_of, any_of)
    assert found


# -- search ---------------------------------------------------------------------


async def test_search_is_a_case_insensitive_escaped_substring(gql: GraphQLClient) -> None:
    names = ["Support Agent", "support (v2)", "Sales agent", "a.*b", "Tutor"]
    ids = {}
    for name in names:
        data = await gql.data(
            "mutation($i: CreatePersonaInput!) { createPersona(input: $i) { id } }",
            {"i": {"name": name, "content": "prompt"}},
        )
        ids[name] = data["createPersona"]["id"]
    query = "query($s: String) { personas(search: $s, first: 100) { nodes { name } } }"
    for search, wanted in [
        ("SUPPORT", {"Support Agent", "support (v2)"}),
        ("agent", {"Support Agent", "Sales agent"}),
        ("(v2)", {"support (v2)"}),
        (".*", {"a.*b"}),
        ("nothing", set()),
    ]:
        data = await gql.data(query, {"s": search})
        assert {node["name"] for node in data["personas"]["nodes"]} == wanted, search


# -- orders ---------------------------------------------------------------------

SORT_VALUES: list[Any] = [None, 3, -1, 2.5, "b", "a", "B", True, False, [2, 9], ["z", 1], []]


@pytest.mark.parametrize("descending", [False, True])
async def test_metadata_order_pages_through_mixed_types_exactly_once(
    store: PersonaStore, descending: bool
) -> None:
    rows: list[Row] = []
    for index in range(36):
        metadata: dict[str, Any] = {"tags": ["prod"]}
        if index % 12:
            metadata["rank"] = SORT_VALUES[index % len(SORT_VALUES)]
        persona = await store.create(ANONYMOUS, domain.new_persona(f"p{index}", "prompt", metadata))
        rows.append((persona.id, metadata))
    order = [domain.sort_key(SortField.METADATA, "rank", descending, "orderBy.0")]
    query = domain.persona_query(order=order)
    walked = await listed(store, query, first=5)
    assert walked == await listed(store, query, first=100)
    assert walked == ordered(rows, "rank", descending)


@pytest.mark.parametrize("field", [SortField.CREATED_AT, SortField.UPDATED_AT, SortField.NAME])
@pytest.mark.parametrize("descending", [False, True])
async def test_field_orders_page_exactly_once(
    store: PersonaStore, field: SortField, descending: bool
) -> None:
    created = []
    for index in range(30):
        name = f"persona {(index * 7) % 30:02d}"
        created.append(await store.create(ANONYMOUS, domain.new_persona(name, "prompt", None)))
    for persona in created[::3]:
        await store.update(ANONYMOUS, persona.id, domain.persona_changes(content="changed"))
    query = domain.persona_query(order=[domain.sort_key(field, None, descending, "orderBy.0")])
    walked = await listed(store, query, first=4)
    latest = {item.id: item for item in [await store.get(ANONYMOUS, p.id) for p in created] if item}
    expected_order = sorted(
        latest.values(), key=lambda item: (getattr(item, field.value), item.id), reverse=descending
    )
    assert walked == [item.id for item in expected_order]


async def test_several_sort_keys_break_ties_in_order(store: PersonaStore) -> None:
    rows: list[tuple[domain.Persona, dict[str, Any]]] = []
    for index in range(24):
        metadata = {"team": ["alpha", "beta", "gamma"][index % 3], "score": index % 4}
        persona = await store.create(
            ANONYMOUS, domain.new_persona(f"n{index % 5}", "prompt", metadata)
        )
        rows.append((persona, metadata))
    order = [
        domain.sort_key(SortField.METADATA, "team", True, "orderBy.0"),
        domain.sort_key(SortField.METADATA, "score", False, "orderBy.1"),
        domain.sort_key(SortField.NAME, None, False, "orderBy.2"),
    ]
    query = domain.persona_query(order=order)
    walked = await listed(store, query, first=5)
    by_team_desc = sorted(rows, key=lambda row: (row[1]["score"], row[0].name, row[0].id))
    by_team_desc.sort(key=lambda row: row[1]["team"], reverse=True)
    assert walked == [persona.id for persona, _ in by_team_desc]


async def test_order_by_through_graphql(gql: GraphQLClient) -> None:
    for index, version in enumerate(["1.0.0", "2.1.0", "1.5.0"]):
        await gql.data(
            "mutation($i: CreatePersonaInput!) { createPersona(input: $i) { id } }",
            {"i": {"name": f"p{index}", "content": "c", "metadata": {"version": version}}},
        )
    query = """
    query($order: [PersonaOrder!], $first: Int, $after: String) {
      personas(orderBy: $order, first: $first, after: $after) {
        nodes { metadata } pageInfo { endCursor hasNextPage }
      }
    }"""
    order = [{"field": "METADATA", "path": "version", "direction": "DESC"}]
    first = await gql.data(query, {"order": order, "first": 2})
    versions = [node["metadata"]["version"] for node in first["personas"]["nodes"]]
    assert versions == ["2.1.0", "1.5.0"]
    cursor = first["personas"]["pageInfo"]["endCursor"]
    rest = await gql.data(query, {"order": order, "first": 2, "after": cursor})
    assert [node["metadata"]["version"] for node in rest["personas"]["nodes"]] == ["1.0.0"]
    error = await gql.error(query, {"order": [{"field": "NAME"}], "after": cursor})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    error = await gql.error(query, {"order": [{"field": "METADATA"}]})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "orderBy.0"}
    error = await gql.error(query, {"order": [{"field": "NAME", "path": "x"}]})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "orderBy.0"}
    error = await gql.error(query, {"order": [{"field": "NAME"}] * 4})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "orderBy"}


# -- operator validation through GraphQL ------------------------------------------

LIST = """
query($f: [MetadataFilter!], $any: [MetadataFilter!]) {
  personas(metadataFilter: $f, metadataFilterAny: $any, first: 100) { nodes { id } }
}"""


@pytest.mark.parametrize(
    "bad",
    [
        {"path": "tags", "op": "IN", "value": "prod"},
        {"path": "tags", "op": "IN", "value": []},
        {"path": "tags", "op": "NIN", "value": list(range(101))},
        {"path": "tags", "op": "ALL", "value": None},
        {"path": "tags", "op": "EXISTS", "value": "yes"},
        {"path": "rating", "op": "GT", "value": True},
        {"path": "rating", "op": "GTE", "value": None},
        {"path": "rating", "op": "LT", "value": [1]},
        {"path": "version", "op": "PREFIX", "value": 2},
        {"path": "version", "op": "PREFIX", "value": ""},
        {"path": "version", "op": "IN", "value": [{"$gt": 1}]},
    ],
)
async def test_wrong_value_type_for_an_operator_names_the_filter(
    gql: GraphQLClient, bad: dict[str, Any]
) -> None:
    error = await gql.error(LIST, {"any": [{"path": "a", "value": 1}, bad]})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"].startswith("metadataFilterAny.1")


async def test_prefix_is_literal_and_anchored(gql: GraphQLClient) -> None:
    create = "mutation($i: CreatePersonaInput!) { createPersona(input: $i) { id } }"
    ids = {}
    for version in ["2.0.0", "2.1.3", "12.0", "2x0", ".*"]:
        data = await gql.data(
            create, {"i": {"name": version, "content": "c", "metadata": {"version": version}}}
        )
        ids[version] = data["createPersona"]["id"]
    for prefix, wanted in [
        ("2.", {"2.0.0", "2.1.3"}),
        (".*", {".*"}),
        ("2", {"2.0.0", "2.1.3", "2x0"}),
    ]:
        data = await gql.data(LIST, {"f": [{"path": "version", "op": "PREFIX", "value": prefix}]})
        assert {node["id"] for node in data["personas"]["nodes"]} == {ids[v] for v in wanted}


# -- facets ---------------------------------------------------------------------

VALUES = """
query($path: String!, $f: [MetadataFilter!], $first: Int) {
  metadataValues(path: $path, metadataFilter: $f, first: $first) { value count }
}"""


async def test_metadata_values_count_per_tag(gql: GraphQLClient, store: PersonaStore) -> None:
    tag_sets = [["prod", "approved"], ["prod"], ["dev"], ["prod", "dev"], [], None]
    for index, tags in enumerate(tag_sets):
        metadata = None if tags is None else {"tags": tags, "team": "a" if index % 2 else "b"}
        await store.create(ANONYMOUS, domain.new_persona(f"p{index}", "prompt", metadata))
    data = await gql.data(VALUES, {"path": "tags"})
    assert data["metadataValues"] == [
        {"value": "prod", "count": 3},
        {"value": "dev", "count": 2},
        {"value": "approved", "count": 1},
    ]
    data = await gql.data(VALUES, {"path": "tags", "first": 1})
    assert data["metadataValues"] == [{"value": "prod", "count": 3}]
    data = await gql.data(VALUES, {"path": "tags", "f": [{"path": "team", "value": "a"}]})
    assert data["metadataValues"] == [
        {"value": "prod", "count": 2},
        {"value": "dev", "count": 1},
    ]
    bad_requests: list[dict[str, Any]] = [
        {"path": "$where"},
        {"path": "tags", "first": 0},
        {"path": "tags", "first": 101},
    ]
    for bad in bad_requests:
        error = await gql.error(VALUES, bad)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"


# -- indexes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        FilterSpec("tags", "prod"),
        FilterSpec("tags", ["prod", "rare"], Operator.IN),
        FilterSpec("tags", ["prod", "approved"], Operator.ALL),
        FilterSpec("tags", "pro", Operator.PREFIX),
        FilterSpec("status", "approved"),
        FilterSpec("status", "b", Operator.GTE),
        FilterSpec("status", "b", Operator.LT),
        FilterSpec("deployment.environment", "production"),
    ],
)
async def test_filters_on_indexed_paths_use_the_index(
    store: PersonaStore, spec: FilterSpec
) -> None:
    statuses = ["approved", "draft", "archived", "review"]
    for index in range(200):
        metadata = {
            "tags": ["prod", "approved"] if index % 10 == 0 else ["dev"],
            "status": statuses[index % 4],
            "deployment": {"environment": "production" if index % 20 == 0 else "staging"},
        }
        await store.create(ANONYMOUS, domain.new_persona(f"p{index}", "prompt", metadata))
    explained = await store.explain(ANONYMOUS, domain.persona_query(all_of=[spec]))
    assert "IXSCAN" in plan_stages(explained["queryPlanner"]["winningPlan"])
    stats = explained["executionStats"]
    assert stats["nReturned"] > 0
    assert stats["totalDocsExamined"] <= 2 * stats["nReturned"] + 2, stats
