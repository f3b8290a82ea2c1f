"""A reference evaluation, in plain Python, of what metadata filters and orders mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from personas.domain import Operator

MISSING: Any = object()


def resolve(metadata: dict[str, Any] | None, path: str) -> Any:
    value: Any = metadata
    for segment in path.split("."):
        if not isinstance(value, dict) or segment not in value:
            return MISSING
        value = value[segment]
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(left: Any, right: Any) -> bool:
    """MongoDB equality: numbers by value, everything else by type and value, key order kept."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[key], right[key]) for key in left)
    return bool(left == right)


def equals(value: Any, wanted: Any) -> bool:
    if value is MISSING:
        return wanted is None
    if same(value, wanted):
        return True
    return isinstance(value, list) and any(same(item, wanted) for item in value)


def candidates(value: Any) -> list[Any]:
    if value is MISSING:
        return []
    return [value, *value] if isinstance(value, list) else [value]


def in_order(item: Any, wanted: Any, op: Operator) -> bool:
    if is_number(wanted):
        if not is_number(item):
            return False
    elif not isinstance(item, str):
        return False
    outcome: bool = {
        Operator.GT: item > wanted,
        Operator.GTE: item >= wanted,
        Operator.LT: item < wanted,
        Operator.LTE: item <= wanted,
    }[op]
    return outcome


def matches(metadata: dict[str, Any] | None, path: str, op: Operator, wanted: Any) -> bool:
    value = resolve(metadata, path)
    match op:
        case Operator.EQ:
            return equals(value, wanted)
        case Operator.NE:
            return not equals(value, wanted)
        case Operator.IN:
            return any(equals(value, item) for item in wanted)
        case Operator.NIN:
            return not any(equals(value, item) for item in wanted)
        case Operator.ALL:
            return value is not MISSING and all(equals(value, item) for item in wanted)
        case Operator.EXISTS:
            return (value is not MISSING) is wanted
        case Operator.PREFIX:
            return any(
                isinstance(item, str) and item.startswith(wanted) for item in candidates(value)
            )
        case _:
            return any(in_order(item, wanted, op) for item in candidates(value))


TYPE_RANK = {type(None): 0, int: 1, float: 1, str: 2, dict: 3, list: 4, bool: 5}


def sort_value(metadata: dict[str, Any] | None, path: str, descending: bool) -> Any:
    value = resolve(metadata, path)
    if value is MISSING:
        return None
    if isinstance(value, list):
        if not value:
            return None
        ranked = sorted(value, key=bson_key)
        return ranked[-1] if descending else ranked[0]
    return value


def bson_key(value: Any) -> tuple[int, Any]:
    """Orders scalars as MongoDB does across types (null < numbers < strings < booleans)."""
    return (TYPE_RANK[type(value)], 0 if value is None else value)


def ordered(
    rows: Sequence[tuple[str, dict[str, Any] | None]], path: str, descending: bool
) -> list[str]:
    keyed = sorted(
        rows,
        key=lambda row: (bson_key(sort_value(row[1], path, descending)), row[0]),
        reverse=descending,
    )
    return [persona_id for persona_id, _ in keyed]
