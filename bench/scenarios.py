"""What each scenario sends, to which server, what a right answer looks like, and its target."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bench.drivers import Request

PERSONA_FIELDS: Final = ("id", "name", "content", "metadata", "version", "createdAt", "updatedAt")
SELECTION: Final = " ".join(PERSONA_FIELDS)

BY_ID: Final = f"query PersonaById($id: ID!) {{ persona(id: $id) {{ {SELECTION} }} }}"
LISTING: Final = (
    "query Personas($filter: [MetadataFilter!], $first: Int, $after: String) { "
    "personas(metadataFilter: $filter, first: $first, after: $after) { "
    f"nodes {{ {SELECTION} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)
CREATE: Final = (
    "mutation CreatePersona($input: CreatePersonaInput!) { "
    f"createPersona(input: $input) {{ {SELECTION} }} }}"
)

REVISION_FIELDS: Final = (
    "personaId",
    "version",
    "name",
    "content",
    "metadata",
    "operation",
    "actor",
    "createdAt",
)
REVISION_SELECTION: Final = " ".join(REVISION_FIELDS)
RELEASE_LABEL: Final = "production"
"""The label the release scenarios read (the seed sets it on a share of the personas)."""
RELEASE_BY_LABEL: Final = (
    "query ReleaseByLabel($id: ID!, $label: String!) { "
    f"personaRevision(id: $id, label: $label) {{ {REVISION_SELECTION} }} }}"
)
RELEASES: Final = (
    "query Releases($label: String!, $filter: [MetadataFilter!], $first: Int, $after: String) { "
    "personaReleases(label: $label, metadataFilter: $filter, first: $first, after: $after) { "
    f"nodes {{ {REVISION_SELECTION} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)

TAG: Final = "prod"
"""The indexed tag the listing scenarios filter on."""
TAG_FILTER: Final = [{"path": "tags", "value": TAG}]
PAGE_SIZE: Final = 20
DEEP_PAGE: Final = 50
BY_ID_SAMPLE: Final = 100
"""How many different personas the by-id scenarios cycle through."""

NEW_PERSONA: Final = {
    "name": "Benchmark Support Agent",
    "content": "You are a friendly support agent for Example Corp. Answer in the customer's "
    "language, never invent order numbers, and escalate legal questions to a human.",
    "metadata": {
        "tags": ["bench-create", "dev"],
        "version": "1.0.0",
        "deployment": {"environment": "development", "last_tested": "2025-01-15"},
        "custom_fields": {"department": "support", "language": "en"},
    },
}
"""What the create scenario writes: tagged so that it never joins the `prod` listings."""


# ---------------------------------------------------------------------------
# Scenario names, order and targets

GRAPHQL_BY_ID: Final = "graphql_by_id"
REST_BY_ID: Final = "rest_by_id"
GRAPHQL_LIST20: Final = "graphql_list20"
REST_LIST20: Final = "rest_list20"
GRAPHQL_LIST100: Final = "graphql_list100"
PAGE50_VS_PAGE1: Final = "page50_vs_page1"
GRAPHQL_CREATE: Final = "graphql_create"
GRAPHQL_RELEASE_BY_LABEL: Final = "graphql_release_by_label"
RELEASE_LIST20: Final = "release_list20"
RSS_GROWTH: Final = "rss_growth_mib"

COMPARISONS: Final = (
    GRAPHQL_BY_ID,
    REST_BY_ID,
    GRAPHQL_LIST20,
    REST_LIST20,
    GRAPHQL_LIST100,
    PAGE50_VS_PAGE1,
    GRAPHQL_RELEASE_BY_LABEL,
    RELEASE_LIST20,
    GRAPHQL_CREATE,
)
"""The scenarios with a subject and a floor side, in the order they are reported."""
ALL: Final = (*COMPARISONS, RSS_GROWTH)
REST: Final = frozenset({REST_BY_ID, REST_LIST20})


@dataclass(frozen=True, slots=True)
class Target:
    symbol: str
    bound: float

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        compare: Callable[[float, float], bool] = {
            ">=": operator.ge,
            "<=": operator.le,
            "<": operator.lt,
        }[self.symbol]
        return compare(value, self.bound)

    def __str__(self) -> str:
        return f"{self.symbol} {self.bound:g}"


TARGETS: Final = {
    GRAPHQL_BY_ID: Target(">=", 0.70),
    REST_BY_ID: Target(">=", 0.90),
    GRAPHQL_LIST20: Target(">=", 0.60),
    REST_LIST20: Target(">=", 0.85),
    GRAPHQL_LIST100: Target(">=", 0.50),
    PAGE50_VS_PAGE1: Target("<=", 1.2),
    GRAPHQL_CREATE: Target(">=", 0.70),
    GRAPHQL_RELEASE_BY_LABEL: Target(">=", 0.70),
    RELEASE_LIST20: Target(">=", 0.60),
    RSS_GROWTH: Target("<", 50),
}

APOLLO: Final = "apollo"
"""The Apollo Server peer (bench/peers/apollo): the GraphQL scenarios also run against it."""
APOLLO_SCENARIOS: Final = frozenset({GRAPHQL_BY_ID, GRAPHQL_LIST20, GRAPHQL_LIST100})


@dataclass(frozen=True, slots=True)
class CpuTarget:
    """A bound on the server's CPU per request over another side's."""

    versus: str
    """floor, or apollo"""
    target: Target


CPU_TARGETS: Final = {
    GRAPHQL_BY_ID: CpuTarget(APOLLO, Target("<=", 1.0)),
    GRAPHQL_LIST20: CpuTarget(APOLLO, Target("<=", 1.0)),
    REST_BY_ID: CpuTarget("floor", Target("<=", 1.2)),
}

DESCRIPTIONS: Final = {
    GRAPHQL_BY_ID: "GraphQL persona(id) with every field, vs the floor's store.get",
    REST_BY_ID: "REST GET /v1/personas/{id}, vs the floor's store.get",
    GRAPHQL_LIST20: f'GraphQL personas(tags = "{TAG}", first: 20), vs the floor\'s store.find',
    REST_LIST20: f"REST GET /v1/personas?metadata.tags={TAG}&limit=20, vs the floor's store.find",
    GRAPHQL_LIST100: f'GraphQL personas(tags = "{TAG}", first: 100), vs the floor\'s store.find',
    PAGE50_VS_PAGE1: "GraphQL listing: p50 latency of page 50 over page 1 (keyset cursors)",
    GRAPHQL_CREATE: "GraphQL createPersona, vs the floor's store.create",
    GRAPHQL_RELEASE_BY_LABEL: f'GraphQL personaRevision(id, label: "{RELEASE_LABEL}"), '
    "vs the floor's services.get_revision",
    RELEASE_LIST20: f'GraphQL personaReleases(label: "{RELEASE_LABEL}", tags = "{TAG}", '
    "first: 20), vs the floor's services.list_releases",
    RSS_GROWTH: "subject RSS growth over many GraphQL requests with distinct query texts",
}


# ---------------------------------------------------------------------------
# Requests


def graphql_by_id(target: str, persona_id: str) -> Request:
    return Request.graphql_post(target, {"query": BY_ID, "variables": {"id": persona_id}})


def graphql_listing(target: str, first: int, after: str | None = None) -> Request:
    variables = {"filter": TAG_FILTER, "first": first, "after": after}
    return Request.graphql_post(target, {"query": LISTING, "variables": variables})


PEER_LISTING: Final = (
    "query PeerListing($filter: [MetadataFilter!], $first: Int, $after: String) { "
    "personas(metadataFilter: $filter, first: $first, after: $after) { totalCount "
    f"edges {{ cursor node {{ {SELECTION} }} }} nodes {{ id }} "
    "pageInfo { hasNextPage endCursor } } }"
)
"""The whole connection shape, for checking the peer's answers against the server's."""
MISSING_ID: Final = "0" * 24


def peer_checks(persona_id: str, after: str | None) -> list[tuple[str, Request]]:
    """What the Apollo peer must answer exactly as the server does before it is timed:
    by id (present, absent, malformed), and listings with every field of the connection
    (cursors, totalCount), on the indexed tag, a nested path and an operator, and the
    second page of the tag listing after the server's own cursor."""

    def listing(filters: list[dict[str, Any]], first: int, cursor: str | None = None) -> Request:
        variables = {"filter": filters, "first": first, "after": cursor}
        return Request.graphql_post("/graphql", {"query": PEER_LISTING, "variables": variables})

    checks = [
        ("persona by id", graphql_by_id("/graphql", persona_id)),
        ("persona by an absent id", graphql_by_id("/graphql", MISSING_ID)),
        ("persona by a malformed id", graphql_by_id("/graphql", "not-an-id")),
        ("tags = prod, first 5", listing(TAG_FILTER, 5)),
        (
            "deployment.environment = production, first 3",
            listing([{"path": "deployment.environment", "value": "production"}], 3),
        ),
        (
            "tags IN [dev, staging] and status = approved, first 4",
            listing(
                [
                    {"path": "tags", "value": ["dev", "staging"], "op": "IN"},
                    {"path": "status", "value": "approved"},
                ],
                4,
            ),
        ),
        ("a bad path", listing([{"path": "$where", "value": 1}], 3)),
    ]
    if after is not None:
        checks.append(("tags = prod, first 5, page 2", listing(TAG_FILTER, 5, after)))
    return checks


