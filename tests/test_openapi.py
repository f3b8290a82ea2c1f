"""The OpenAPI document: valid, complete, and true to the running API (schemathesis)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from pydantic import Field, with_config
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import unsupported_method
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from typing_extensions import is_typeddict

from personas import domain, openapi
from personas.app import create_app
from personas.auth import PUBLIC_PATHS, generate_key
from personas.rest import handlers as rest
from personas.rest import parameters, querystring, wire
from personas.rest.problems import REFUSALS, BodyTooLarge, PreconditionFailed
from personas.rest.routes import RESOURCES, Operation, Reply, Resource
from personas.settings import Settings
from personas.store import PersonaStore

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


async def test_the_document_is_served_and_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert document == openapi.document()


def rest_operations(app: Starlette) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves under the REST prefix."""
    operations: set[tuple[str, str]] = set()
    for route in app.routes:
        if not (isinstance(route, Route) and route.path.startswith(rest.PREFIX + "/")):
            continue
        assert route.methods is not None
        operations |= {(method.lower(), route.path) for method in route.methods if method != "HEAD"}
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_the_document_describes_exactly_the_rest_routes(app: Starlette) -> None:
    served = rest_operations(app)
    assert ("post", "/v1/personas") in served
    assert ("delete", "/v1/personas/{id}") in served
    assert served == documented_operations(openapi.document())


