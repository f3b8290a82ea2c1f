"""Direct resolvers (graphql/resolving.py): a field with a resolver is called without
strawberry's per-call wrapper, its arguments converted by functions made once, and answers
exactly what strawberry answers; a field the wrapper has more to do for keeps it."""

from __future__ import annotations

import asyncio
import enum
from typing import Annotated, Any

import pytest
import strawberry
from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.relay import GlobalID
from strawberry.scalars import JSON
from strawberry.types import Info

from personas.graphql.documents import DocumentRules
from personas.graphql.execution import PreparedSchema


class Refused(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.get("allowed"))


@strawberry.enum
class Mood(enum.Enum):
    CALM = "calm"
    LOUD = "loud"


@strawberry.input
class Pair:
    left: int
    right: int = 2
    note: str | None = strawberry.UNSET
    mood: Mood | None = None


@strawberry.input
class Nested:
    pairs: list[Pair | None]
    first: Pair | None
    moods: list[Mood] | None = None
    words: list[str | None] | None = None
    data: JSON | None = None


@strawberry.type
class Node:
    name: str

    @strawberry.field
    def greeting(self, info: Info, punctuation: str = "!") -> str:
        return f"hello {self.name} from {info.field_name}{punctuation}"


def shouted(text: str) -> str:
    return text.upper()


@strawberry.type
class Query:
    @strawberry.field
    async def described(
        self,
        info: Info,
        id: strawberry.ID,
        count: int | None = None,
        ratio: float = 0.5,
        loud: bool | None = False,
        label: Annotated[str | None, strawberry.argument(name="tag")] = "none",
    ) -> str:
        await asyncio.sleep(0)
        return repr(
            (type(id).__name__, id, count, ratio, loud, label, info.context["who"],
             type(info).__name__, info.field_name, info.path.key)
        )  # fmt: skip

    @strawberry.field
    def plain(self, text: str, times: int = 1) -> str:
        return text * times

    without_self: str = strawberry.field(resolver=shouted)

    @strawberry.field
    async def node(self, name: str) -> Node | None:
        return None if name == "nobody" else Node(name=name)

    @strawberry.field
    async def broken(self, text: str) -> str:
        raise ValueError(f"broken on {text}")

    @strawberry.field(permission_classes=[Refused])  # type: ignore[untyped-decorator]
    def guarded(self, text: str) -> str:
        return text

    @strawberry.field
    def moody(self, mood: Mood) -> str:
        return repr(mood)

    @strawberry.field
    def summed(self, pair: Pair) -> int:
        return pair.left + pair.right

    @strawberry.field
    def listed(self, words: list[str]) -> str:
        return "-".join(words)

    @strawberry.field
    def rooted(self, root: Any, text: str) -> str:
        return f"{root!r} {text}"

    @strawberry.field
    def nested(self, nested: Nested, more: list[Nested] | None = None) -> str:
        return repr((nested, more))

    @strawberry.field
    def moods(self, moods: list[Mood], optional: list[Mood | None] | None = None) -> str:
        return repr((moods, optional))

    @strawberry.field
    def global_id(self, id: GlobalID) -> str:
        return repr(id)

    @strawberry.field
    def maybe(self, text: strawberry.Maybe[str | None] = None) -> str:
        return repr(text)


RULES = DocumentRules(max_tokens=10_000, validation=())
QUERIES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "every scalar given": (
        "query Q($id: ID!, $count: Int, $on: Boolean) "
        '{ described(id: $id, count: $count, ratio: 2.5, loud: $on, tag: "t") }',
        {"id": "p1", "count": 3, "on": True},
    ),
    "defaults left out": ('{ described(id: 7) a: described(id: "x", count: null) }', None),
    "explicit nulls": ('{ described(id: "x", loud: null, tag: null) }', None),
    "an alias and the same field twice": (
        '{ a: plain(text: "ab", times: 2) b: plain(text: "c") plain(text: "d") }',
        None,
    ),
    "no self": ('{ withoutSelf(text: "up") }', None),
    "nested, with info": (
        '{ node(name: "n") { name greeting again: greeting(punctuation: "?") } }',
        None,
    ),
    "a null object": ('{ node(name: "nobody") { name } }', None),
    "a resolver that fails": ('{ broken(text: "x") plain(text: "y") }', None),
    "a variable of the wrong type": ("query Q($t: Int) { plain(text: $t) }", {"t": 4}),
    "a permission refused": ('{ guarded(text: "x") }', None),
    "a permission granted": ('{ guarded(text: "x") }', None),
    "an enum": ("{ moody(mood: LOUD) }", None),
    "an input object": ("{ summed(pair: {left: 1}) }", None),
    "a list": ('{ listed(words: ["a", "b"]) }', None),
    "a root parameter": ('{ rooted(text: "r") }', None),
    "nested inputs": (
        "query Q($n: Nested!, $more: [Nested!]) { nested(nested: $n, more: $more) }",
        {
            "n": {
                "pairs": [{"left": 1, "note": None, "mood": "LOUD"}, None],
                "first": {"left": 3, "right": 4},
                "moods": ["CALM", "LOUD"],
                "words": ["a", None],
                "data": {"any": ["json", 1]},
            },
            "more": [{"pairs": [], "first": None}],
        },
    ),
    "nested inputs as literals": (
        '{ nested(nested: {pairs: [{left: 2, note: "n"}], first: null, moods: null}) }',
        None,
    ),
    "an input's nullable field left out": ("{ nested(nested: {pairs: []}) }", None),
    "an input that breaks a rule": ("{ nested(nested: {pairs: [{right: 2}], first: null}) }", None),
    "enum lists": ("{ moods(moods: [CALM], optional: [null, LOUD]) a: moods(moods: []) }", None),
    "a global id": ('{ globalId(id: "VXNlcjox") }', None),
    "a global id that is not one": ('{ globalId(id: "nope") }', None),
    "a maybe left out": ("{ maybe }", None),
    "a maybe null": ("{ maybe(text: null) }", None),
}


def shown(errors: list[GraphQLError] | None) -> list[dict[str, Any]]:
    return [dict(error.formatted) for error in errors or ()]


@pytest.mark.parametrize("case", QUERIES, ids=list(QUERIES))
async def test_direct_resolvers_answer_as_strawberry_does(case: str) -> None:
    query, variables = QUERIES[case]
    context = {"who": "caller", "allowed": case == "a permission granted"}
    prepared = PreparedSchema(rules=RULES, cache_size=10, query=Query)
    plain = strawberry.Schema(query=Query)
    ours = await prepared.execute(query, variables, context_value=context, root_value="R")
    theirs = await plain.execute(query, variables, context_value=context, root_value="R")
    assert (ours.data, shown(ours.errors)) == (theirs.data, shown(theirs.errors))
    assert ours.data is not None or ours.errors


async def test_only_fields_of_built_in_scalar_arguments_get_a_direct_resolver() -> None:
    prepared = PreparedSchema(rules=RULES, cache_size=10, query=Query)
    assert set(prepared.direct_resolvers) == {
        "Node.greeting",
        "Query.broken",
        "Query.described",
        "Query.listed",
        "Query.moods",
        "Query.moody",
        "Query.nested",
        "Query.node",
        "Query.plain",
        "Query.summed",
        "Query.withoutSelf",
    }  # not guarded (a permission), rooted (a root parameter), globalId, maybe
    result = await prepared.execute('{ described(id: 5, tag: "x") }', context_value={"who": "w"})
    seen = ("str", "5", None, 0.5, False, "x", "w", "Info", "described", "described")
    assert result.data == {"described": repr(seen)}
