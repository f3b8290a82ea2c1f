"""The schema: queries and mutations with their guards (depth, alias and token limits, a
bounded cache of prepared documents, no introspection in production), and how errors are
shown to callers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult

from personas import domain
from personas.domain import DomainError
from personas.graphql.documents import DocumentRules, PreparedDocuments
from personas.graphql.execution import PreparedSchema
from personas.graphql.notifications import (
    NotificationMutation,
    NotificationQuery,
    Subscription,
    SubscriptionsOverWebSocket,
)
from personas.graphql.releases import ReleaseMutation, ReleaseQuery
from personas.graphql.resolvers import Mutation, Query
from personas.settings import Settings


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with its guards: depth, alias and token limits, bounded caches, and in
    production no introspection and no field suggestions."""
    settings = settings or Settings()
    rules = DocumentRules(
        max_tokens=settings.graphql_max_tokens,
        validation=(
            *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        ),
        introspection=not settings.production,
    )
    # Queries and mutations run their prepared documents in PersonaSchema.execute; these
    # extensions apply the same documents and errors to strawberry's other paths.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: DomainErrors(hide_suggestions=settings.production),
        lambda: PreparedDocuments(schema.documents),
        SubscriptionsOverWebSocket,
    ]
    query = merge_types("Query", (Query, ReleaseQuery, NotificationQuery))
    mutation = merge_types("Mutation", (Mutation, ReleaseMutation, NotificationMutation))
    schema = PersonaSchema(
        query=query,
        mutation=mutation,
        subscription=Subscription,
        extensions=extensions,
        rules=rules,
        cache_size=settings.graphql_cache_size,
        hide_suggestions=settings.production,
    )
    return schema


def present_error(error: GraphQLError) -> GraphQLError:
    """Expected errors keep their message and code; anything else is masked."""
    original = error.original_error
    if original is None:
        return error
    if isinstance(original, DomainError):
        extensions: dict[str, Any] = {"code": original.code}
        if isinstance(original, domain.InvalidInput):
            extensions["field"] = original.field
        if isinstance(original, domain.Conflict) and original.current_version is not None:
            extensions["currentVersion"] = original.current_version
        message = original.message
    elif isinstance(original, GraphQLError):
        return error if _is_coercion(error) else original
    else:
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
        message = "Unexpected error."
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def presented(errors: list[GraphQLError], hide_suggestions: bool) -> list[GraphQLError]:
    """Errors as callers see them: expected ones with their code, the rest masked, and in
    production no "Did you mean ...?" hints."""
    shown = [present_error(error) for error in errors]
    return [without_suggestion(error) for error in shown] if hide_suggestions else shown


def add_code(error: GraphQLError) -> None:
    """A document refused before it ran gets the code clients switch on (in place: the
    validation cache hands out the same error objects again)."""
    if error.path is not None or (error.extensions or {}).get("code"):
        return
    if _is_coercion(error):
        code = "BAD_USER_INPUT"
    elif error.original_error is not None:
        return
    elif error.message.startswith("Syntax Error"):
        code = "GRAPHQL_PARSE_FAILED"
    else:
        code = "GRAPHQL_VALIDATION_FAILED"
    error.extensions = {**(error.extensions or {}), "code": code}


_COERCION = re.compile(
    r"Variable '\$[^']+' (has invalid (default )?value|got invalid value "
    r"|of required type .* was not provided\.|of non-null type .* must not be null\.)"
)


def _is_coercion(error: GraphQLError) -> bool:
    """A variable's value refused before the operation ran (graphql-core's messages)."""
    return error.path is None and bool(_COERCION.match(error.message))


class PersonaSchema(PreparedSchema):
    def __init__(self, *, hide_suggestions: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.hide_suggestions = hide_suggestions

    def present_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return presented(errors, self.hide_suggestions)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log what went wrong unexpectedly; expected errors are the caller's business."""
        for error in errors:
            add_code(error)
        unexpected = [error for error in errors if not _expected(error)]
        super().process_errors(unexpected, execution_context)


def _expected(error: GraphQLError) -> bool:
    return error.original_error is None or isinstance(
        error.original_error, DomainError | GraphQLError
    )


_SUGGESTION = re.compile(r"\s*Did you mean .*\?$")


def without_suggestion(error: GraphQLError) -> GraphQLError:
    """The error without its "Did you mean ...?" hint, which would reveal the schema."""
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=error.extensions,
    )


class DomainErrors(SchemaExtension):
    def __init__(self, hide_suggestions: bool = False) -> None:
        self.hide_suggestions = hide_suggestions

    def on_operation(self) -> Iterator[None]:
        yield
        self._present(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each result a subscription sends, before it is sent."""
        self._present(result)
        yield

    def _present(self, result: object) -> None:
        if isinstance(result, ExecutionResult | GraphQLExecutionResult) and result.errors:
            result.errors = presented(result.errors, self.hide_suggestions)
