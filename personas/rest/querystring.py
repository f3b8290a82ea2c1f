"""The query-string language: metadata.<path>[<op>]=<value>, q, sort, limit, cursor.

A query string has no types: a value that reads as a number, true, false or null matches
that JSON value and the string itself."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Final

from personas import domain
from personas.domain import FilterSpec, InvalidInput, Operator, SortField

_FILTER = re.compile(r"metadata\.(?P<path>.*?)(?:\[(?P<op>[^\[\]]*)\])?", re.DOTALL)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?P<real>\.[0-9]+)?(?P<exponent>[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_KEYWORDS: Final[Mapping[str, object]] = {"true": True, "false": False, "null": None}
QUERY_FIELDS: Final = domain.QueryFields(
    all_of="metadata", any_of="metadata", search="q", order="sort"
)

_FILTER_SEGMENT: Final = domain.segment_pattern(r"\[\]")
FILTER_PATH_PATTERN: Final = rf"metadata\.{domain.path_pattern(_FILTER_SEGMENT)}"
"""A filter parameter's name up to its operator: its path cannot hold [ or ]."""
_TEXT_OPERATORS: Final = "|".join(op.value for op in domain.TEXT_OPERATORS)
FILTER_PATTERN: Final = rf"{FILTER_PATH_PATTERN}(?:\[(?:{_TEXT_OPERATORS})\])?"
"""A filter that takes any value: metadata.<path> or metadata.<path>[<op>]."""
EXISTS_FILTER_PATTERN: Final = rf"{FILTER_PATH_PATTERN}\[{Operator.EXISTS.value}\]"
"""A filter that takes true or false."""
PREFIX_FILTER_PATTERN: Final = rf"{FILTER_PATH_PATTERN}\[{Operator.PREFIX.value}\]"
"""A filter that takes a non-empty string."""
_SORT_FIELDS: Final = "|".join(item.value for item in SortField if item is not SortField.METADATA)
_SORT_PATH: Final = domain.path_pattern(domain.segment_pattern(","))
SORT_KEY_PATTERN: Final = rf"-?(?:{_SORT_FIELDS}|metadata\.{_SORT_PATH})"
"""One key of `sort`: a field or metadata.<path>, '-' first for descending."""
SORT_PATTERN: Final = rf"{SORT_KEY_PATTERN}(?:,{SORT_KEY_PATTERN}){{0,{domain.ORDER_KEYS_MAX - 1}}}"
"""`sort`: 1 to ORDER_KEYS_MAX keys, comma-separated."""
SEARCH_PATTERN: Final = domain.padded_pattern(f"(?:{domain.trimmed_pattern(domain.SEARCH_MAX)})?")
"""`q`: at most SEARCH_MAX characters once trimmed."""


def number(raw: str) -> int | float | None:
    """The JSON number `raw` reads as, when it is one MongoDB can hold."""
    match = _NUMBER.fullmatch(raw)
    if match is None:
        return None
    if match["real"] is None and match["exponent"] is None:
        value = int(raw)
        return value if domain.INT64_MIN <= value <= domain.INT64_MAX else None
    real = float(raw)
    return real if math.isfinite(real) else None


def readings(raw: str) -> list[object]:
    """What a query-string value stands for: the number, boolean or null it reads as (if
    any), then the string itself."""
    if raw in _KEYWORDS:
        return [_KEYWORDS[raw], raw]
    value = number(raw)
    return [raw] if value is None else [value, raw]


def _matching(path: str, raw: str) -> FilterSpec:
    values = readings(raw)
    return (
        FilterSpec(path, values[0]) if len(values) == 1 else FilterSpec(path, values, Operator.IN)
    )


def _not_matching(path: str, raw: str) -> FilterSpec:
    values = readings(raw)
    if len(values) == 1:
        return FilterSpec(path, values[0], Operator.NE)
    return FilterSpec(path, values, Operator.NIN)


