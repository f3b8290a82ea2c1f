"""A strawberry schema whose queries and mutations run prepared documents (documents.py)
without strawberry's per-request extension runner. It makes the decisions strawberry's
`Schema.execute` makes, in the same order: no query, a document that does not parse, an
operation that is not there or not allowed, a document refused by the rules, then
execution; errors go through `process_errors` and are shown by `present_errors`.
Subscriptions keep strawberry's own path, where `PreparedDocuments` hands them the same
documents."""

from __future__ import annotations

from collections.abc import Iterable
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import GraphQLError, execute
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from personas.domain import InvalidInput
from personas.graphql.documents import DocumentRules, Documents
from personas.graphql.plans import IS_AWAITABLE, PlannedExecutor
from personas.graphql.resolving import install_direct_resolvers


class PreparedSchema(strawberry.Schema):
    def __init__(self, *, rules: DocumentRules, cache_size: int, **options: Any) -> None:
        super().__init__(**options)
        self.direct_resolvers = install_direct_resolvers(self)
        self.documents = Documents(self._schema, rules, cache_size)

    def present_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """The errors as callers see them (after `process_errors` has seen them)."""
        return errors

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        if self.config.enable_experimental_incremental_execution:
            return await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        if not query:
            raise MissingQueryError
        prepared = self.documents.prepare(query)
        if prepared.document is None:
            return self._refused(list(prepared.errors))
        chosen = prepared.chosen(self._schema, operation_name)
        if chosen is None:
            raise CannotGetOperationTypeError(operation_name)
        operation_type = chosen.operation_type
        allowed = (
            DEFAULT_ALLOWED_OPERATION_TYPES
            if allowed_operation_types is None
            else allowed_operation_types
        )
        if operation_type not in allowed:
            raise InvalidOperationTypeError(operation_type)
        if operation_type is OperationType.SUBSCRIPTION:
            # Plain HTTP would run a subscription once and never read its stream.
            refused = InvalidInput(
                "subscription", "subscribe over a WebSocket (graphql-transport-ws) at /graphql"
            )
            return self._refused([GraphQLError(refused.message, original_error=refused)])
        if chosen.refusals:
            return self._refused(list(chosen.refusals))
        options: dict[str, Any] = {
            "root_value": root_value,
            "context_value": context_value,
            "variable_values": variable_values,
            "is_awaitable": IS_AWAITABLE,
            "operation_extensions": operation_extensions,
            "plans": prepared.plans,
        }
        plan, direct = chosen.plan, chosen.direct
        try:
            if direct is not None:
                result = direct.run(self._schema, **options)
            elif plan is not None:
                result = PlannedExecutor.run(self._schema, plan, **options)
            else:
                result = execute(
                    self._schema,
                    prepared.document,
                    operation_name=operation_name,
                    executor_class=PlannedExecutor,
                    **options,
                )
            if isawaitable(result):
                result = await result
        except Exception as error:  # shown masked, as strawberry does
            return self._refused([_coerced(error)])
        if not result.errors:
            return ExecutionResult(data=result.data, errors=None)
        self._process_errors(result.errors)
        return ExecutionResult(data=result.data, errors=self.present_errors(result.errors))

    def _refused(self, errors: list[GraphQLError]) -> ExecutionResult:
        self._process_errors(errors)
        return ExecutionResult(data=None, errors=self.present_errors(errors))


def _coerced(error: Exception) -> GraphQLError:
    return (
        error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)
    )
