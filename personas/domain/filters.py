"""The metadata filter language: operators, filters as given, and the validated query.

It says what is asked, never how a database finds it (that is `personas.store.query`)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from personas.domain.errors import InvalidInput
from personas.domain.metadata import check_text, validate_path, validate_value

FILTERS_MAX: Final = 20
LIST_VALUES_MAX: Final = 100
PAGE_MAX: Final = 100
PAGE_DEFAULT: Final = 20
ORDER_KEYS_MAX: Final = 3
SEARCH_MAX: Final = 200
FACETS_MAX: Final = 100
FACETS_DEFAULT: Final = 50


class Operator(enum.Enum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NIN = "nin"
    ALL = "all"
    EXISTS = "exists"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    PREFIX = "prefix"


LIST_OPERATORS: Final = frozenset({Operator.IN, Operator.NIN, Operator.ALL})
RANGE_OPERATORS: Final = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})
TEXT_OPERATORS: Final = tuple(op for op in Operator if op not in (Operator.EXISTS, Operator.PREFIX))
"""Operators that take any value written as text (EXISTS and PREFIX have their own rules)."""


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """A filter as the caller gave it (not yet validated)."""

    path: object
    value: object = None
    op: Operator = Operator.EQ


@dataclass(frozen=True, slots=True)
class Condition:
    """A validated filter: `field` is the stored field (`metadata.<path>`)."""

    field: str
    op: Operator
    value: Any


def condition(spec: FilterSpec, field: str) -> Condition:
    stored = validate_path(spec.path, field)
    value = spec.value
    op = spec.op
    if op in LIST_OPERATORS:
        if not isinstance(value, list) or not value:
            raise InvalidInput(field, f"{op.name} takes a non-empty list")
        if len(value) > LIST_VALUES_MAX:
            raise InvalidInput(field, f"{op.name} takes at most {LIST_VALUES_MAX} values")
    elif op is Operator.EXISTS:
        if value is None:
            value = True
        if not isinstance(value, bool):
            raise InvalidInput(field, "EXISTS takes true or false")
    elif op in RANGE_OPERATORS:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidInput(field, f"{op.name} takes a number or a string")
    elif op is Operator.PREFIX and (not isinstance(value, str) or not value):
        raise InvalidInput(field, "PREFIX takes a non-empty string")
    return Condition(stored, op, validate_value(value, f"{field}.value"))


def conditions(specs: Sequence[FilterSpec], field: str) -> tuple[Condition, ...]:
    return tuple(condition(spec, f"{field}.{index}") for index, spec in enumerate(specs))


class SortField(enum.Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"
    METADATA = "metadata"


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool

    @property
    def by_metadata(self) -> bool:
        return self.field.startswith("metadata.")


DEFAULT_ORDER: Final = (SortKey("created_at", descending=True),)


def sort_key(field_kind: SortField, path: object, descending: bool, field: str) -> SortKey:
    if field_kind is SortField.METADATA:
        if path is None:
            raise InvalidInput(field, "METADATA ordering needs a path")
        return SortKey(validate_path(path, f"{field}.path"), descending)
    if path is not None:
        raise InvalidInput(field, f"{field_kind.name} ordering takes no path")
    return SortKey(field_kind.value, descending)


@dataclass(frozen=True, slots=True)
class PersonaQuery:
    """Which personas a listing holds, and in which order (ties broken by id)."""

    all_of: tuple[Condition, ...] = ()
    any_of: tuple[Condition, ...] = ()
    search: str | None = None
    order: tuple[SortKey, ...] = DEFAULT_ORDER

    @property
    def by_metadata(self) -> bool:
        """Ordered by a metadata path: sort values are computed per document."""
        return any(key.by_metadata for key in self.order)


@dataclass(frozen=True, slots=True)
class QueryFields:
    """What an API calls the parts of a query, so that errors name its own fields."""

    all_of: str = "all_of"
    any_of: str = "any_of"
    search: str = "search"
    order: str = "order"


def persona_query(
    all_of: Sequence[FilterSpec] = (),
    any_of: Sequence[FilterSpec] = (),
    search: str | None = None,
    order: Sequence[SortKey] = (),
    fields: QueryFields | None = None,
) -> PersonaQuery:
    fields = fields or QueryFields()
    if len(all_of) + len(any_of) > FILTERS_MAX:
        raise InvalidInput(fields.all_of, f"at most {FILTERS_MAX} filters are allowed")
    if len(order) > ORDER_KEYS_MAX:
        raise InvalidInput(fields.order, f"at most {ORDER_KEYS_MAX} sort keys are allowed")
    if search is not None:
        search = search.strip()
        check_text(search, fields.search)
        if len(search) > SEARCH_MAX:
            raise InvalidInput(fields.search, f"must be at most {SEARCH_MAX} characters")
    return PersonaQuery(
        all_of=conditions(all_of, fields.all_of),
        any_of=conditions(any_of, fields.any_of),
        search=search or None,
        order=tuple(order) or DEFAULT_ORDER,
    )


def page_size(first: int | None, field: str = "first") -> int:
    if first is None:
        return PAGE_DEFAULT
    if not 1 <= first <= PAGE_MAX:
        raise InvalidInput(field, f"must be between 1 and {PAGE_MAX}")
    return first


def facet_size(first: int | None, field: str = "first") -> int:
    if first is None:
        return FACETS_DEFAULT
    if not 1 <= first <= FACETS_MAX:
        raise InvalidInput(field, f"must be between 1 and {FACETS_MAX}")
    return first
