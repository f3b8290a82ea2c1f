"""GraphQL documents prepared once per distinct text: parsed under the token limit and
validated under every rule (graphql-core's and strawberry's own, the depth and alias limits,
no introspection in production), kept in a bounded cache. A text refused once is refused
from the cache with the same errors; which operation of a document runs is decided per
request, from the request's `operationName`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from personas.graphql.direct import DirectRoot, direct_root
from personas.graphql.plans import IS_AWAITABLE, Plans, RootPlan, root_plan

MISSING_NAME = "Must provide operation name if query contains multiple operations."
"""graphql-core's wording of the refusal of a document holding several operations and no
`operationName` (GraphQL spec, GetOperation), where strawberry would run the first."""


@dataclass(frozen=True, slots=True)
class DocumentRules:
    """What a document must keep to to run."""

    max_tokens: int
    validation: tuple[type[ASTValidationRule], ...]
    """The rules besides graphql-core's standard ones (depth, aliases)."""
    introspection: bool = True

    def all(self) -> tuple[type[ASTValidationRule], ...]:
        """Every rule a document is validated under (strawberry adds its own two)."""
        rules = (*specified_rules, *self.validation)
        return rules if self.introspection else (*rules, NoSchemaIntrospectionCustomRule)


@dataclass(frozen=True, slots=True)
class Chosen:
    """An operation of a valid document as a request's `operationName` chose it: its type,
    what refuses it, and (when nothing does) how it runs."""

    operation_type: OperationType
    refusals: tuple[GraphQLError, ...]
    plan: RootPlan | None
    direct: DirectRoot | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A document text as parsed and validated: the document (None when it did not parse),
    the errors that refuse it (none for a valid document), and its operations."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    operations: tuple[OperationDefinitionNode, ...] = ()
    plans: Plans = field(default_factory=dict, compare=False)
    """Completion plans for the document's objects (plans.py), made as execution meets them."""
    roots: dict[int, RootPlan | None] = field(default_factory=dict, compare=False)
    """Root plans by the identity of the operation (one of `operations`), made as it runs."""
    choices: dict[str | None, Chosen] = field(default_factory=dict, compare=False)
    """What each `operationName` chose (only names of the document's operations, and None)."""

    def chosen(self, schema: GraphQLSchema, name: str | None) -> Chosen | None:
        """The operation `name` chooses in this valid document, or None when there is none
        (`operation`); its root plan and direct root (direct.py) made when nothing refuses
        it."""
        found = self.choices.get(name)
        if found is not None:
            return found
        operation = self.operation(name)
        if operation is None:
            return None
        refusals = tuple(self.refusals(name))
        plan = None if refusals else self.root_plan(schema, operation)
        direct = None if plan is None else direct_root(schema, plan, IS_AWAITABLE)
        found = self.choices[name] = Chosen(
            OperationType(operation.operation.value), refusals, plan, direct
        )
        return found

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation `name` selects: the one of that name, or the first without a name."""
        if name is None:
            return self.operations[0] if self.operations else None
        for operation in self.operations:
            if operation.name is not None and operation.name.value == name:
                return operation
        return None

    def root_plan(
        self, schema: GraphQLSchema, operation: OperationDefinitionNode
    ) -> RootPlan | None:
        """The root plan of `operation`, one of this valid document's (plans.py)."""
        key = id(operation)
        roots = self.roots
        if key in roots:
            return roots[key]
        assert self.document is not None
        plan = roots[key] = root_plan(schema, self.document, operation)
        return plan

    def refusals(self, name: str | None) -> list[GraphQLError]:
        """Why the document may not run with `operationName` `name` (empty: it may)."""
        errors = list(self.errors)
        if name is None and len(self.operations) > 1:
            errors.append(GraphQLError(MISSING_NAME, nodes=list(self.operations)))
        return errors


class Documents:
    """Prepared documents by text, the least recently used dropped beyond `max_entries`."""

    def __init__(self, schema: GraphQLSchema, rules: DocumentRules, max_entries: int) -> None:
        self.schema = schema
        self.rules = rules
        self.max_entries = max_entries
        self._validation = rules.all()
        self._prepared: OrderedDict[str, Prepared] = OrderedDict()

    def __len__(self) -> int:
        return len(self._prepared)

    def prepare(self, text: str) -> Prepared:
        prepared = self._prepared.get(text)
        if prepared is not None:
            self._prepared.move_to_end(text)
            return prepared
        prepared = self._prepare(text)
        self._prepared[text] = prepared
        if len(self._prepared) > self.max_entries:
            self._prepared.popitem(last=False)
        return prepared

    def _prepare(self, text: str) -> Prepared:
        try:
            document = parse(text, max_tokens=self.rules.max_tokens)
        except GraphQLError as error:
            return Prepared(None, (error,))
        except Exception as error:  # shown masked, as strawberry does
            return Prepared(None, (GraphQLError(str(error), original_error=error),))
        return self.validated(document)

    def validated(self, document: DocumentNode) -> Prepared:
        """A parsed document validated under the rules (not cached)."""
        errors = validate_document(self.schema, document, self._validation)
        operations = tuple(
            node for node in document.definitions if isinstance(node, OperationDefinitionNode)
        )
        return Prepared(document, tuple(errors), operations)


class PreparedDocuments(SchemaExtension):
    """Hands prepared documents to strawberry's own execution paths (subscriptions): the
    same parse, the same rules, the same cache as `PreparedSchema.execute`."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # A text that does not parse is parsed again by strawberry, under the same limit,
        # which reports its error the way strawberry reports parse errors.
        context.parse_options["max_tokens"] = self.documents.rules.max_tokens
        if context.query and context.graphql_document is None:
            context.graphql_document = self.documents.prepare(context.query).document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            prepared = self.documents.prepare(context.query) if context.query else None
            if prepared is None or prepared.document is not document:
                prepared = self.documents.validated(document)
            # strawberry fills `operation_name` with the first operation's name when the
            # request gave none; what the request gave is kept aside.
            given = getattr(context, "_provided_operation_name", None)
            context.pre_execution_errors = prepared.refusals(given)
        yield
