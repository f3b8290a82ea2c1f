"""Completion plans: an object value whose selected fields are all plain attributes is
completed from a plan made once per prepared document, instead of by graphql-core's general
executor (a resolve info, a path and four calls per field).

A plan is made for an object type and the field nodes that select it, when every field
selected is one strawberry reads straight off the object (a field without a resolver, an
extension or arguments) or `__typename`, nothing in the selection carries a directive, and
every object type reached has no `is_type_of` check and is not abstract. Completing from a
plan does what graphql-core does on the way that succeeds: the same values in the same order,
leaf values through the same `coerce_output_value`. Anything else it meets (a null where the
schema says non-null, a value a scalar refuses, an awaitable, an exception, a value that is
not a list where the schema says list) makes it give the object back to graphql-core's
executor, which completes it again from the start and reports what it finds exactly as it
always does: reading plain attributes twice has no effect.

A root plan is made once per query operation of a prepared document whose root selection has
no directive (so no variable decides which root fields run) and whose fragments declare no
variables: the root fields collected once, and the fragments sorted once. Running it does what
graphql-core's `execute` does for such an operation after collecting its root fields: the
variables coerced for each request, then the same executor executing the same root fields and
reporting errors the same way. When every variable is a built-in scalar without a default
(String, ID, Boolean, Int), a request whose values are all of the exact type the scalar takes
as it is (or null, or left out where allowed) has them taken so, as graphql-core would; any
other value is coerced, and refused, by graphql-core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Any, Final, TypeAlias, TypeGuard, cast

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    default_field_resolver,
    default_type_resolver,
    get_variable_values,
    is_leaf_type,
)
from graphql.execution.collect_fields import (
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.language.ast import FragmentDefinitionNode
from graphql.pyutils import AwaitableOrValue, Path
from graphql.type.scalars import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    serialize_boolean,
    serialize_id,
    serialize_int,
    serialize_string,
)
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

Complete: TypeAlias = Callable[[Any], Any]
"""A value completed for one output type; raises `GiveBack` where graphql-core must do it."""

PlanKey: TypeAlias = tuple[str, tuple[int, ...]]
Plans: TypeAlias = dict[PlanKey, "Complete | None"]
"""Plans by object type name and the identities of the field nodes that select it (nodes of
one prepared document, which keeps the plans alive as long as itself); None: no plan."""

BACKREF: Final = GraphQLCoreConverter.DEFINITION_BACKREF
IS_AWAITABLE: Final = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)
"""strawberry's quick check of resolver results, as strawberry passes it to graphql-core."""
NEVER_AWAITABLE: Final = frozenset(
    {type(None), bool, int, float, str, bytes, list, tuple, dict, set, frozenset, datetime, date}
)
"""Types whose values are never awaitable (of these exact types): their values need no
`is_awaitable` call, which answers False for them."""
PASSED_THROUGH: Final[dict[Callable[[Any], Any], type]] = {
    serialize_string: str,
    serialize_id: str,
    serialize_boolean: bool,
}
"""graphql-core's scalars that answer a value of this exact type with the value itself."""


TAKEN_AS_THEY_ARE: Final = (
    (GraphQLString, str),
    (GraphQLID, str),
    (GraphQLBoolean, bool),
    (GraphQLInt, int),
)
"""graphql-core's input scalars that coerce a value of this exact type to the value itself
(an Int only within 32 bits)."""


class GiveBack(Exception):
    """The value is not on a plan's way: graphql-core's executor completes it."""


@dataclass(frozen=True, slots=True)
class RootPlan:
    """A query operation whose root fields no variable decides, collected once."""

    operation: OperationDefinitionNode
    root_type: GraphQLObjectType
    fragment_definitions: dict[str, FragmentDefinitionNode]
    fragments: dict[str, FragmentDetails]
    root_fields: GroupedFieldSet
    variables: tuple[PlainVariable, ...] | None
    """The operation's variables when each is a plain one; None: graphql-core coerces them."""


@dataclass(frozen=True, slots=True)
class PlainVariable:
    """A variable of a built-in scalar type (String, ID, Boolean, Int), with no default."""

    signature: GraphQLVariableSignature
    kind: type
    non_null: bool


