"""The floor: a minimal Starlette app making the same store calls as each scenario's request.

It takes the same request (the GraphQL scenarios' POST bodies, the REST scenarios' paths and
query strings), makes the same domain and store calls the product makes, and answers the same
JSON, encoded with orjson. What is left is the cost of the request with no GraphQL or REST
layer: HTTP, one store call, JSON. Run as `python -m bench.floor` (uvicorn, one worker).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from personas import domain, services
from personas.rest.wire import persona_json as rest_persona
from personas.settings import Settings
from personas.store import PersonaStore

HOST_VARIABLE = "BENCH_FLOOR_HOST"
PORT_VARIABLE = "BENCH_FLOOR_PORT"


def respond(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def store_of(request: Request) -> PersonaStore:
    store: PersonaStore = request.app.state.store
    return store


async def variables_of(request: Request) -> dict[str, Any]:
    body = orjson.loads(await request.body())
    variables: dict[str, Any] = body.get("variables") or {}
    return variables


# -- GraphQL-shaped answers (strawberry's DateTime is isoformat()) ------------------------


def graphql_persona(persona: domain.Persona) -> dict[str, Any]:
    return {
        "id": persona.id,
        "name": persona.name,
        "content": persona.content,
        "metadata": persona.metadata,
        "version": persona.version,
        "createdAt": persona.created_at.isoformat(),
        "updatedAt": persona.updated_at.isoformat(),
    }


async def graphql_persona_by_id(request: Request) -> Response:
    variables = await variables_of(request)
    found = await store_of(request).get(domain.ANONYMOUS, domain.parse_id(variables["id"]))
    return respond({"data": {"persona": None if found is None else graphql_persona(found)}})


def filter_specs(variables: dict[str, Any]) -> list[domain.FilterSpec]:
    return [
        domain.FilterSpec(item["path"], item.get("value"), domain.Operator(item.get("op", "eq")))
        for item in variables.get("filter") or ()
    ]


async def graphql_personas(request: Request) -> Response:
    variables = await variables_of(request)
    query = domain.persona_query(all_of=filter_specs(variables))
    page = await services.list_personas(
        store_of(request), domain.ANONYMOUS, query, variables.get("first"), variables.get("after")
    )
    connection = {
        "nodes": [graphql_persona(item) for item in page.items],
        "pageInfo": {"hasNextPage": page.has_next, "endCursor": page.end_cursor},
    }
    return respond({"data": {"personas": connection}})


def graphql_revision(revision: domain.Revision) -> dict[str, Any]:
    return {
        "personaId": revision.persona_id,
        "version": revision.version,
        "name": revision.name,
        "content": revision.content,
        "metadata": revision.metadata,
        "operation": revision.operation.name,
        "actor": revision.actor,
        "createdAt": revision.created_at.isoformat(),
    }


async def graphql_revision_by_label(request: Request) -> Response:
    variables = await variables_of(request)
    found = await services.get_revision(
        store_of(request),
        domain.ANONYMOUS,
        domain.parse_id(variables["id"]),
        label=variables["label"],
    )
    revision = None if found is None else graphql_revision(found)
    return respond({"data": {"personaRevision": revision}})


async def graphql_releases(request: Request) -> Response:
    variables = await variables_of(request)
    query = domain.persona_query(all_of=filter_specs(variables))
    page = await services.list_releases(
        store_of(request),
        domain.ANONYMOUS,
        variables["label"],
        query,
        variables.get("first"),
        variables.get("after"),
    )
    connection = {
        "nodes": [graphql_revision(item) for item in page.items],
        "pageInfo": {"hasNextPage": page.has_next, "endCursor": page.end_cursor},
    }
    return respond({"data": {"personaReleases": connection}})


async def graphql_create_persona(request: Request) -> Response:
    given = (await variables_of(request))["input"]
    new = domain.new_persona(given["name"], given["content"], given.get("metadata"))
    created = await store_of(request).create(domain.ANONYMOUS, new)
    return respond({"data": {"createPersona": graphql_persona(created)}})


# -- REST-shaped answers -------------------------------------------------------------------


async def rest_persona_by_id(request: Request) -> Response:
    persona_id = domain.parse_id(request.path_params["persona_id"])
    found = await store_of(request).get(domain.ANONYMOUS, persona_id)
    if found is None:
        return respond({"status": 404, "title": "Not Found"}, status_code=404)
    return respond(rest_persona(found))


async def rest_personas(request: Request) -> Response:
    parameters = request.query_params
    specs = [
        domain.FilterSpec(name.removeprefix("metadata."), value)
        for name, value in parameters.multi_items()
        if name.startswith("metadata.")
    ]
    query = domain.persona_query(all_of=specs)
    limit = parameters.get("limit")
    page = await services.list_personas(
        store_of(request),
        domain.ANONYMOUS,
        query,
        None if limit is None else int(limit),
        parameters.get("cursor"),
        "limit",
        "cursor",
    )
    return respond(
        {
            "data": [rest_persona(item) for item in page.items],
            "next_cursor": page.end_cursor if page.has_next else None,
        }
    )


STATUS = {"BAD_USER_INPUT": 400, "NOT_FOUND": 404, "SERVICE_UNAVAILABLE": 503}


async def domain_error(request: Request, error: Exception) -> Response:
    """Expected errors as a short JSON body (so that load tests see a status, not a 500)."""
    assert isinstance(error, domain.DomainError)
    return respond({"code": error.code, "message": error.message}, STATUS.get(error.code, 500))


async def healthz(request: Request) -> Response:
    return respond({"status": "ok"})


def create_floor(settings: Settings) -> Starlette:
    if settings.mongodb_uri is None:
        raise ValueError("the floor needs MONGODB_URI")
    uri = settings.mongodb_uri

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = PersonaStore.connect(
            uri, settings.db_name, settings.db_timeout_ms, settings.indexed_paths
        )
        app.state.store = store
        try:
            yield
        finally:
            await store.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/graphql/persona", graphql_persona_by_id, methods=["POST"]),
        Route("/graphql/personas", graphql_personas, methods=["POST"]),
        Route("/graphql/createPersona", graphql_create_persona, methods=["POST"]),
        Route("/graphql/personaRevision", graphql_revision_by_label, methods=["POST"]),
        Route("/graphql/personaReleases", graphql_releases, methods=["POST"]),
        Route("/v1/personas/{persona_id}", rest_persona_by_id, methods=["GET"]),
        Route("/v1/personas", rest_personas, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={domain.DomainError: domain_error},
    )


def floor_from_environment() -> Starlette:
    """The uvicorn factory: database settings come from the same variables the product reads."""
    return create_floor(Settings.from_env())


def main() -> None:
    uvicorn.run(
        "bench.floor:floor_from_environment",
        factory=True,
        host=os.environ.get(HOST_VARIABLE, "127.0.0.1"),
        port=int(os.environ[PORT_VARIABLE]),
        workers=1,
        loop="uvloop",
        http="httptools",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