def comparable_answer(answer: Any) -> Any:
    """An answer as the two servers must agree on it: data, and each error's code and
    message (locations and paths are the GraphQL libraries' own detail)."""
    if not isinstance(answer, dict):
        return answer
    errors = [
        {"message": error.get("message"), "code": (error.get("extensions") or {}).get("code")}
        for error in answer.get("errors") or ()
    ]
    return {"data": answer.get("data"), "errors": errors}


def first_difference(left: Any, right: Any, path: str = "") -> str | None:
    """Where two decoded JSON values first differ (dict key order does not count)."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right)):
            if key not in left or key not in right:
                return f"{path}.{key}: only on one side"
            found = first_difference(left[key], right[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return f"{path}: {len(left)} items against {len(right)}"
        for index, (one, other) in enumerate(zip(left, right, strict=True)):
            found = first_difference(one, other, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if left != right:
        return f"{path or '(answer)'}: {left!r:.120} against {right!r:.120}"
    return None


def graphql_release(target: str, persona_id: str) -> Request:
    variables = {"id": persona_id, "label": RELEASE_LABEL}
    return Request.graphql_post(target, {"query": RELEASE_BY_LABEL, "variables": variables})


def graphql_releases(target: str, first: int, after: str | None = None) -> Request:
    variables = {"label": RELEASE_LABEL, "filter": TAG_FILTER, "first": first, "after": after}
    return Request.graphql_post(target, {"query": RELEASES, "variables": variables})


def graphql_create(target: str) -> Request:
    return Request.graphql_post(target, {"query": CREATE, "variables": {"input": NEW_PERSONA}})


def rest_by_id(persona_id: str) -> Request:
    return Request.get(f"/v1/personas/{persona_id}")


def rest_listing(limit: int) -> Request:
    return Request.get(f"/v1/personas?metadata.tags={TAG}&limit={limit}")


def sample(ids: Sequence[str], count: int = BY_ID_SAMPLE) -> list[str]:
    """Up to `count` ids spread evenly over `ids` (old and new personas alike)."""
    if len(ids) <= count:
        return list(ids)
    step = (len(ids) - 1) / (count - 1)
    return [ids[round(index * step)] for index in range(count)]


def query_variants(count: int) -> list[str]:
    """`count` distinct persona-by-id documents: another comment, alias, name, field order."""
    orders = itertools.cycle(itertools.permutations(PERSONA_FIELDS))
    return [
        f"# variant {index}\nquery Variant{index}($id: ID!) "
        f"{{ p{index}: persona(id: $id) {{ {' '.join(next(orders))} }} }}"
        for index in range(count)
    ]


def variant_requests(texts: Sequence[str], persona_id: str) -> list[Request]:
    return [
        Request.graphql_post("/graphql", {"query": text, "variables": {"id": persona_id}})
        for text in texts
    ]


# ---------------------------------------------------------------------------
# Answers: what one request to each side must return before any load is sent


def graphql_data(answer: Any, field: str) -> Any:
    if not isinstance(answer, dict) or "data" not in answer:
        raise ValueError(f"not a GraphQL answer: {answer!r:.300}")
    if answer.get("errors"):
        raise ValueError(f"GraphQL errors: {answer['errors']!r:.300}")
    return answer["data"][field]


def check_persona(persona: Any, persona_id: str | None, fields: Sequence[str]) -> None:
    if not isinstance(persona, dict):
        raise ValueError(f"expected a persona object, got {persona!r:.200}")
    missing = [name for name in fields if name not in persona]
    if missing:
        raise ValueError(f"the persona lacks {', '.join(missing)}")
    if persona_id is not None and persona["id"] != persona_id:
        raise ValueError(f"asked for persona {persona_id}, got {persona['id']}")


REST_FIELDS: Final = ("id", "name", "content", "metadata", "version", "created_at", "updated_at")


def check_listing(items: Any, expected: int) -> None:
    if not isinstance(items, list):
        raise ValueError(f"expected a list of personas, got {items!r:.200}")
    if len(items) != expected:
        raise ValueError(f"expected {expected} personas, got {len(items)}")


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a right answer is, as a function that raises ValueError on a wrong one."""

    check: Callable[[Any], None]
    comparable: bool = True
    """Whether the subject's and the floor's answers should be equal."""