def test_every_resource_of_the_route_table_is_documented() -> None:
    paths = openapi.document()["paths"]
    assert [rest.PREFIX + resource.path for resource in RESOURCES] == list(paths)
    for resource in RESOURCES:
        item = paths[rest.PREFIX + resource.path]
        in_path = {p.name for p in resource.parameters if p.location == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", resource.path))
        for method, operation in resource.methods.items():
            described = item[method.lower()]
            assert described["operationId"] == operation.operation_id
            assert str(operation.reply.status) in described["responses"]
            assert all(str(status) in described["responses"] for status in operation.errors)
    ids = [
        operation.operation_id for resource in RESOURCES for operation in resource.methods.values()
    ]
    assert len(ids) == len(set(ids))


WIRE_SHAPES = [
    shape
    for shape in vars(wire).values()
    if is_typeddict(shape) and shape.__module__ == wire.__name__
]


@pytest.mark.parametrize("shape", WIRE_SHAPES, ids=lambda shape: shape.__name__)
def test_each_wire_shape_is_a_component_with_exactly_its_fields(shape: Any) -> None:
    component = openapi.document()["components"]["schemas"][shape.__name__]
    assert list(component["properties"]) == list(shape.__annotations__)
    assert set(component.get("required", ())) == shape.__required_keys__
    closed = getattr(shape, "__pydantic_config__", {}).get("extra") == "forbid"
    assert component.get("additionalProperties", True) is not closed


@with_config(wire.CLOSED)
class LabelledPersona(wire.Persona):
    labels: Annotated[list[str], Field(max_length=domain.TAGS_PER_CALL_MAX)]


async def labelled_persona(request: Request) -> Response:
    raise NotImplementedError


def test_a_route_or_a_field_is_documented_by_adding_it_to_the_code_alone() -> None:
    added = Resource(
        "/personas/{id}/labelled",
        "labelled_persona",
        {
            "GET": Operation(
                labelled_persona,
                "getLabelledPersona",
                "A persona and its labels",
                Reply(200, "The persona.", LabelledPersona, (parameters.ETAG,)),
                errors=(404,),
            )
        },
        (parameters.PERSONA_ID,),
    )
    document = openapi.generate((*RESOURCES, added))
    validate(document)
    operation = document["paths"]["/v1/personas/{id}/labelled"]["get"]
    assert operation["operationId"] == "getLabelledPersona"
    assert set(operation["responses"]) == {"200", "401", "403", "404", "500", "503"}
    reply = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert reply == {"$ref": "#/components/schemas/LabelledPersona"}
    schemas = document["components"]["schemas"]
    labelled = schemas["LabelledPersona"]
    assert list(labelled["properties"]) == [*schemas["Persona"]["properties"], "labels"]
    assert labelled["properties"]["labels"] == {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": domain.TAGS_PER_CALL_MAX,
    }
    assert "labels" in labelled["required"]
    assert "/v1/personas/{id}/labelled" not in openapi.document()["paths"]


def test_the_operations_served_without_a_key_are_documented_so() -> None:
    public = {
        path
        for path, item in openapi.document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS and operation.get("security") == []
    }
    assert public == {path for path in PUBLIC_PATHS if path.startswith(rest.PREFIX)}


def test_every_expected_error_has_one_status_and_a_documented_response() -> None:
    responses = openapi.document()["components"]["responses"]
    errors = [*domain.DomainError.__subclasses__(), PreconditionFailed, BodyTooLarge]
    for error in errors:
        rows = [refusal for refusal in REFUSALS if issubclass(error, refusal.raised_by)]
        assert len(rows) == 1, error
        assert responses[rows[0].name]["description"] == rows[0].description
    assert len({refusal.status for refusal in REFUSALS}) == len(REFUSALS)


def test_the_rules_constants_are_in_the_document() -> None:
    served = orjson.dumps(openapi.document()).decode()
    for constant in (
        domain.KEY_PATTERN,
        domain.PATH_PATTERN,
        domain.NAME_PATTERN,
        domain.ID_PATTERN,
        querystring.SORT_PATTERN,
        querystring.FILTER_PATTERN,
        rest.IF_MATCH_PATTERN,
    ):
        assert orjson.dumps(constant).decode()[1:-1] in served
    components = openapi.document()["components"]
    content = components["schemas"]["PersonaCreate"]["properties"]["content"]
    assert content["maxLength"] == domain.CONTENT_MAX
    assert components["parameters"]["Limit"]["schema"]["maximum"] == domain.PAGE_MAX
    assert components["parameters"]["MetadataFilters"]["schema"]["maxProperties"] == (
        domain.FILTERS_MAX
    )
    operation = components["schemas"]["Revision"]["properties"]["operation"]
    assert operation["enum"] == [item.value for item in domain.Operation]


# ---------------------------------------------------------------------------
# schemathesis: generated requests against the running app, checked against the document


class Deferred:
    """An ASGI app standing for one made later: the schema is loaded at import time, the app
    needs the database fixture."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the `api_key` fixture provides the app"
        await self.app(scope, receive, send)


DEFERRED = Deferred()
schema = schemathesis.openapi.from_dict(openapi.document())
HEADER_PATTERNS = {
    parameter["name"]: parameter["schema"]["pattern"]
    for parameter in openapi.document()["components"]["parameters"].values()
    if parameter["in"] == "header" and "pattern" in parameter["schema"]
}
schema.app = DEFERRED


@pytest.fixture(scope="module")
async def api_key(mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """An app of its own behind DEFERRED, and an API key for it. schemathesis runs the app's
    lifespan (and so its store) on its own event loop."""
    configured = Settings(
        mongodb_uri=mongodb_uri,
        db_name=f"test_{uuid.uuid4().hex[:16]}",
        data_dir=Path(tmp_path_factory.mktemp("fuzz")),
        indexed_paths=("status",),
        # Room for the largest valid body even with every character \u-escaped.
        max_body_bytes=8 * 1024 * 1024,
    )
    store = PersonaStore.connect(mongodb_uri, configured.db_name, configured.db_timeout_ms)
    key = generate_key()
    await store.keys.create(key.id, key.secret_hash, "fuzz", frozenset({"read", "write"}), "fuzz")
    DEFERRED.app = create_app(configured)
    yield key.token
    asgi.shutdown_lifespans()
    DEFERRED.app = None
    try:
        fuzz = domain.Principal(tenant="fuzz", scopes=frozenset({"read"}))
        created = await store.count(fuzz, domain.persona_query())
        assert created > 0, "authenticated requests reached the database"
    finally:
        await store.drop_database()
        await store.close()


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_conforms_to_its_document(case: Any, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    response = case.call(headers=headers)
    excluded = []
    if case.query and "cursor" in case.query:
        # Only the server makes valid cursors: a generated one is rightly refused with 400.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if case.meta and any(info.mode.is_negative for info in case.meta.components.values()):
        # The coverage phase marks a case positive by its body even when a header it carries
        # was generated to break the schema (`If-Match: 0`), which is rightly refused with 400.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if any(name.split(".")[0] == "metadata" for name in case.query or ()):
        # The filters are one exploded object parameter. schemathesis sends it through
        # requests, which drops null values and turns numbers into text, so a generated
        # schema-violating object often arrives as a valid query string. Refusals of bad
        # filters are tested one by one in test_rest_errors.py.
        excluded.append(schemathesis.checks.negative_data_rejection)
    if any(
        not re.search(pattern, case.headers[name])
        for name, pattern in HEADER_PATTERNS.items()
        if name in (case.headers or {})
    ):
        # The coverage phase also combines optional headers with values that ignore their
        # pattern (`If-Match: 0` beside an Idempotency-Key) and still marks the case positive.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if response.status_code == 422 and "Idempotency-Key" in (case.headers or {}):
        # Generated cases share keys ("0") across different requests: rightly refused.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if response.status_code == 415 and case.method.upper() != case.operation.method.upper():
        # The app's JsonBodies middleware refuses a POST/PUT/PATCH without a JSON content
        # type before routing, so such an undeclared method gets 415 rather than 405.
        excluded.append(unsupported_method)
    case.validate_response(
        response, headers=headers, excluded_checks=excluded, transport_kwargs={"headers": headers}
    )
