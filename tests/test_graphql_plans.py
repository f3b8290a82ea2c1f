"""Completion plans and root plans (graphql/plans.py) and direct roots (graphql/direct.py):
objects of plain attributes completed from a plan, query operations run from root fields
collected once, and a query of one root field answered without the executor, give exactly
what graphql-core's executor gives, data and errors alike, and whatever is off a plan's way
is handed back to graphql-core."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, Undefined

from personas.graphql.direct import DirectRoot
from personas.graphql.documents import DocumentRules
from personas.graphql.execution import PreparedSchema
from personas.graphql.plans import coerce_plain


async def later(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


@strawberry.type
class Leaf:
    code: str
    weight: int | None


class Named(str):
    """A str of a type of its own: coerced as graphql-core coerces it, not taken as it is."""


@strawberry.type
class Item:
    name: str
    count: int
    flag: bool
    ident: strawberry.ID
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
        "flag": False,
        "ident": strawberry.ID("i1"),
        "note": None,
        "tags": ["x", "y"],
        "leaves": [Leaf(code="l1", weight=1), Leaf(code="l2", weight=None)],
        "child": Item(
            name="b",
            count=1,
            flag=True,
            ident=strawberry.ID("i2"),
            note="n",
            tags=[],
            leaves=[],
            child=None,
        ),
    }
    broken_by: dict[str, Callable[[], dict[str, Any]]] = {
        "ok": lambda: {},
        "null_name": lambda: {"name": None},
        "not_an_int": lambda: {"count": "many"},
        "huge_int": lambda: {"count": 2**40},
        "bool_count": lambda: {"count": True},
        "int_name": lambda: {"name": 7},
        "str_subclass": lambda: {"name": Named("n")},
        "int_flag": lambda: {"flag": 1},
        "int_ident": lambda: {"ident": 5},
        "null_tag": lambda: {"tags": ["x", None]},
        "not_a_list": lambda: {"tags": 7},
        "tuple_tags": lambda: {"tags": ("x", "y")},
        "awaited_name": lambda: {"name": later("late")},
        "awaited_tag": lambda: {"tags": ["x", later("late")]},
        "null_leaf_code": lambda: {"leaves": [Leaf(code=None, weight=3)]},  # type: ignore[arg-type]
        "error_value": lambda: {"note": ValueError("a note that failed")},
        "deep_null": lambda: {
            "child": Item(
                name=None,  # type: ignore[arg-type]
                count=1,
                flag=True,
                ident=strawberry.ID("i3"),
                note=None,
                tags=[],
                leaves=[],
                child=None,
            )
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

    @strawberry.field
    def echo(self, text: str, times: int = 1) -> str:
        return text * times

    @strawberry.field
    def ident(self, id: strawberry.ID, flag: bool | None = None) -> str:
        return repr((type(id).__name__, id, flag))

    @strawberry.field
    def fails(self) -> str | None:
        raise ValueError("a resolver that failed")

    @strawberry.field
    async def fails_later(self) -> str | None:
        await asyncio.sleep(0)
        raise ValueError("an awaited resolver that failed")

    @strawberry.field
    def required(self, present: bool = False) -> str:
        return "here" if present else None  # type: ignore[return-value]

    @strawberry.field
    async def later_required(self) -> str:
        return None  # type: ignore[return-value]

    @strawberry.field
    def seen(self, info: strawberry.Info, tag: str | None = None) -> str:
        """What the resolver's info holds, as text."""
        raw = info._raw_info
        return repr(
            (
                raw.field_name,
                [(node.alias and node.alias.value, node.name.value) for node in raw.field_nodes],
                str(raw.return_type),
                raw.parent_type.name,
                raw.path.as_list(),
                raw.path.typename,
                sorted(raw.fragments),
                raw.root_value,
                raw.operation.name and raw.operation.name.value,
                raw.variable_values,
                raw.context,
                raw.is_awaitable(asyncio.Future()),
                raw.abort_signal,
                getattr(raw, "operation_extensions", "none"),  # strawberry's own member
                sorted(type(helper).__name__ for helper in raw.async_helpers),
                tag,
            )
        )

    @strawberry.field
    async def gathered(self, info: strawberry.Info) -> list[int]:
        gathered: list[int] = await info._raw_info.async_helpers.gather([later(1), later(2)])
        return gathered

    @strawberry.field
    async def tracked(self, info: strawberry.Info) -> str:
        info._raw_info.async_helpers.track([later(1)])
        return "tracked"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def bump(self, by: int = 1) -> int:
        return by + 1


