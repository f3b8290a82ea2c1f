"""A persona query evaluated in Python, with MongoDB's meaning: subscriptions and webhooks
match each change against it without asking the database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from personas.domain.filters import RANGE_OPERATORS, Condition, Operator, PersonaQuery

MISSING: Final[Any] = object()
"""Where a path leads nowhere (MongoDB matches it as null for equality)."""


def matches(query: PersonaQuery, name: str, metadata: dict[str, Any] | None) -> bool:
    """Whether a persona with `name` and `metadata` is in the listing `query` asks for."""
    document = {"name": name, "metadata": metadata}
    if not all(holds(item, document) for item in query.all_of):
        return False
    if query.any_of and not any(holds(item, document) for item in query.any_of):
        return False
    return query.search is None or query.search.casefold() in name.casefold()


def holds(condition: Condition, document: dict[str, Any]) -> bool:
    """One validated condition on a document ({"name": ..., "metadata": ...})."""
    reached = _reach(document, condition.field.split("."))
    wanted = condition.value
    match condition.op:
        case Operator.EQ:
            return _equals(reached, wanted)
        case Operator.NE:
            return not _equals(reached, wanted)
        case Operator.IN:
            return any(_equals(reached, item) for item in wanted)
        case Operator.NIN:
            return not any(_equals(reached, item) for item in wanted)
        case Operator.ALL:
            # Within one value reached: every item is one of its elements (or it, if not a
            # list); an array given as an item matches an element, not the whole value.
            return any(
                all(any(_same(element, item) for element in _elements(value)) for item in wanted)
                for value in reached
                if value is not MISSING
            )
        case Operator.EXISTS:
            return any(value is not MISSING for value in reached) is wanted
        case Operator.PREFIX:
            return any(
                isinstance(item, str) and item.startswith(wanted) for item in _candidates(reached)
            )
        case op if op in RANGE_OPERATORS:
            return any(_in_order(item, wanted, op) for item in _candidates(reached))
    raise AssertionError(f"unknown operator {condition.op}")  # pragma: no cover


def _reach(value: Any, segments: list[str]) -> list[Any]:
    """The values a dotted path reaches, as MongoDB walks it: through objects by key, and
    through arrays into each element that is an object (or to one element, by a numeric
    segment). MISSING where an object lacks the key or an array the position."""
    if not segments:
        return [value]
    head, rest = segments[0], segments[1:]
    if isinstance(value, dict):
        return _reach(value[head], rest) if head in value else [MISSING]
    if not isinstance(value, list):
        return [MISSING]
    reached: list[Any] = []
    if head.isdigit():
        reached += _reach(value[int(head)], rest) if int(head) < len(value) else [MISSING]
    for item in value:
        if isinstance(item, dict):
            reached += _reach(item, segments)
    return reached  # an array without objects leads nowhere, not even to null


def _elements(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _candidates(reached: list[Any]) -> Iterator[Any]:
    """Each value reached, and each element of a reached array."""
    for value in reached:
        if value is MISSING:
            continue
        yield value
        if isinstance(value, list):
            yield from value


def _equals(reached: list[Any], wanted: Any) -> bool:
    if wanted is None and any(value is MISSING or value is None for value in reached):
        return True
    return any(_same(item, wanted) for item in _candidates(reached))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(left: Any, right: Any) -> bool:
    """BSON equality: numbers by value, everything else by type and value, key order kept."""
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[key], right[key]) for key in left)
    return bool(left == right)


def _in_order(item: Any, wanted: Any, op: Operator) -> bool:
    """A range comparison within one type class (numbers, or strings), as MongoDB brackets."""
    if _is_number(wanted):
        if not _is_number(item):
            return False
    elif not isinstance(item, str) or not isinstance(wanted, str):
        return False
    if op is Operator.GT:
        return bool(item > wanted)
    if op is Operator.GTE:
        return bool(item >= wanted)
    if op is Operator.LT:
        return bool(item < wanted)
    return bool(item <= wanted)