def _specs(path: str, op: Operator, raw: str) -> list[FilterSpec]:
    items = raw.split(",")
    if op is Operator.EQ:
        return [_matching(path, raw)]
    if op is Operator.NE:
        return [_not_matching(path, raw)]
    if op in (Operator.IN, Operator.NIN):
        return [FilterSpec(path, [value for item in items for value in readings(item)], op)]
    if op is Operator.ALL:
        # Typed-looking items may match either reading, so each is a filter of its own.
        strings = [item for item in items if len(readings(item)) == 1]
        typed = [_matching(path, item) for item in items if len(readings(item)) > 1]
        return [FilterSpec(path, strings, op), *typed] if strings else typed
    if op is Operator.EXISTS:
        return [FilterSpec(path, {"true": True, "false": False}.get(raw, raw), op)]
    if op in domain.RANGE_OPERATORS:
        value = number(raw)
        return [FilterSpec(path, raw if value is None else value, op)]
    return [FilterSpec(path, raw, op)]


def filter_specs(name: str, raw: str) -> list[FilterSpec]:
    """The filters one `metadata.<path>[<op>]=<value>` parameter stands for, validated
    (errors name the parameter)."""
    match = _FILTER.fullmatch(name)
    assert match is not None, "callers pass metadata.* parameters only"
    path, op_name = match["path"], match["op"]
    if "[" in path or "]" in path:
        raise InvalidInput(name, "write filters as metadata.<path>[<op>]; paths cannot hold [ or ]")
    try:
        op = Operator.EQ if op_name is None else Operator(op_name)
    except ValueError:
        known = ", ".join(item.value for item in Operator)
        raise InvalidInput(name, f"unknown operator [{op_name}]; use one of {known}") from None
    specs = _specs(path, op, raw)
    for spec in specs:
        domain.condition(spec, name)
    return specs


def sort_keys(raw: str) -> list[domain.SortKey]:
    """`sort=metadata.last_tested,-created_at`: keys in order, a leading '-' for descending."""
    keys: list[domain.SortKey] = []
    for item in raw.split(","):
        descending = item.startswith("-")
        name = item.removeprefix("-")
        if name.startswith("metadata."):
            path = name.removeprefix("metadata.")
            keys.append(domain.sort_key(SortField.METADATA, path, descending, "sort"))
            continue
        try:
            kind = SortField(name)
        except ValueError:
            raise InvalidInput(
                "sort",
                f"cannot sort by {name!r}; use created_at, updated_at, name or metadata.<path>",
            ) from None
        keys.append(domain.sort_key(kind, None, descending, "sort"))
    return keys


def integer(raw: str | None, field: str) -> int | None:
    if raw is None:
        return None
    if not _INTEGER.fullmatch(raw):
        raise InvalidInput(field, "must be an integer")
    return int(raw)


def plain_parameters(items: Sequence[tuple[str, str]], allowed: Sequence[str]) -> dict[str, str]:
    """The parameters, each from `allowed` and given at most once."""
    plain: dict[str, str] = {}
    for name, value in items:
        if name not in allowed:
            raise InvalidInput(name, "unknown query parameter")
        if name in plain:
            raise InvalidInput(name, "given more than once")
        plain[name] = value
    return plain


def split_parameters(
    items: Sequence[tuple[str, str]], allowed: Sequence[str]
) -> tuple[dict[str, str], list[FilterSpec]]:
    """The plain parameters (from `allowed`, each at most once) and the metadata filters."""
    specs: list[FilterSpec] = []
    others: list[tuple[str, str]] = []
    for name, value in items:
        if name.startswith("metadata."):
            specs += filter_specs(name, value)
        else:
            others.append((name, value))
    return plain_parameters(others, allowed), specs


def persona_query(
    specs: Sequence[FilterSpec], search: str | None = None, sort: str | None = None
) -> domain.PersonaQuery:
    """domain.persona_query, its errors naming the query parameters."""
    return domain.persona_query(
        all_of=specs,
        search=search,
        order=() if sort is None else sort_keys(sort),
        fields=QUERY_FIELDS,
    )