RULES = DocumentRules(max_tokens=10_000, validation=())
SHAPES = (
    "ok",
    "null_name",
    "not_an_int",
    "huge_int",
    "bool_count",
    "int_name",
    "str_subclass",
    "int_flag",
    "int_ident",
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
    __typename name count flag ident note tags
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
    return (
        PreparedSchema(rules=RULES, cache_size=10, query=Query, mutation=Mutation),
        strawberry.Schema(query=Query, mutation=Mutation),
    )


def shown(errors: list[GraphQLError] | None) -> list[dict[str, Any]]:
    return [dict(error.formatted) for error in errors or ()]


async def both(
    query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
) -> tuple[Any, Any]:
    planned, plain = schemas()
    first = await planned.execute(query, variables, operation_name=operation_name)
    again = await planned.execute(query, variables, operation_name=operation_name)
    reference = await plain.execute(query, variables, operation_name=operation_name)
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


ROOTS = """
query Roots($text: String!, $times: Int) {
  __typename
  first: echo(text: $text, times: $times)
  echo(text: $text)
  echo(text: $text)
  ...More
  ... on Query { again: echo(text: "x", times: 3) laterItem { name } }
  item { name }
}
fragment More on Query { later: laterItem(shape: "ok") { name tags } fails }
"""
PLAIN = """
query V($t: String!, $n: Int, $b: Boolean, $i: ID!) {
  echo(text: $t, times: $n) ident(id: $i, flag: $b)
}
"""
PLAIN_VARIABLES: dict[str, dict[str, Any]] = {
    "plain variables": {"t": "ab", "n": 2, "b": True, "i": "x1"},
    "plain variables left out": {"t": "ab", "i": "x1"},
    "plain variables null": {"t": "ab", "n": None, "b": None, "i": "x1"},
    "an ID given as a number": {"t": "ab", "i": 7},
    "an Int past 32 bits": {"t": "ab", "n": 2**40, "i": "x"},
    "a bool as an Int": {"t": "ab", "n": True, "i": "x"},
    "a whole float as an Int": {"t": "ab", "n": 2.0, "i": "x"},
    "a str subclass as a String": {"t": Named("ab"), "i": "x"},
    "a required plain variable null": {"t": None, "i": "x"},
    "a required plain variable left out": {"t": "ab"},
    "an int as a Boolean": {"t": "ab", "b": 1, "i": "x"},
}
ROOT_CASES: dict[str, tuple[str, dict[str, Any] | None, str | None]] = {
    **{case: (PLAIN, variables, None) for case, variables in PLAIN_VARIABLES.items()},
    "a variable with a default": ('query D($n: Int = 3) { echo(text: "a", times: $n) }', {}, None),
    "every kind of root field": (ROOTS, {"text": "ab", "times": 2}, None),
    "a variable left to its default": (ROOTS, {"text": "ab"}, None),
    "a required variable missing": (ROOTS, {}, None),
    "a required variable null": (ROOTS, {"text": None}, None),
    "a variable of the wrong type": (ROOTS, {"text": "ab", "times": "two"}, None),
    "an unknown variable": (ROOTS, {"text": "ab", "other": 1}, None),
    "a resolver that fails": ('{ fails echo(text: "a") }', None, None),
    "an awaited resolver that fails": ('{ failsLater echo(text: "a") }', None, None),
    "a non-null root field null": ('{ required echo(text: "a") }', None, None),
    "an awaited non-null root field null": ("{ laterRequired laterItem { name } }", None, None),
    "a broken value below a root field": (
        '{ item(shape: "null_tag") { tags } echo(text: "a") }',
        None,
        None,
    ),
    "an operation chosen by name": ('query A { echo(text: "a") } query B { fails }', None, "B"),
    "a mutation": ("mutation { bump(by: 2) b: bump }", None, None),
    "a directive at the root": (
        'query D($on: Boolean!) { echo(text: "a") @include(if: $on) fails @skip(if: $on) }',
        {"on": True},
        None,
    ),
}


@pytest.mark.parametrize("case", ROOT_CASES, ids=list(ROOT_CASES))
async def test_root_plans_answer_as_graphql_core_does(case: str) -> None:
    query, variables, operation_name = ROOT_CASES[case]
    planned, reference = await both(query, variables, operation_name)
    assert planned == reference
    assert repr(planned[0]) == repr(reference[0])


async def test_a_root_plan_is_made_for_a_query_whose_root_fields_no_variable_decides() -> None:
    planned, _ = schemas()

    def root_plans(query: str) -> list[Any]:
        return list(planned.documents.prepare(query).roots.values())

    result = await planned.execute(ROOTS, {"text": "ab", "times": 2})
    assert result.data is not None
    assert result.data["first"] == "abab"
    [plan] = root_plans(ROOTS)
    assert plan is not None
    assert list(plan.root_fields) == [
        "__typename", "first", "echo", "later", "fails", "again", "laterItem", "item"
    ]  # fmt: skip
    assert len(plan.root_fields["echo"]) == 2  # the same field twice, merged
    assert len(plan.root_fields["laterItem"]) == 1

    # a new run takes the plan made: the same nodes, no second collection
    await planned.execute(ROOTS, {"text": "cd"})
    assert root_plans(ROOTS) == [plan]

    for unplanned in (
        "mutation { bump }",
        'query D($on: Boolean!) { echo(text: "a") @include(if: $on) }',
        'query D($on: Boolean!) { ... @include(if: $on) { echo(text: "a") } }',
        "query D($on: Boolean!) { ...E @skip(if: $on) } fragment E on Query { fails }",
        "query D($on: Boolean!) { ...E } fragment E on Query { fails @skip(if: $on) }",
    ):
        await planned.execute(unplanned, {"on": True})
        assert root_plans(unplanned) == [None], unplanned


async def test_plain_variables_are_coerced_by_the_plan_and_others_by_graphql_core() -> None:
    planned, _ = schemas()
    await planned.execute(PLAIN, PLAIN_VARIABLES["plain variables"])
    [plan] = planned.documents.prepare(PLAIN).roots.values()
    assert plan is not None
    assert plan.variables is not None
    assert [variable.signature.name for variable in plan.variables] == ["t", "n", "b", "i"]
    taken = {
        case for case, inputs in PLAIN_VARIABLES.items() if coerce_plain(plan.variables, inputs)
    }
    assert taken == {"plain variables", "plain variables left out", "plain variables null"}
    coerced = coerce_plain(plan.variables, PLAIN_VARIABLES["plain variables left out"])
    assert coerced is not None
    assert coerced.coerced == {"t": "ab", "i": "x1"}  # left out: no value, as graphql-core has it
    assert set(coerced.sources) == {"t", "n", "b", "i"}
    for unplain in ('query D($n: Int = 3) { echo(text: "a", times: $n) }', ROOTS):
        await planned.execute(unplain, {"text": "a"})
        [other] = planned.documents.prepare(unplain).roots.values()
        assert other is not None
        assert (other.variables is None) is (unplain != ROOTS)


ONE_ITEM = """
query Q($shape: String!) {
  item(shape: $shape) {
    __typename name count flag ident note tags
    leaves { __typename code weight }
    child { name count note tags leaves { code } child { name } }
  }
}
"""
ONE_LATER_ITEM = (
    "query Q($shape: String!) { laterItem(shape: $shape) { name tags child { name } } }"
)
ECHO = "query E($t: String!, $n: Int) { echo(text: $t, times: $n) }"
IDENT = "query I($i: ID!, $b: Boolean) { ident(id: $i, flag: $b) }"
DIRECT_CASES: dict[str, tuple[str, dict[str, Any] | None, str | None]] = {
    **{f"an item, {shape}": (ONE_ITEM, {"shape": shape}, None) for shape in SHAPES},
    **{f"a later item, {shape}": (ONE_LATER_ITEM, {"shape": shape}, None) for shape in SHAPES},
    **{
        f"echo, {case}": (ECHO, {"t": inputs.get("t"), "n": inputs.get("n")}, None)
        for case, inputs in PLAIN_VARIABLES.items()
    },
    **{
        f"ident, {case}": (IDENT, {"i": inputs.get("i"), "b": inputs.get("b")}, None)
        for case, inputs in PLAIN_VARIABLES.items()
    },
    "echo, left out": (ECHO, {"t": "ab"}, None),
    "a literal argument": ('{ echo(text: "a", times: 3) }', None, None),
    "a default argument": ('{ echo(text: "a") }', None, None),
    "a literal that is wrong at run time": ('{ echo(text: "a", times: 2) }', None, None),
    "a nullable variable for a non-null argument with a default, given": (
        "query R($p: Boolean) { required(present: $p) }",
        {"p": True},
        None,
    ),
    "a nullable variable for a non-null argument with a default, null": (
        "query R($p: Boolean) { required(present: $p) }",
        {"p": None},
        None,
    ),
    "a nullable variable for a non-null argument with a default, left out": (
        "query R($p: Boolean) { required(present: $p) }",
        {},
        None,
    ),
    "a variable with a default": ('query D($n: Int = 3) { echo(text: "a", times: $n) }', {}, None),
    "a variable of the wrong type": (ECHO, {"t": "a", "n": "two"}, None),
    "a resolver that fails": ("{ fails }", None, None),
    "an awaited resolver that fails": ("{ failsLater }", None, None),
    "a non-null root field null": ("{ required }", None, None),
    "an awaited non-null root field null": ("{ laterRequired }", None, None),
    "an alias": ('{ e: echo(text: "a") }', None, None),
    "the same field twice": ('{ echo(text: "a") echo(text: "a") }', None, None),
    "a field in a fragment": (
        "query F { ...Parts } fragment Parts on Query { item { name child { name } } }",
        None,
        None,
    ),
    "a field in inline fragments": (
        "{ ... on Query { item { name } } ... { item { tags } } }",
        None,
        None,
    ),
    "the resolver's info": (
        "query S($tag: String) { s: seen(tag: $tag) ... on Query { s: seen(tag: $tag) } }"
        ' fragment Unused on Query { echo(text: "a") }',
        {"tag": "t"},
        None,
    ),
    "the resolver's info, no variables": ("{ seen }", None, None),
    "work gathered through the info": ("{ gathered }", None, None),
    "work tracked through the info": ("{ tracked }", None, None),
    "an operation chosen by name": ('query A { echo(text: "a") } query B { fails }', None, "B"),
}


@pytest.mark.parametrize("case", DIRECT_CASES, ids=list(DIRECT_CASES))
async def test_direct_roots_answer_as_graphql_core_does(case: str) -> None:
    query, variables, operation_name = DIRECT_CASES[case]
    planned, reference = await both(query, variables, operation_name)
    assert planned == reference
    assert repr(planned[0]) == repr(reference[0])


async def test_a_direct_root_is_made_for_one_root_field_of_the_query_type() -> None:
    planned, _ = schemas()

    async def direct(query: str, variables: dict[str, Any] | None = None) -> DirectRoot | None:
        await planned.execute(query, variables)
        [chosen] = planned.documents.prepare(query).choices.values()
        return chosen.direct

    literal = await direct('{ echo(text: "a") }')
    assert literal is not None
    assert literal.arguments is not None
    assert literal.arguments.constants == {"text": "a", "times": 1}
    assert literal.arguments.variables == ()

    from_variables = await direct(IDENT, {"i": "a"})
    assert from_variables is not None
    assert from_variables.arguments is not None
    assert from_variables.arguments.constants == {}
    assert from_variables.arguments.variables == (("id", "i", Undefined), ("flag", "b", None))
    assert from_variables.arguments.values({"i": "x"}) == {"id": "x", "flag": None}
    assert from_variables.arguments.values({"i": "x", "b": True}) == {"id": "x", "flag": True}

    nullable_for_non_null = await direct(ECHO, {"t": "a"})  # times: Int! = 1, $n: Int
    assert nullable_for_non_null is not None
    assert nullable_for_non_null.arguments is None  # a null is refused: graphql-core decides
    taken_each_run = await direct("query R($p: Boolean) { required(present: $p) }", {})
    assert taken_each_run is not None
    assert taken_each_run.arguments is None  # a null would be refused: graphql-core decides
    with_default = await direct('query D($n: Int = 3) { echo(text: "a", times: $n) }')
    assert with_default is not None
    assert with_default.arguments is None  # not a plain variable

    planned_item = await direct("{ item { name tags } }")
    assert planned_item is not None
    assert planned_item.complete is not None
    with_resolver = await direct("{ item { shout } }")
    assert with_resolver is not None
    assert with_resolver.complete is None  # the executor completes it

    for not_direct in (
        '{ echo(text: "a") fails }',
        "{ __typename }",
        '{ __type(name: "Item") { name } }',
    ):
        assert await direct(not_direct) is None, not_direct
    await planned.execute("mutation { bump }")
    [mutation] = planned.documents.prepare("mutation { bump }").choices.values()
    assert mutation.direct is None