def expect_graphql_persona(persona_id: str) -> Expectation:
    return Expectation(
        lambda answer: check_persona(graphql_data(answer, "persona"), persona_id, PERSONA_FIELDS)
    )


def expect_rest_persona(persona_id: str) -> Expectation:
    return Expectation(lambda answer: check_persona(answer, persona_id, REST_FIELDS))


def expect_graphql_listing(expected: int) -> Expectation:
    def check(answer: Any) -> None:
        connection = graphql_data(answer, "personas")
        check_listing(connection["nodes"], expected)
        for node in connection["nodes"]:
            check_persona(node, None, PERSONA_FIELDS)
            if TAG not in (node["metadata"] or {}).get("tags", ()):
                raise ValueError(f"persona {node['id']} is not tagged {TAG}")

    return Expectation(check)


def expect_rest_listing(expected: int) -> Expectation:
    def check(answer: Any) -> None:
        if not isinstance(answer, dict) or "data" not in answer or "next_cursor" not in answer:
            raise ValueError(f"expected {{data, next_cursor}}, got {answer!r:.200}")
        check_listing(answer["data"], expected)
        for item in answer["data"]:
            check_persona(item, None, REST_FIELDS)

    return Expectation(check)


def check_revision(revision: Any, persona_id: str | None) -> None:
    check_persona(revision, None, REVISION_FIELDS)
    if persona_id is not None and revision["personaId"] != persona_id:
        raise ValueError(f"asked for persona {persona_id}, got {revision['personaId']}")


def expect_graphql_release(persona_id: str) -> Expectation:
    """The labelled version of the persona: the seed labels version 1."""

    def check(answer: Any) -> None:
        revision = graphql_data(answer, "personaRevision")
        check_revision(revision, persona_id)
        if revision["version"] != 1:
            raise ValueError(f"expected version 1 (labelled by the seed), got {revision}")

    return Expectation(check)


def expect_graphql_releases(expected: int) -> Expectation:
    def check(answer: Any) -> None:
        connection = graphql_data(answer, "personaReleases")
        check_listing(connection["nodes"], expected)
        for node in connection["nodes"]:
            check_revision(node, None)
            if TAG not in (node["metadata"] or {}).get("tags", ()):
                raise ValueError(f"release of {node['personaId']} is not tagged {TAG}")

    return Expectation(check)


def expect_created() -> Expectation:
    return Expectation(
        lambda answer: check_persona(graphql_data(answer, "createPersona"), None, PERSONA_FIELDS),
        comparable=False,
    )
