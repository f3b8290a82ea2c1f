"""The MongoDB query builder: pure functions from a validated domain query to a filter or
a pipeline. The only place that writes `$`-operators; tested without a database."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from bson import ObjectId

from personas.domain import Condition, Cursor, Operator, PersonaQuery, SortKey

HIDDEN: Final = {"tenant": False}
"""The projection of every read: the tenant stays inside the store."""
RECENCY: Final = [("created_at", -1), ("_id", -1)]
ORDER_INDEXES: Final[Mapping[str, list[tuple[str, Any]]]] = {
    "created_at": [("tenant", 1), *RECENCY],
    "updated_at": [("tenant", 1), ("updated_at", -1), ("_id", -1)],
    "name": [("tenant", 1), ("name", 1), ("_id", 1)],
}
HINTED_OPERATORS: Final = frozenset({Operator.ALL, Operator.PREFIX})
"""Conditions an index narrows but a simple query planner may not pair with it by itself."""


def path_index(stored: str) -> list[tuple[str, Any]]:
    """The index for filtering by `stored` (a `metadata.` field), newest first."""
    return [("tenant", 1), (stored, 1), *RECENCY]


def condition_filter(item: Condition) -> dict[str, Any]:
    """One condition, its value always behind an explicit operator."""
    if item.op is Operator.PREFIX:
        return {item.field: {"$regex": "^" + re.escape(item.value)}}
    return {item.field: {"$" + item.op.value: item.value}}


def merge(clauses: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """AND clauses into one flat filter (flat filters are what query planners index best)."""
    merged: dict[str, Any] = {}
    rest: list[Mapping[str, Any]] = []
    for clause in clauses:
        if any(key in merged for key in clause):
            rest.append(clause)
        else:
            merged.update(clause)
    if rest:
        merged["$and"] = [*merged.get("$and", []), *rest]
    return merged


def scoped(tenant: str, *clauses: Mapping[str, Any]) -> dict[str, Any]:
    """Clauses pinned to a tenant. The tenant comes last: a planner that looks at the first
    condition then finds `_id` or the metadata path."""
    return merge([*clauses, {"tenant": tenant}])


def clauses(query: PersonaQuery) -> list[dict[str, Any]]:
    """The conditions of a query to AND (without tenant or cursor)."""
    found = [condition_filter(item) for item in query.all_of]
    if query.any_of:
        found.append({"$or": [condition_filter(item) for item in query.any_of]})
    if query.search:
        found.append({"name": {"$regex": re.escape(query.search), "$options": "i"}})
    return found


def listing_filter(
    tenant: str, query: PersonaQuery, leading: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A listing's filter: `leading` conditions (which pick the collection's slice, such as
    one label's releases), the query's, then the tenant."""
    return scoped(tenant, *leading, *clauses(query))


def release_scope(label: str) -> dict[str, Any]:
    """The releases of one label. Like the tenant, the label is a validated name matched by
    plain equality, and it leads: a planner that plans from the first condition then takes
    the index that starts with it."""
    return {"label": label}


def sort(query: PersonaQuery) -> list[tuple[str, int]]:
    """The order of a listing; ties broken by id in the direction of the first key."""
    keys = [(key.field, -1 if key.descending else 1) for key in query.order]
    keys.append(("_id", -1 if query.order[0].descending else 1))
    return keys


