"""The OpenAPI 3.1 document of the REST API, generated from the code: paths and operations
from the route table, error responses from the status table, and schemas from the wire
shapes and parameter types (turned into JSON Schema by pydantic)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, TypeVar

import orjson
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema
from typing_extensions import is_typeddict

from personas.rest import wire
from personas.rest.handlers import PREFIX, JSONResponse
from personas.rest.parameters import IF_NONE_MATCH, Header, Parameter
from personas.rest.problems import PROBLEM, REFUSALS, Refusal
from personas.rest.routes import RESOURCES, Operation, Reply, Resource

INFO: Final = {
    "title": "Persona API",
    "version": "1",
    "description": (
        "LLM personas with free-form JSON metadata. Errors are application/problem+json (RFC 9457)."
    ),
}
SECURITY_SCHEMES: Final = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "An API key from `personas keys create`. A server on loopback with no key created "
            "yet also serves anonymous callers."
        ),
    }
}
T = TypeVar("T", Parameter, Header)
REF: Final = "#/components/{kind}/{name}"
JSON: Final = JSONResponse.media_type


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": REF.format(kind=kind, name=name)}


class _Untitled(GenerateJsonSchema):
    """pydantic's JSON Schema, without the titles it makes of Python names."""

    def field_title_should_be_set(self, schema: object) -> bool:
        return False

    def typed_dict_schema(self, schema: core_schema.TypedDictSchema) -> JsonSchemaValue:
        generated = super().typed_dict_schema(schema)
        generated.pop("title", None)
        return generated


def _adapter(shape: Any) -> TypeAdapter[Any]:
    """A wire shape carries its own configuration; a parameter's type is given the same."""
    return TypeAdapter(shape) if is_typeddict(shape) else TypeAdapter(shape, config=wire.OPEN)


class Schemas:
    """The JSON Schema of each shape, generated together: the shapes they share (wire shapes,
    metadata keys and values) become components that all reference."""

    def __init__(self, shapes: Iterable[Any]) -> None:
        unique = list({id(shape): shape for shape in shapes}.values())
        generated, definitions = TypeAdapter.json_schemas(
            [(index, "validation", _adapter(shape)) for index, shape in enumerate(unique)],
            ref_template=REF.format(kind="schemas", name="{model}"),
            schema_generator=_Untitled,
        )
        self._schemas = {
            id(shape): generated[(index, "validation")] for index, shape in enumerate(unique)
        }
        self.components: dict[str, Any] = definitions.get("$defs", {})

    def __getitem__(self, shape: Any) -> dict[str, Any]:
        return self._schemas[id(shape)]


def _by_key(items: Iterable[T]) -> dict[str, T]:
    """Parameters or headers by their component name: one name, one record."""
    found: dict[str, T] = {}
    for item in items:
        if found.setdefault(item.key, item) is not item:
            raise ValueError(f"two different components are named {item.key}")
    return found


def _parameters(resources: Sequence[Resource]) -> dict[str, Parameter]:
    return _by_key(
        parameter
        for resource in resources
        for operation in resource.methods.values()
        for parameter in (*resource.parameters, *operation.parameters)
    )


def _headers(resources: Sequence[Resource]) -> dict[str, Header]:
    return _by_key(
        header
        for resource in resources
        for operation in resource.methods.values()
        for header in operation.reply.headers
    )


def _shapes(resources: Sequence[Resource]) -> Iterator[Any]:
    yield wire.Problem
    for resource in resources:
        for operation in resource.methods.values():
            if operation.body is not None:
                yield operation.body.shape
            if operation.reply.shape is not None:
                yield operation.reply.shape
    yield from (parameter.shape for parameter in _parameters(resources).values())
    yield from (header.shape for header in _headers(resources).values())


def _parameter(parameter: Parameter, schemas: Schemas) -> dict[str, Any]:
    described: dict[str, Any] = {"name": parameter.name, "in": parameter.location}
    if parameter.required:
        described["required"] = True
    if parameter.description:
        described["description"] = parameter.description
    if parameter.exploded:
        described |= {"style": "form", "explode": True}
    return {**described, "schema": schemas[parameter.shape]}


def _header(header: Header, schemas: Schemas) -> dict[str, Any]:
    described: dict[str, Any] = {}
    if header.description:
        described["description"] = header.description
    if header.required:
        described["required"] = True
    return {**described, "schema": schemas[header.shape]}


def _refusal(refusal: Refusal, schemas: Schemas) -> dict[str, Any]:
    described: dict[str, Any] = {
        "description": refusal.description,
        "content": {PROBLEM: {"schema": schemas[wire.Problem]}},
    }
    if refusal.headers:
        described["headers"] = {name: {"schema": {"type": "string"}} for name in refusal.headers}
    return described


def _reply(reply: Reply, schemas: Schemas) -> dict[str, Any]:
    described: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        described["headers"] = {
            header.name: _ref("headers", header.key) for header in reply.headers
        }
    if reply.shape is not None:
        described["content"] = {JSON: {"schema": schemas[reply.shape]}}
    return described


def _operation(operation: Operation, schemas: Schemas) -> dict[str, Any]:
    refusals = {refusal.status: refusal for refusal in REFUSALS}
    everywhere = () if operation.public else (r.status for r in REFUSALS if r.everywhere)
    statuses = sorted({*operation.errors, *everywhere})
    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
    }
    if operation.public:
        described["security"] = []
    if operation.parameters:
        described["parameters"] = [_ref("parameters", p.key) for p in operation.parameters]
    if operation.body is not None:
        body = operation.body
        described["requestBody"] = {
            "required": True,
            "content": {body.media_type: {"schema": schemas[body.shape]}},
        }
    described["responses"] = {
        str(operation.reply.status): _reply(operation.reply, schemas),
        **_not_modified(operation),
        **{str(status): _ref("responses", refusals[status].name) for status in statuses},
    }
    return described


def _not_modified(operation: Operation) -> dict[str, Any]:
    """The 304 of a read that takes If-None-Match: its reply's ETag, and no body."""
    if IF_NONE_MATCH not in operation.parameters:
        return {}
    [etag] = [header for header in operation.reply.headers if header.name == "ETag"]
    return {
        "304": {
            "description": "Not Modified: If-None-Match names the current ETag. No body.",
            "headers": {etag.name: _ref("headers", etag.key)},
        }
    }


def _path_item(resource: Resource, schemas: Schemas) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if resource.parameters:
        item["parameters"] = [_ref("parameters", p.key) for p in resource.parameters]
    for method, operation in resource.methods.items():
        item[method.lower()] = _operation(operation, schemas)
    return item


def generate(resources: Sequence[Resource]) -> dict[str, Any]:
    """The document of a route table."""
    schemas = Schemas(_shapes(resources))
    paths = {PREFIX + resource.path: _path_item(resource, schemas) for resource in resources}
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": paths,
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": schemas.components,
            "parameters": {
                key: _parameter(parameter, schemas)
                for key, parameter in _parameters(resources).items()
            },
            "responses": {refusal.name: _refusal(refusal, schemas) for refusal in REFUSALS},
            "headers": {
                key: _header(header, schemas) for key, header in _headers(resources).items()
            },
        },
    }


@functools.cache
def _generated() -> dict[str, Any]:
    return generate(RESOURCES)


def document() -> dict[str, Any]:
    """The OpenAPI document (a copy: it is generated once)."""
    return copy.deepcopy(_generated())


@functools.cache
def served() -> bytes:
    """The document as /v1/openapi.json serves it."""
    return orjson.dumps(_generated())
