"""Which operation of a document runs: the one `operationName` names, or the only one. A
document holding several and no name is refused (GraphQL spec, GetOperation), where
strawberry would run the first."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

MISSING_NAME = "Must provide operation name if query contains multiple operations."
"""graphql-core's wording of the same refusal."""


class OperationNameRequired(SchemaExtension):
    """Refuses, as a validation error, a document with several operations and no
    `operationName`; nothing of it runs. Runs after the validation cache."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # strawberry fills `operation_name` with the first operation's name when the request
        # gave none; what the request gave is kept aside.
        given = getattr(context, "_provided_operation_name", None)
        if document is not None and given is None:
            operations = [
                node for node in document.definitions if isinstance(node, OperationDefinitionNode)
            ]
            if len(operations) > 1:
                refusal = GraphQLError(MISSING_NAME, nodes=operations)
                context.pre_execution_errors = [*(context.pre_execution_errors or []), refusal]
        yield
