"""Direct roots: a query operation of one root field, answered without graphql-core's
executor on the way that succeeds.

A direct root is made from a root plan (plans.py) whose operation selects one field of the
query type (not an introspection field) in one or more field nodes, none in a fragment with
variables. Running it does what graphql-core's executor does for that operation:

- the variables coerced as the root plan coerces them (or refused, with the same errors);
- the field's arguments taken as `get_argument_values` takes them: from an argument plan made
  once (below), or by `get_argument_values` itself;
- the resolver called with the same source, the same resolve info (strawberry's tuple, with
  the same members) and the same arguments, and what it answers awaited;
- the value completed from the field's completion plan.

The executor is made only when something leaves that way: a resolver that raises, a value the
completion plan gives back (or a field without one), a resolver that tracks asynchronous work
through its info. It then completes the value already resolved, or reports the error, with its
own `complete_value` and `handle_field_error`, and builds the response, so that an answer off
the way is graphql-core's own. Nothing is resolved twice.

An argument plan is made when every argument of the field is one of:
- left out, and not required: its default (coerced once) or nothing;
- a literal without variables whose coerced value is immutable (a str, an int, a float, a
  bool, an enum value or null): that value, coerced once;
- a plain variable (plans.py) of the argument's own type, or of its non-null form, where the
  argument is nullable or the variable non-null: the variable's coerced value, or the
  argument's default where the variable is left out.
Otherwise the arguments are taken by `get_argument_values` on each run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, cast

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLNonNull,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    Undefined,
    VariableNode,
    get_argument_values,
    is_required_argument,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.values import VariableValues
from graphql.language import ValueNode, visit
from graphql.language.visitor import BREAK, Visitor
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from graphql.utilities import coerce_input_literal
from graphql.utilities.coerce_input_value import coerce_default_value
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo as ResolveInfo

from personas.graphql.plans import (
    Complete,
    PlainVariable,
    PlannedExecutor,
    Plans,
    RootPlan,
    coerce_variables,
)

IMMUTABLE: Final = (str, int, float, bool, Enum, type(None))
"""Values an argument plan may hand to every run: none of them can be changed by a resolver."""


@dataclass(frozen=True, slots=True)
class Arguments:
    """A field's arguments for any coerced variables: `constants` by the resolver's names,
    and (name, variable, value when the variable is left out) for each plain variable."""

    constants: dict[str, Any]
    variables: tuple[tuple[str, str, Any], ...]

    def values(self, coerced: dict[str, Any]) -> dict[str, Any]:
        if not self.variables:
            return self.constants  # the resolver takes them as keyword arguments: a copy
        values = dict(self.constants)
        for name, variable, absent in self.variables:
            value = coerced.get(variable, absent)
            if value is not Undefined:
                values[name] = value
        return values


def argument_plan(
    field: GraphQLField, node: FieldNode, variables: tuple[PlainVariable, ...]
) -> Arguments | None:
    """The argument plan of `field` as `node` gives its arguments (module docstring); None
    where `get_argument_values` must take them."""
    given = {argument.name.value: argument for argument in node.arguments or ()}
    if not set(given) <= set(field.args):
        return None
    plain = {variable.signature.name: variable for variable in variables}
    constants: dict[str, Any] = {}
    from_variables: list[tuple[str, str, Any]] = []
    for name, argument in field.args.items():
        out_name = argument.out_name or name
        try:
            default = coerce_default_value(argument)
        except Exception:  # an invalid default: graphql-core reports it on each run
            return None
        if not isinstance(default, IMMUTABLE) and default is not Undefined:
            return None
        node_given = given.get(name)
        if node_given is None:
            if is_required_argument(argument):
                return None
            if default is not Undefined:
                constants[out_name] = default
            continue
        value_node = node_given.value
        if isinstance(value_node, VariableNode):
            variable = plain.get(value_node.name.value)
            if variable is None or not _takes(argument.type, variable):
                return None
            from_variables.append((out_name, variable.signature.name, default))
            continue
        if _has_variables(value_node):
            return None
        value = coerce_input_literal(value_node, argument.type)
        if value is Undefined or not isinstance(value, IMMUTABLE):
            return None
        constants[out_name] = value
    return Arguments(constants, tuple(from_variables))


def _takes(argument_type: Any, variable: PlainVariable) -> bool:
    """A value of `variable` is the argument's value as it is: the same named type, and no
    null where the argument refuses one."""
    variable_type = variable.signature.type
    bare_variable = (
        variable_type.of_type if isinstance(variable_type, GraphQLNonNull) else variable_type
    )
    non_null = isinstance(argument_type, GraphQLNonNull)
    bare_argument = argument_type.of_type if non_null else argument_type
    return bare_variable is bare_argument and (variable.non_null or not non_null)


class _FindsVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_variable(self, *_: Any) -> Any:
        self.found = True
        return BREAK


def _has_variables(value_node: ValueNode) -> bool:
    finder = _FindsVariables()
    visit(value_node, finder)
    return finder.found


@dataclass(frozen=True, slots=True)
class DirectRoot:
    """A root plan's one root field, with what running it needs made once."""

    plan: RootPlan
    response_key: str
    details: FieldDetailsList
    field: GraphQLField
    resolve: Callable[..., Any]
    nodes: list[FieldNode]
    path: Path
    arguments: Arguments | None
    """None: `get_argument_values` takes them on each run."""
    complete: Complete | None
    """The completion plan of the field's type; None: the executor completes the value."""

    def run(
        self,
        schema: GraphQLSchema,
        *,
        root_value: Any,
        context_value: Any,
        variable_values: dict[str, Any] | None,
        is_awaitable: Callable[[Any], Any],
        operation_extensions: dict[str, Any] | None,
        plans: Plans,
    ) -> AwaitableOrValue[ExecutionResult]:
        """What graphql-core's `execute` answers for the operation (module docstring)."""
        coerced = coerce_variables(schema, self.plan, variable_values)
        if isinstance(coerced, list):
            return ExecutionResult(None, errors=coerced)
        run = _Run(
            self,
            schema,
            root_value,
            context_value,
            coerced,
            is_awaitable,
            operation_extensions,
            plans,
        )
        return run.start()