def release_index(keys: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """A persona index turned into the same index over one label's releases."""
    return [("label", 1), *keys]


def hint(
    query: PersonaQuery, indexed: Iterable[str], over: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """Keyword arguments naming the index for the first `ALL` or `PREFIX` condition on an
    indexed field. Only then: on the embedded server a hinted scan is slower than the
    planner's own choice, and other conditions it indexes itself."""
    available = set(indexed)
    for item in query.all_of:
        if item.field in available and item.op in HINTED_OPERATORS:
            keys = path_index(item.field)
            return {"hint": dict(over(keys) if over else keys)}
    return {}


def keyset_filter(order: Sequence[tuple[str, int]], values: Sequence[Any]) -> dict[str, Any]:
    """Documents strictly after `values` in `order` (the last key is unique)."""
    branches: list[dict[str, Any]] = []
    for index, (stored, direction) in enumerate(order):
        branch: dict[str, Any] = {
            earlier: {"$eq": values[position]}
            for position, (earlier, _) in enumerate(order[:index])
        }
        branch[stored] = {"$lt" if direction < 0 else "$gt": values[index]}
        branches.append(branch)
    return {"$or": branches}


def keyset_expression(order: Sequence[tuple[str, int]], values: Sequence[Any]) -> dict[str, Any]:
    """`keyset_filter` for computed sort fields: compares across types in BSON order."""
    branches: list[dict[str, Any]] = []
    for index, (stored, direction) in enumerate(order):
        terms: list[dict[str, Any]] = [
            {"$eq": ["$" + earlier, {"$literal": values[position]}]}
            for position, (earlier, _) in enumerate(order[:index])
        ]
        terms.append(
            {"$lt" if direction < 0 else "$gt": ["$" + stored, {"$literal": values[index]}]}
        )
        branches.append({"$and": terms})
    return {"$expr": {"$or": branches}}


def sort_expression(key: SortKey) -> Any:
    """A document's sort value for `key`, as MongoDB orders it: an array sorts by its
    smallest element ascending and its largest descending; missing sorts as null."""
    if not key.by_metadata:
        return "$" + key.field
    return {
        "$let": {
            "vars": {"value": "$" + key.field},
            "in": {
                "$cond": [
                    {"$isArray": "$$value"},
                    {"$max" if key.descending else "$min": "$$value"},
                    {"$ifNull": ["$$value", None]},
                ]
            },
        }
    }


def sort_names(query: PersonaQuery) -> list[str]:
    """Where a listing's documents hold their sort values: the fields themselves, or
    computed `_sort<n>` fields for metadata orders."""
    if query.by_metadata:
        return [f"_sort{index}" for index in range(len(query.order))]
    return [key.field for key in query.order]


def listing_pipeline(
    tenant: str,
    query: PersonaQuery,
    first: int,
    after: Cursor | None,
    leading: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """One page of a listing as one pipeline: the filter first (where an index serves it),
    then the cursor's position as a stage of its own, so that page 50 is found the way
    page 1 is; one more document than the page, to tell whether another page follows."""
    names = sort_names(query)
    order = [
        (name, direction) for name, (_, direction) in zip([*names, "_id"], sort(query), strict=True)
    ]
    pipeline: list[dict[str, Any]] = [{"$match": listing_filter(tenant, query, leading)}]
    if query.by_metadata:
        pipeline.append(
            {
                "$addFields": {
                    name: sort_expression(key) for name, key in zip(names, query.order, strict=True)
                }
            }
        )
    if after is not None:
        position = [*after.values, ObjectId(after.id)]
        after_position = keyset_expression if query.by_metadata else keyset_filter
        pipeline.append({"$match": after_position(order, position)})
    pipeline += [{"$sort": dict(order)}, {"$limit": first + 1}, {"$project": HIDDEN}]
    return pipeline


def position(document: Mapping[str, Any], query: PersonaQuery) -> Cursor:
    """Where a listed document stands: its sort values and id."""
    return Cursor(tuple(document[name] for name in sort_names(query)), str(document["_id"]))


def values_pipeline(
    tenant: str, stored: str, query: PersonaQuery, first: int
) -> list[dict[str, Any]]:
    """How many personas have each value at `stored`, arrays unwound, most frequent first."""
    return [
        {"$match": listing_filter(tenant, query)},
        {"$project": {"_id": False, "value": "$" + stored}},
        {"$unwind": "$value"},
        {"$group": {"_id": "$value", "count": {"$sum": 1}}},
        {"$sort": {"count": -1, "_id": 1}},
        {"$limit": first},
    ]


def changes_update(
    replaced: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The update that replaces fields (a field given as None is removed), with the
    `$set`/`$unset`/... of `extra` beside them."""
    update: dict[str, Any] = {key: dict(value) for key, value in (extra or {}).items()}
    for field, value in replaced.items():
        operator = "$unset" if value is None else "$set"
        update.setdefault(operator, {})[field] = "" if value is None else value
    return update


def event_inserts() -> list[dict[str, Any]]:
    """The change-stream pipeline of the event log: appended events only."""
    return [{"$match": {"operationType": {"$eq": "insert"}}}]


def events_after(tenant: str, seq: int, until: int | None = None) -> dict[str, Any]:
    """A tenant's events after `seq` (up to `until`, included)."""
    position: dict[str, Any] = {"$gt": seq}
    if until is not None:
        position["$lte"] = until
    return scoped(tenant, {"seq": position})


def next_event_id() -> dict[str, Any]:
    """The update that takes the next event id of a tenant's counter."""
    return {"$inc": {"seq": 1}}


def due_deliveries(moment: Any) -> dict[str, Any]:
    """Pending deliveries whose next attempt is due (a claimed one is due again once its
    claim lapses)."""
    return {"status": {"$eq": "pending"}, "next_attempt_at": {"$lte": moment}}


def claim_delivery(owner: str, until: Any) -> dict[str, Any]:
    """The update by which one worker takes a delivery until `until`."""
    return {"$set": {"claim": owner, "next_attempt_at": until}}


def attempt_recorded(
    attempt: Mapping[str, Any], changes: Mapping[str, Any], kept: int
) -> dict[str, Any]:
    """An attempt appended to a delivery's record (the latest `kept` stay), its claim
    released and `changes` set."""
    return {
        "$push": {"attempts": {"$each": [dict(attempt)], "$slice": -kept}},
        "$inc": {"attempt_count": 1},
        "$set": {**changes, "claim": None},
        "$min": {"first_attempt_at": attempt["at"]},
    }


def cursor_advanced(seq: int) -> dict[str, Any]:
    """A webhook's position in the log moved forward to `seq` (never back)."""
    return {"$max": {"cursor": seq}}


def pending_of(webhook_id: Any) -> dict[str, Any]:
    return {"webhook_id": webhook_id, "status": {"$eq": "pending"}}


def before_id(condition: Mapping[str, Any], before: str | None) -> dict[str, Any]:
    """`condition`, restricted to documents older than the one with id `before`."""
    if before is None:
        return dict(condition)
    return merge([condition, {"_id": {"$lt": ObjectId(before)}}])


def remembered(tenant: str, key: str, moment: datetime) -> dict[str, Any]:
    """The idempotency record of `key` that is still kept at `moment` (expired records wait
    for the TTL monitor, which runs about once a minute)."""
    return scoped(tenant, {"key": key, "expires_at": {"$gt": moment}})
