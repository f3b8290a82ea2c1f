"""Direct resolvers: a field whose strawberry resolver takes only built-in scalar arguments is
called the way strawberry's per-call wrapper would call it, without that wrapper.

For such a field strawberry's wrapper builds an `Info`, converts each argument (a built-in
scalar is passed as it is), renames the arguments to their Python names, puts the source,
the info and the arguments where the resolver's signature asks for them, runs no extension
and awaits the result. A direct resolver does the same in one call. Every other field (an
extension or a permission class, an exception handler, an input object, a list, an enum, a
custom scalar or a `GlobalID` among its arguments, a `root` or `parent` parameter, a
subscription) keeps strawberry's wrapper."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import strawberry
from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLString,
)
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.field import StrawberryField

BACKREF: Final = "strawberry-definition"
PASSED_AS_THEY_ARE: Final = {
    (GraphQLString, str),
    (GraphQLInt, int),
    (GraphQLBoolean, bool),
    (GraphQLFloat, float),
    (GraphQLID, strawberry.ID),
}
"""Built-in scalars with the Python type strawberry gives them: their arguments reach the
resolver as graphql-core coerced them."""


def install_direct_resolvers(schema: strawberry.Schema) -> list[str]:
    """Give every field that qualifies (module docstring) a direct resolver; the
    `Type.field` names of those that got one."""
    installed = []
    for type_name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        if graphql_type is schema._schema.subscription_type:
            continue
        for field_name, graphql_field in graphql_type.fields.items():
            definition = (graphql_field.extensions or {}).get(BACKREF)
            if not isinstance(definition, StrawberryField):
                continue
            resolve = direct_resolver(schema, definition, graphql_field.args)
            if resolve is not None:
                graphql_field.resolve = resolve
                installed.append(f"{type_name}.{field_name}")
    return installed


def direct_resolver(
    schema: strawberry.Schema, field: StrawberryField, graphql_args: dict[str, Any]
) -> Callable[..., Any] | None:
    resolver = field.base_resolver
    if (
        resolver is None
        or field.extensions
        or field.permission_classes
        or field.is_subscription
        or schema.schema_converter._get_field_exception_handlers(field)
        or resolver.root_parameter is not None
        or resolver.parent_parameter is not None
    ):
        return None
    python_names: dict[str, str] = {}
    for argument in field.arguments:
        name = schema.config.name_converter.from_argument(argument)
        graphql_arg = graphql_args.get(name)
        if graphql_arg is None or not _passed_as_it_is(graphql_arg.type, argument.type):
            return None
        python_names[name] = argument.python_name
    if set(python_names) != set(graphql_args):
        return None
    call = resolver.wrapped_func
    if not callable(call):
        return None
    info_class = schema.config.info_class
    info_name = None if resolver.info_parameter is None else resolver.info_parameter.name
    with_source = resolver.self_parameter is not None

    def arguments(source: Any, info: GraphQLResolveInfo[Any], kwargs: dict[str, Any]) -> Any:
        named = {python_names[name]: value for name, value in kwargs.items()}
        if info_name is not None:
            named[info_name] = info_class(_raw_info=info, _field=field)
        return call(source, **named) if with_source else call(**named)

    if field.is_async:

        async def resolve_async(source: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Any:
            return await arguments(source, info, kwargs)

        resolve_async._is_default = False  # type: ignore[attr-defined]
        return resolve_async

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Any:
        return arguments(source, info, kwargs)

    resolve._is_default = False  # type: ignore[attr-defined]
    return resolve


def _passed_as_it_is(graphql_type: Any, strawberry_type: Any) -> bool:
    if isinstance(graphql_type, GraphQLNonNull):
        graphql_type = graphql_type.of_type
    if isinstance(strawberry_type, StrawberryMaybe):
        return False
    if isinstance(strawberry_type, StrawberryOptional):
        strawberry_type = strawberry_type.of_type
    return any(
        graphql_type is scalar and strawberry_type is python_type
        for scalar, python_type in PASSED_AS_THEY_ARE
    )