def direct_root(
    schema: GraphQLSchema, plan: RootPlan, is_awaitable: Callable[[Any], Any]
) -> DirectRoot | None:
    """The direct root of `plan`, when its operation selects one field of the query type
    that is not an introspection field and none of its nodes is in a fragment with
    variables; None otherwise."""
    if len(plan.root_fields) != 1:
        return None
    [(response_key, details)] = plan.root_fields.items()
    node = details[0].node
    name = node.name.value
    field = plan.root_type.fields.get(name)
    if field is None or name.startswith("__") or field.resolve is None:
        return None
    if any(detail.fragment_variable_values is not None for detail in details):
        return None
    planner = PlannedExecutor.for_plan(
        schema,
        plan,
        root_value=None,
        context_value=None,
        coerced=VariableValues({}, {}),
        is_awaitable=is_awaitable,
        operation_extensions=None,
        plans={},
    )
    return DirectRoot(
        plan,
        response_key,
        details,
        field,
        field.resolve,
        [detail.node for detail in details],
        Path(None, response_key, plan.root_type.name),
        None if plan.variables is None else argument_plan(field, node, plan.variables),
        planner.type_plan(field.type, details),
    )


class _Run:
    """One run of a direct root; the executor made only if the run leaves the way."""

    __slots__ = (
        "coerced",
        "context_value",
        "executor",
        "is_awaitable",
        "operation_extensions",
        "plans",
        "root",
        "root_value",
        "schema",
    )

    def __init__(
        self,
        root: DirectRoot,
        schema: GraphQLSchema,
        root_value: Any,
        context_value: Any,
        coerced: VariableValues,
        is_awaitable: Callable[[Any], Any],
        operation_extensions: dict[str, Any] | None,
        plans: Plans,
    ) -> None:
        self.root = root
        self.schema = schema
        self.root_value = root_value
        self.context_value = context_value
        self.coerced = coerced
        self.is_awaitable = is_awaitable
        self.operation_extensions = operation_extensions
        self.plans = plans
        self.executor: PlannedExecutor | None = None

    def made(self) -> PlannedExecutor:
        """The executor graphql-core's `execute` would have made for this run."""
        executor = self.executor
        if executor is None:
            executor = self.executor = PlannedExecutor.for_plan(
                self.schema,
                self.root.plan,
                root_value=self.root_value,
                context_value=self.context_value,
                coerced=self.coerced,
                is_awaitable=self.is_awaitable,
                operation_extensions=self.operation_extensions,
                plans=self.plans,
            )
        return executor

    def _gather(self, values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        """graphql-core's `gather_async_work`, which needs no executor."""
        return cast("Awaitable[list[Any]]", gather_with_cancel(*values))

    def _track(self, values: Sequence[Any]) -> None:
        self.made().track_async_work(values)

    def start(self) -> AwaitableOrValue[ExecutionResult]:
        root = self.root
        plan = root.plan
        field = root.field
        coerced = self.coerced
        info = ResolveInfo(
            root.nodes[0].name.value,
            root.nodes,
            field.type,
            plan.root_type,
            root.path,
            self.schema,
            plan.fragment_definitions,
            self.root_value,
            plan.operation,
            coerced.coerced,
            self.context_value,
            self.is_awaitable,
            None,
            GraphQLResolveInfoHelpers(gather=self._gather, track=self._track),
            self.operation_extensions,  # type: ignore[arg-type]  # None as strawberry passes it
        )
        try:
            arguments = (
                get_argument_values(field, root.nodes[0], coerced)
                if root.arguments is None
                else root.arguments.values(coerced.coerced)
            )
            result = root.resolve(self.root_value, info, **arguments)
            if self.is_awaitable(result):
                return self._awaited(info, result)
            completed = self._completed(info, result)
            if self.is_awaitable(completed):
                return self._awaited_completion(completed)
        except Exception as raw_error:
            return self._failed(raw_error)
        return self._response({root.response_key: completed})

    def _completed(self, info: Any, value: Any) -> AwaitableOrValue[Any]:
        complete = self.root.complete
        if complete is None:
            return self._completed_by_executor(info, value)
        try:
            return complete(value)
        except Exception:  # GiveBack, or what a value raised: graphql-core reports it
            return self._completed_by_executor(info, value)

    def _completed_by_executor(self, info: Any, value: Any) -> AwaitableOrValue[Any]:
        root = self.root
        return self.made().complete_value(
            root.field.type, root.details, info, root.path, value, None
        )

    async def _awaited(self, info: Any, result: Awaitable[Any]) -> ExecutionResult:
        try:
            completed = self._completed(info, await result)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            return self._failed(raw_error)
        return self._response({self.root.response_key: completed})

    async def _awaited_completion(self, completed: Awaitable[Any]) -> ExecutionResult:
        try:
            value = await completed
        except Exception as raw_error:
            return self._failed(raw_error)
        return self._response({self.root.response_key: value})

    def _failed(self, raw_error: Exception) -> ExecutionResult:
        """What graphql-core answers when the field raised `raw_error`: a located error, and
        null for the field, or for the whole data where the field is non-null."""
        root = self.root
        executor = self.made()
        try:
            executor.handle_field_error(raw_error, root.field.type, root.details, root.path)
        except GraphQLError as error:
            executor.collected_errors.add(error, None)
            return executor.respond(None)
        return executor.respond({root.response_key: None})

    def _response(self, data: dict[str, Any]) -> ExecutionResult:
        executor = self.executor
        return ExecutionResult(data, None) if executor is None else executor.respond(data)
