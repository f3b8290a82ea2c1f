"""The bounded body parser, and bad bodies to every route that takes one: a 400 /
BAD_USER_INPUT naming the rule, never a 5xx, and the server keeps serving."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import httpx
import pytest

from personas import bodies
from personas.domain import InvalidInput
from tests.conftest import GraphQLClient

JSON = {"content-type": "application/json"}
MERGE_PATCH = {"content-type": "application/merge-patch+json"}
SOME_ID = "6790a3c2e4b0a1f2c3d4e5f6"
LIST = "query { personas { nodes { id } } }"


def arrays(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def objects(levels: int) -> bytes:
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def test_depth_counts_arrays_and_objects_outside_strings() -> None:
    assert bodies.depth(b"1") == 0
    assert bodies.depth(b"[]") == 1
    assert bodies.depth(b'{"a": [1, {"b": []}], "c": {}}') == 4
    assert bodies.depth(arrays(1000)) == 1000
    assert bodies.depth(objects(1000)) == 1000
    assert bodies.depth(b'["[[[[", "\\"[[[", {"}}}": "]"}]') == 2
    assert bodies.depth(b'["\\\\", [[]]]') == 3  # an escaped backslash ends before the quote
    assert bodies.depth(b'["unterminated [[[[') == 1


def test_the_limit_itself_is_accepted_and_one_more_level_refused() -> None:
    assert bodies.parse_json(arrays(bodies.MAX_DEPTH)) == json.loads(arrays(bodies.MAX_DEPTH))
    with pytest.raises(InvalidInput) as refused:
        bodies.parse_json(arrays(bodies.MAX_DEPTH + 1), "variables")
    assert refused.value.field == "variables"
    assert f"{bodies.MAX_DEPTH} levels" in refused.value.message


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"content": "[" * 5000 + "{" * 5000})
    assert bodies.parse_json(text) == {"content": "[" * 5000 + "{" * 5000}


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"a": 1,}', b"NaN", b'["\\ud800"]', b"\xff", b'"' + b'\\"' * 100_000, b"[" * 100],
)
def test_strict_refuses_what_is_not_strict_json(raw: bytes) -> None:
    with pytest.raises(InvalidInput) as refused:
        bodies.parse_json(raw)
    assert refused.value.field == "body"


def test_lenient_reading_leaves_lone_surrogates_and_nan_to_the_rules() -> None:
    assert bodies.parse_json(b'["\\ud800"]', strict=False) == ["\ud800"]
    value = bodies.parse_json(b"[NaN]", strict=False)
    assert isinstance(value, list)
    assert math.isnan(value[0])
    with pytest.raises(InvalidInput):
        bodies.parse_json(b"\xff", strict=False)


def test_integers_beyond_64_bits_stay_exact() -> None:
    assert bodies.parse_json(b'{"n": 123456789012345678901234567890}') == {
        "n": 123456789012345678901234567890
    }
    assert bodies.parse_json(b'{"n": 9223372036854775807, "s": "12345678901234567890"}') == {
        "n": 9223372036854775807,
        "s": "12345678901234567890",
    }


def deep_bodies() -> list[Any]:
    return [
        pytest.param(shape(levels), id=f"{shape.__name__}-{levels}")
        for shape in (arrays, objects)
        for levels in (1000, 100_000)
    ]


def no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> None:
    logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert logged == []


async def still_serving(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/personas", json={"name": "after", "content": "c"})
    assert response.status_code == 201
    graphql = await client.post("/graphql", json={"query": LIST})
    assert graphql.status_code == 200
    assert len(graphql.json()["data"]["personas"]["nodes"]) == 1


@pytest.mark.parametrize("body", deep_bodies())
@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/personas", JSON),
        ("PUT", f"/v1/personas/{SOME_ID}", JSON),
        ("PATCH", f"/v1/personas/{SOME_ID}", MERGE_PATCH),
    ],
)
async def test_deep_rest_bodies_are_a_400_naming_the_limit(
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"] == [
        {
            "field": "body",
            "message": f"arrays and objects nest more than {bodies.MAX_DEPTH} "
            "levels deep (the limit)",
        }
    ]
    await still_serving(client)
    no_unexpected_errors(caplog)


def graphql_bodies() -> list[Any]:
    """A deep value as a variable, and a deep body that is not even a request."""
    wrapped = [
        pytest.param(
            b'{"query": "query($v: JSON) { personas { nodes { id } } }", "variables": {"v": '
            + deep.values[0]
            + b"}}",
            id=f"variables-{deep.id}",
        )
        for deep in deep_bodies()
    ]
    return [*wrapped, *deep_bodies()]


@pytest.mark.parametrize("body", graphql_bodies())
async def test_deep_graphql_bodies_are_bad_user_input(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    response = await client.post("/graphql", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "body"}
    assert f"more than {bodies.MAX_DEPTH} levels" in error["message"]
    await still_serving(client)
    no_unexpected_errors(caplog)


@pytest.mark.parametrize("levels", [1000, 5000])  # a URL cannot hold 100,000 levels
async def test_deep_graphql_get_variables_are_bad_user_input(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, levels: int
) -> None:
    response = await client.get(
        "/graphql", params={"query": LIST, "variables": arrays(levels).decode()}
    )
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "variables"}
    await still_serving(client)
    no_unexpected_errors(caplog)


@pytest.mark.parametrize("body", [b'"query"', b"1", b"null", b"{", b"\xff\xfe"])
async def test_a_graphql_body_that_is_not_a_request_object_is_bad_user_input(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    response = await client.post("/graphql", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    no_unexpected_errors(caplog)


TWO_OPERATIONS = """
mutation Create { createPersona(input: {name: "n", content: "c"}) { id } }
query List { personas { nodes { id } } }
"""


async def test_two_operations_without_operation_name_are_refused_and_nothing_runs(
    gql: GraphQLClient,
) -> None:
    body = await gql.execute(TWO_OPERATIONS)
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["message"] == "Must provide operation name if query contains multiple operations."
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await gql.data(LIST))["personas"]["nodes"] == []


async def test_operation_name_picks_one_of_several(gql: GraphQLClient) -> None:
    request = {"query": TWO_OPERATIONS, "operationName": "Create"}
    created = (await gql.http.post("/graphql", json=request)).json()
    persona_id = created["data"]["createPersona"]["id"]
    request = {"query": TWO_OPERATIONS, "operationName": "List"}
    listed = (await gql.http.post("/graphql", json=request)).json()
    assert listed["data"]["personas"]["nodes"] == [{"id": persona_id}]
