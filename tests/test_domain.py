"""The pure domain rules, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from personas import domain
from personas.domain import FilterSpec, InvalidInput, Operator, SortField

PERSONA = domain.Persona(
    id="a" * 24,
    name="n",
    content="c",
    metadata={"a": "b", "c": {"d": "e", "f": "g"}},
    version=3,
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
    updated_at=datetime(2025, 1, 2, tzinfo=UTC),
)

# RFC 7396, appendix A
MERGE_PATCH_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), MERGE_PATCH_EXAMPLES)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    assert domain.merge_patch(target, patch) == result


def test_patch_changes_only_what_it_names() -> None:
    changes = domain.patch_changes(PERSONA, {"metadata": {"c": {"d": None}, "x": 1}})
    assert changes.as_document() == {"metadata": {"a": "b", "c": {"f": "g"}, "x": 1}}
    assert domain.patch_changes(PERSONA, {"metadata": None}).as_document() == {"metadata": None}
    assert domain.patch_changes(PERSONA, {"name": " New "}).as_document() == {"name": "New"}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ([], "body"),
        ({"id": "x"}, "id"),
        ({"version": 2}, "version"),
        ({"name": None}, "name"),
        ({"metadata": {"$set": 1}}, "metadata"),
        ({"metadata": ["x"]}, "metadata"),
        ({}, "input"),
    ],
)
def test_invalid_patches_name_the_field(patch: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        domain.patch_changes(PERSONA, patch)
    assert refused.value.field == field


def test_cursor_round_trip_and_tampering() -> None:
    query = domain.persona_query(all_of=[FilterSpec("tags", "prod")])
    cursor = domain.encode_cursor(query, [PERSONA.created_at], PERSONA.id)
    decoded = domain.decode_cursor(cursor, query)
    assert decoded == domain.Cursor((PERSONA.created_at,), PERSONA.id)
    other = domain.persona_query(all_of=[FilterSpec("tags", "dev")])
    with pytest.raises(InvalidInput, match="another filter or order"):
        domain.decode_cursor(cursor, other)
    forged = domain._pack([query.fingerprint(), ["not a date"], PERSONA.id])
    with pytest.raises(InvalidInput, match="not a valid cursor"):
        domain.decode_cursor(forged, query)
    by_metadata = domain.persona_query(
        order=[domain.sort_key(SortField.METADATA, "x", False, "orderBy.0")]
    )
    injected = domain._pack([by_metadata.fingerprint(), [{"$where": "1"}], PERSONA.id])
    with pytest.raises(InvalidInput):
        domain.decode_cursor(injected, by_metadata)


def test_keyset_filter_is_strictly_after_the_position() -> None:
    sort = [("name", 1), ("_id", 1)]
    assert domain.keyset_filter(sort, ["m", 7]) == {
        "$or": [{"name": {"$gt": "m"}}, {"name": {"$eq": "m"}, "_id": {"$gt": 7}}]
    }


def test_keyset_expression_keeps_values_literal() -> None:
    expression = domain.keyset_expression([("_sort0", -1), ("_id", -1)], ["$x", 1])
    assert expression == {
        "$expr": {
            "$or": [
                {"$and": [{"$lt": ["$_sort0", {"$literal": "$x"}]}]},
                {
                    "$and": [
                        {"$eq": ["$_sort0", {"$literal": "$x"}]},
                        {"$lt": ["$_id", {"$literal": 1}]},
                    ]
                },
            ]
        }
    }


def test_merge_keeps_filters_flat_and_ands_repeated_fields() -> None:
    merged = domain.merge(
        [{"tenant": "t"}, {"metadata.tags": {"$eq": "a"}}, {"metadata.tags": {"$eq": "b"}}]
    )
    assert merged == {
        "tenant": "t",
        "metadata.tags": {"$eq": "a"},
        "$and": [{"metadata.tags": {"$eq": "b"}}],
    }


def test_conditions_use_explicit_operators() -> None:
    assert domain.condition(FilterSpec("a.b", {"x": 1}), "f").to_mongo() == {
        "metadata.a.b": {"$eq": {"x": 1}}
    }
    assert domain.condition(FilterSpec("v", "1.2(", Operator.PREFIX), "f").to_mongo() == {
        "metadata.v": {"$regex": "^1\\.2\\("}
    }
    assert domain.condition(FilterSpec("t", None, Operator.EXISTS), "f").value is True


def test_only_conditions_planners_miss_name_their_index() -> None:
    indexed = ["metadata.tags", "metadata.status"]
    query = domain.persona_query(
        all_of=[FilterSpec("status", "a"), FilterSpec("owner", "x", Operator.PREFIX)]
    )
    assert query.hinted_field(indexed) is None
    query = domain.persona_query(
        all_of=[FilterSpec("owner", "x"), FilterSpec("status", "a", Operator.PREFIX)]
    )
    assert query.hinted_field(indexed) == "metadata.status"


@pytest.mark.parametrize(
    ("raw", "valid"),
    [("read", True), ("read,write,admin", True), ("", False), ("read,root", False)],
)
def test_scopes(raw: str, valid: bool) -> None:
    if valid:
        assert domain.parse_scopes(raw) <= domain.ALL_SCOPES
    else:
        with pytest.raises(InvalidInput):
            domain.parse_scopes(raw)


@pytest.mark.parametrize(
    ("raw", "valid"),
    [("acme", True), ("team-1.eu_west", True), ("", False), ("a b", False), ("-x", False)],
)
def test_tenants(raw: str, valid: bool) -> None:
    if valid:
        assert domain.validate_tenant(raw) == raw
    else:
        with pytest.raises(InvalidInput):
            domain.validate_tenant(raw)


def test_tags_are_deduplicated_in_order() -> None:
    assert domain.validate_tags(["b", "a", "b"]) == ["b", "a"]


def test_metadata_assignment_counts_the_path_depth() -> None:
    deep_path = ".".join(["k"] * 16)
    with pytest.raises(InvalidInput):
        domain.metadata_assignment(deep_path, {"a": {"b": {"c": {"d": {"e": 1}}}}})
    assert domain.metadata_assignment("a.b", 1) == ("metadata.a.b", 1)
