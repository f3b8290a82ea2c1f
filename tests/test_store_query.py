"""The MongoDB query builder, without a database: filters, pipelines and updates."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId

from personas import domain
from personas.domain import FilterSpec, Operator, SortField
from personas.store import query


def test_keyset_filter_is_strictly_after_the_position() -> None:
    sort = [("name", 1), ("_id", 1)]
    assert query.keyset_filter(sort, ["m", 7]) == {
        "$or": [{"name": {"$gt": "m"}}, {"name": {"$eq": "m"}, "_id": {"$gt": 7}}]
    }


def test_keyset_expression_keeps_values_literal() -> None:
    expression = query.keyset_expression([("_sort0", -1), ("_id", -1)], ["$x", 1])
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
    merged = query.merge(
        [{"tenant": "t"}, {"metadata.tags": {"$eq": "a"}}, {"metadata.tags": {"$eq": "b"}}]
    )
    assert merged == {
        "tenant": "t",
        "metadata.tags": {"$eq": "a"},
        "$and": [{"metadata.tags": {"$eq": "b"}}],
    }


def test_conditions_use_explicit_operators() -> None:
    assert query.condition_filter(domain.condition(FilterSpec("a.b", {"x": 1}), "f")) == {
        "metadata.a.b": {"$eq": {"x": 1}}
    }
    prefix = domain.condition(FilterSpec("v", "1.2(", Operator.PREFIX), "f")
    assert query.condition_filter(prefix) == {"metadata.v": {"$regex": "^1\\.2\\("}}
    assert domain.condition(FilterSpec("t", None, Operator.EXISTS), "f").value is True


def test_only_conditions_planners_miss_name_their_index() -> None:
    indexed = ["metadata.tags", "metadata.status"]
    planned = domain.persona_query(
        all_of=[FilterSpec("status", "a"), FilterSpec("owner", "x", Operator.PREFIX)]
    )
    assert query.hint(planned, indexed) == {}
    hinted = domain.persona_query(
        all_of=[FilterSpec("owner", "x"), FilterSpec("status", "a", Operator.PREFIX)]
    )
    assert query.hint(hinted, indexed) == {"hint": dict(query.path_index("metadata.status"))}


def test_tenant_comes_last_and_values_stay_behind_operators() -> None:
    listing = domain.persona_query(
        all_of=[FilterSpec("tags", "prod")], any_of=[FilterSpec("a", 1), FilterSpec("b", 2)]
    )
    built = query.listing_filter("acme", listing)
    assert list(built) == ["metadata.tags", "$or", "tenant"]
    assert built["$or"] == [{"metadata.a": {"$eq": 1}}, {"metadata.b": {"$eq": 2}}]


def test_a_listing_is_one_pipeline_with_the_cursor_after_the_filter() -> None:
    listing = domain.persona_query(all_of=[FilterSpec("tags", "prod")])
    at = domain.Cursor((datetime(2025, 1, 1, tzinfo=UTC),), "b" * 24)
    pipeline = query.listing_pipeline("acme", listing, 20, at)
    assert [next(iter(stage)) for stage in pipeline] == [
        "$match",
        "$match",
        "$sort",
        "$limit",
        "$project",
    ]
    assert pipeline[0]["$match"] == {"metadata.tags": {"$eq": "prod"}, "tenant": "acme"}
    assert pipeline[1]["$match"]["$or"][1]["_id"] == {"$lt": ObjectId("b" * 24)}
    assert pipeline[2]["$sort"] == {"created_at": -1, "_id": -1}
    assert pipeline[3]["$limit"] == 21


def test_metadata_orders_compute_their_sort_values() -> None:
    listing = domain.persona_query(
        order=[domain.sort_key(SortField.METADATA, "version", True, "order")]
    )
    pipeline = query.listing_pipeline("acme", listing, 5, None)
    assert "_sort0" in pipeline[1]["$addFields"]
    assert pipeline[2]["$sort"] == {"_sort0": -1, "_id": -1}
    document = {"_id": ObjectId("c" * 24), "_sort0": [3, 1]}
    assert query.position(document, listing) == domain.Cursor(([3, 1],), "c" * 24)


def test_changes_update_sets_and_unsets_in_one_builder() -> None:
    assert query.changes_update({"name": "n", "metadata": None}) == {
        "$set": {"name": "n"},
        "$unset": {"metadata": ""},
    }
    assert query.changes_update({"metadata": {"a": 1}}) == {"$set": {"metadata": {"a": 1}}}