def plain_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> tuple[PlainVariable, ...] | None:
    """The operation's variables, when every one is plain (`PlainVariable`); else None."""
    found = []
    for node in operation.variable_definitions or ():
        if node.default_value is not None or node.directives:
            return None
        signature = get_variable_signature(schema, node)
        if isinstance(signature, GraphQLError):
            return None
        non_null = isinstance(signature.type, GraphQLNonNull)
        bare = signature.type.of_type if non_null else signature.type  # type: ignore[union-attr]
        kind = next((kind for scalar, kind in TAKEN_AS_THEY_ARE if bare is scalar), None)
        if kind is None:
            return None
        found.append(PlainVariable(signature, kind, non_null))
    return tuple(found)


def coerce_plain(
    variables: tuple[PlainVariable, ...], inputs: dict[str, Any]
) -> VariableValues | None:
    """What graphql-core's `get_variable_values` answers for these inputs, when every value
    is one its scalar takes as it is, or null, or left out where that is allowed; None for
    anything else (graphql-core coerces those, and reports what it refuses)."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for variable in variables:
        signature = variable.signature
        name = signature.name
        value = inputs.get(name, Undefined)
        if value is Undefined or value is None:
            if variable.non_null:
                return None
            if value is Undefined:
                sources[name] = VariableValueSource(signature)
                continue
        elif type(value) is not variable.kind or (
            type(value) is int and not GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT
        ):
            return None
        sources[name] = VariableValueSource(signature, value)
        coerced[name] = value
    return VariableValues(sources, coerced)


def coerce_variables(
    schema: GraphQLSchema, plan: RootPlan, variable_values: dict[str, Any] | None
) -> VariableValues | list[GraphQLError]:
    """The planned operation's variables as graphql-core coerces them (plain ones as the plan
    takes them), or the errors that refuse them."""
    inputs = variable_values or {}
    coerced = None if plan.variables is None else coerce_plain(plan.variables, inputs)
    if coerced is not None:
        return coerced
    return get_variable_values(
        schema, plan.operation.variable_definitions or (), inputs, max_errors=50
    )


def root_plan(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> RootPlan | None:
    """The root plan of `operation`, an operation of the valid `document`. None where
    graphql-core decides the root fields per request (a directive, a fragment's variables),
    for a mutation or a subscription, and for a selection too deeply nested to collect."""
    root_type = schema.query_type
    if root_type is None or operation.operation is not OperationType.QUERY:
        return None
    if operation.directives:
        return None
    fragment_definitions: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            if definition.variable_definitions:
                return None
            fragment_definitions[definition.name.value] = definition
    if not plain_selection_set(operation.selection_set, fragment_definitions, set()):
        return None
    fragments = {
        name: FragmentDetails(definition, None) for name, definition in fragment_definitions.items()
    }
    no_variables = get_variable_values(schema, (), {})
    if isinstance(no_variables, list):  # pragma: no cover - no definitions, no errors
        return None
    try:
        collected = collect_fields(schema, fragments, no_variables, root_type, operation)
    except RecursionError:
        return None
    if collected.new_defer_usages or collected.forbidden_directive_instances:
        return None
    return RootPlan(
        operation,
        root_type,
        fragment_definitions,
        fragments,
        collected.grouped_field_set,
        plain_variables(schema, operation),
    )


class PlannedExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's graphql-core executor, completing objects from the prepared document's plans."""

    def __init__(self, *args: Any, plans: Plans | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans: Plans = {} if plans is None else plans

    @classmethod
    def run(
        cls,
        schema: GraphQLSchema,
        plan: RootPlan,
        *,
        root_value: Any,
        context_value: Any,
        variable_values: dict[str, Any] | None,
        is_awaitable: Callable[[Any], Any],
        operation_extensions: dict[str, Any] | None,
        plans: Plans,
    ) -> AwaitableOrValue[ExecutionResult]:
        """What graphql-core's `execute` answers for the planned operation: the variables
        coerced (or the errors that refuse them), then the root fields executed."""
        coerced = coerce_variables(schema, plan, variable_values)
        if isinstance(coerced, list):
            return ExecutionResult(None, errors=coerced)
        executor = cls.for_plan(
            schema,
            plan,
            root_value=root_value,
            context_value=context_value,
            coerced=coerced,
            is_awaitable=is_awaitable,
            operation_extensions=operation_extensions,
            plans=plans,
        )
        return executor.execute_planned(plan)

    @classmethod
    def for_plan(
        cls,
        schema: GraphQLSchema,
        plan: RootPlan,
        *,
        root_value: Any,
        context_value: Any,
        coerced: VariableValues,
        is_awaitable: Callable[[Any], Any],
        operation_extensions: dict[str, Any] | None,
        plans: Plans,
    ) -> PlannedExecutor:
        """The executor graphql-core's `execute` makes for the planned operation."""
        return cls(
            schema,
            plan.fragment_definitions,
            plan.fragments,
            root_value,
            context_value,
            plan.operation,
            coerced,
            default_field_resolver,
            default_type_resolver,
            default_field_resolver,
            is_awaitable=is_awaitable,
            operation_extensions=operation_extensions,
            plans=plans,
        )

    def execute_planned(self, plan: RootPlan) -> AwaitableOrValue[ExecutionResult]:
        """`execute_operation` for a query whose root fields were collected beforehand."""
        try:
            result = self.execute_collected_root_fields(
                plan.root_type, self.root_value, plan.root_fields, False, ()
            )
            if self.is_awaitable(result):
                return self._completed(result)
            data = cast("dict[str, Any]", result)
        except GraphQLError as error:
            self.collected_errors.add(error, None)
            return self.respond(None)
        return self.respond(data)

    async def _completed(self, result: Any) -> ExecutionResult:
        try:
            data = await result
        except GraphQLError as error:
            self.collected_errors.add(error, None)
            return self.respond(None)
        except Exception:
            await self.cancel_incremental_work()
            self.run_async_work_finished_hook()
            raise
        return self.respond(data)

    def respond(self, data: dict[str, Any] | None) -> ExecutionResult:
        response = self.finish(self.build_response(data))
        if not isinstance(response, ExecutionResult):  # pragma: no cover - no @defer here
            raise GraphQLError("the operation answered more than one payload")
        return response

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        key = (return_type.name, tuple(id(details.node) for details in field_details_list))
        plans = self.plans
        if key in plans:
            complete = plans[key]
        else:
            complete = plans[key] = self._object_plan(return_type, field_details_list)
        if complete is not None:
            try:
                completed: dict[str, Any] | None = complete(result)
            except Exception:  # GiveBack, or what a value raised: graphql-core reports it
                completed = None
            if completed is not None:
                return completed
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _object_plan(
        self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> Complete | None:
        if object_type.is_type_of is not None or not self._plain_selections(field_details_list):
            return None
        grouped, defer_usages, _ = collect_subfields(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            object_type,
            field_details_list,
            self.hide_suggestions,
        )
        if defer_usages:
            return None
        fields: list[tuple[str, Callable[..., Any] | None, Complete | str]] = []
        for response_key, details in grouped.items():
            if any(detail.defer_usage is not None for detail in details):
                return None
            name = details[0].node.name.value
            if name == "__typename":
                fields.append((response_key, None, object_type.name))
                continue
            field = object_type.fields.get(name)
            if field is None or field.args:
                return None
            read = _attribute_reader(field.resolve, field.extensions)
            complete = None if read is None else self.type_plan(field.type, details)
            if complete is None:
                return None
            fields.append((response_key, read, complete))
        is_awaitable = self.is_awaitable
        entries = tuple(fields)

        def complete_object(value: Any) -> Any:
            if value is None or value is Undefined:
                return None
            if isinstance(value, Exception):
                raise GiveBack
            completed: dict[str, Any] = {}
            for response_key, read, complete in entries:
                if read is None:
                    completed[response_key] = complete
                    continue
                item = read(value)
                if type(item) not in NEVER_AWAITABLE and is_awaitable(item):
                    raise GiveBack  # graphql-core reads the same awaitable again and awaits it
                completed[response_key] = complete(item)  # type: ignore[operator]
            return completed

        return complete_object

    def type_plan(
        self, output_type: GraphQLOutputType, details: FieldDetailsList
    ) -> Complete | None:
        if isinstance(output_type, GraphQLNonNull):
            if is_leaf_type(output_type.of_type):
                return _leaf(output_type.of_type.coerce_output_value, non_null=True)
            inner = self.type_plan(output_type.of_type, details)
            return None if inner is None else _non_null(inner)
        if isinstance(output_type, GraphQLList):
            inner = self.type_plan(output_type.of_type, details)
            return None if inner is None else _list(inner, self.is_awaitable)
        if is_leaf_type(output_type):
            return _leaf(output_type.coerce_output_value, non_null=False)
        if isinstance(output_type, GraphQLObjectType):
            return self._object_plan(output_type, details)
        return None  # an interface or a union: its runtime type is graphql-core's to resolve

    def _plain_selections(self, field_details_list: FieldDetailsList) -> bool:
        """No directive in the selection sets that collecting these fields visits."""
        return all(
            plain_selection_set(details.node.selection_set, self.fragment_definitions, set())
            for details in field_details_list
        )


def plain_selection_set(
    selection_set: SelectionSetNode | None,
    fragment_definitions: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> bool:
    """No directive in `selection_set`, nor in the fragments it spreads (`seen`: those
    already looked at)."""
    if selection_set is None:
        return False
    for selection in selection_set.selections:
        if selection.directives:
            return False
        if isinstance(selection, InlineFragmentNode):
            if not plain_selection_set(selection.selection_set, fragment_definitions, seen):
                return False
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                continue
            seen.add(name)
            fragment = fragment_definitions.get(name)
            if fragment is None or fragment.directives:
                return False
            if not plain_selection_set(fragment.selection_set, fragment_definitions, seen):
                return False
        elif not isinstance(selection, FieldNode):
            return False
    return True


def _attribute_reader(resolve: Any, extensions: Any) -> Callable[[Any], Any] | None:
    """How strawberry's resolver of a field that is an attribute of its object (no resolver,
    no field extensions, no permission classes) reads it: with the configured default
    resolver, `getattr` unless configured otherwise. None for any other field."""
    definition = (extensions or {}).get(BACKREF)
    if (
        resolve is None
        or not getattr(resolve, "_is_default", False)
        or definition is None
        or not definition.is_basic_field
        or definition.permission_classes
    ):
        return None
    if definition.default_resolver is getattr:
        return attrgetter(definition.python_name)
    resolver, name = definition.default_resolver, definition.python_name
    return lambda source: resolver(source, name)


def _non_null(inner: Complete) -> Complete:
    def complete_non_null(value: Any) -> Any:
        completed = inner(value)
        if completed is None:
            raise GiveBack
        return completed

    return complete_non_null


def _list(inner: Complete, is_awaitable: Callable[[Any], bool]) -> Complete:
    def complete_list(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not isinstance(value, list | tuple) or any(
            type(item) not in NEVER_AWAITABLE and is_awaitable(item) for item in value
        ):
            raise GiveBack
        return [inner(item) for item in value]

    return complete_list


def _leaf(coerce: Callable[[Any], Any], non_null: bool) -> Complete:
    """A leaf value coerced by its scalar (`non_null`: a null is not on the way). A value
    the scalar answers with itself (a `str` for String, say) is taken as it is."""

    def complete_leaf(value: Any) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise GiveBack
            return None
        if isinstance(value, Exception):
            raise GiveBack
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise GiveBack
        return coerced

    passed = PASSED_THROUGH.get(coerce)
    if passed is not None:

        def complete_passed(value: Any) -> Any:
            return value if type(value) is passed else complete_leaf(value)

        return complete_passed
    if coerce is serialize_int:

        def complete_int(value: Any) -> Any:
            if type(value) is int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
                return value
            return complete_leaf(value)

        return complete_int
    return complete_leaf
