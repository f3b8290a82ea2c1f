"""Direct resolvers: a field with a strawberry resolver is called the way strawberry's per-call
wrapper would call it, without that wrapper.

For a field with no extension, permission class or exception handler, strawberry's wrapper
builds an `Info`, converts each argument, renames the arguments to their Python names, puts
the source, the info and the arguments where the resolver's signature asks for them, and
awaits the result. Converting an argument depends only on its type, so a direct resolver
has each argument's conversion worked out once, when the schema is built:

- a scalar (but a `GlobalID`) or an enum value is passed as graphql-core coerced it;
- a list of those is copied; a list of anything else has each item converted;
- an input object becomes its class, built from its converted fields, with None for every
  field that has no default and is not given;
- null and UNSET stay what they are, wherever they are.

A field any of whose arguments is of another kind (`Maybe`, a lazy or generic type, an input
with its own `from_input`, a `GlobalID`), whose resolver has a `root` or `parent` parameter,
or that is a subscription keeps strawberry's wrapper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING
from typing import Any, Final

import strawberry
from graphql import GraphQLObjectType, GraphQLResolveInfo
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UNSET

BACKREF: Final = GraphQLCoreConverter.DEFINITION_BACKREF
Convert = Callable[[Any], Any]


class _Unconvertible(Exception):
    """An argument type whose conversion is strawberry's own to make."""


def _as_it_is(value: Any) -> Any:
    return value


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
    names: dict[str, tuple[str, Convert | None]] = {}
    try:
        for argument in field.arguments:
            convert = _converter(schema, argument.type)
            name = schema.config.name_converter.from_argument(argument)
            names[name] = (argument.python_name, None if convert is _as_it_is else convert)
    except _Unconvertible:
        return None
    if set(names) != set(graphql_args):
        return None
    call = resolver.wrapped_func
    if not callable(call):
        return None
    info_class = schema.config.info_class
    info_name = None if resolver.info_parameter is None else resolver.info_parameter.name
    with_source = resolver.self_parameter is not None

    def arguments(source: Any, info: GraphQLResolveInfo[Any], kwargs: dict[str, Any]) -> Any:
        named = {}
        for name, value in kwargs.items():
            python_name, convert = names[name]
            named[python_name] = value if convert is None else convert(value)
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


def _converter(schema: strawberry.Schema, type_: Any) -> Convert:
    """What strawberry's `convert_argument` does to a value of `type_`, as one function."""
    if isinstance(type_, StrawberryMaybe):
        raise _Unconvertible(type_)
    if isinstance(type_, StrawberryOptional):
        return _converter(schema, type_.of_type)
    registry = schema.schema_converter.scalar_registry
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        bare = item.of_type if isinstance(item, StrawberryOptional) else item
        if not isinstance(bare, StrawberryMaybe) and _leaf(bare, registry):
            return _copied_list
        convert_item = _converter(schema, item)

        def convert_list(value: Any) -> Any:
            if value is None or value is UNSET:
                return value
            return [convert_item(entry) for entry in value]

        return convert_list
    if type_ is GlobalID:
        raise _Unconvertible(type_)
    if _leaf(type_, registry) or has_enum_definition(type_):
        return _as_it_is
    if not has_object_definition(type_):
        raise _Unconvertible(type_)
    return _input_converter(schema, type_)


def _leaf(type_: Any, registry: Any) -> bool:
    """What strawberry passes on as graphql-core coerced it: a scalar or an enum."""
    return type_ is not GlobalID and (
        is_scalar(type_, registry) or isinstance(type_, StrawberryEnumDefinition)
    )


def _copied_list(value: Any) -> Any:
    return value if value is None or value is UNSET else list(value)


def _input_converter(schema: strawberry.Schema, type_: Any) -> Convert:
    definition = type_.__strawberry_definition__
    if (
        not definition.is_input
        or definition.from_input is not None
        or definition.is_graphql_generic
    ):
        raise _Unconvertible(type_)
    unset = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }
    fields = tuple(
        (
            schema.config.name_converter.from_field(field),
            field.python_name,
            _converter(schema, field.resolve_type(type_definition=definition)),
        )
        for field in definition.fields
    )

    def convert_input(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        given = dict(unset)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                given[python_name] = convert(value[graphql_name])
        return type_(**given)

    return convert_input
