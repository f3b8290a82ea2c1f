"""The pure domain rules, without a server."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from personas import domain
from personas.domain import FilterSpec, InvalidInput, SortField, cursors
from tests.conftest import accepts

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
    assert changes.given() == {"metadata": {"a": "b", "c": {"f": "g"}, "x": 1}}
    assert domain.patch_changes(PERSONA, {"metadata": None}).given() == {"metadata": None}
    assert domain.patch_changes(PERSONA, {"name": " New "}).given() == {"name": "New"}


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


def test_the_version_rule_is_one_for_both_apis() -> None:
    assert domain.validate_version(1, "v") == 1
    assert domain.parse_version("42", "v") == 42
    for refused in (0, -1, domain.VERSION_MAX + 1):
        with pytest.raises(InvalidInput, match="integer from 1 to"):
            domain.validate_version(refused, "v")
    for text in ("0", "01", "x", "1.0", "", "99999999999999999999"):
        with pytest.raises(InvalidInput, match="integer from 1 to"):
            domain.parse_version(text, "v")


def test_cursor_round_trip_and_tampering() -> None:
    query = domain.persona_query(all_of=[FilterSpec("tags", "prod")])
    [cursor] = domain.encode_cursors(query, [domain.Cursor((PERSONA.created_at,), PERSONA.id)])
    decoded = domain.decode_cursor(cursor, query)
    assert decoded == domain.Cursor((PERSONA.created_at,), PERSONA.id)
    other = domain.persona_query(all_of=[FilterSpec("tags", "dev")])
    with pytest.raises(InvalidInput, match="another filter or order"):
        domain.decode_cursor(cursor, other)
    forged = cursors._pack([domain.fingerprint(query), ["not a date"], PERSONA.id])
    with pytest.raises(InvalidInput, match="not a valid cursor"):
        domain.decode_cursor(forged, query)
    by_metadata = domain.persona_query(
        order=[domain.sort_key(SortField.METADATA, "x", False, "orderBy.0")]
    )
    injected = cursors._pack([domain.fingerprint(by_metadata), [{"$where": "1"}], PERSONA.id])
    with pytest.raises(InvalidInput):
        domain.decode_cursor(injected, by_metadata)


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


# Lone surrogates are refused by every rule but cannot be written in a pattern.
CHARACTERS = st.characters(exclude_categories=["Cs"])
KEY_TEXT = st.text(st.sampled_from("a$.\x00 ") | CHARACTERS, max_size=300)
SPACED_TEXT = st.text(st.sampled_from(" \t\u3000\x85\u2028ab") | CHARACTERS, max_size=210)


@given(KEY_TEXT)
@example("a" * domain.KEY_MAX)
@example("a" * (domain.KEY_MAX + 1))
@example("")
@example("a$b")
def test_the_documented_key_pattern_is_the_key_rule(key: str) -> None:
    accepted = accepts(lambda: domain.validate_metadata({key: 1}))
    assert accepted == bool(re.fullmatch(domain.KEY_PATTERN, key))


@given(st.lists(KEY_TEXT, min_size=1, max_size=domain.PATH_MAX_SEGMENTS + 2))
@example(["a"] * domain.PATH_MAX_SEGMENTS)
@example(["a"] * (domain.PATH_MAX_SEGMENTS + 1))
def test_the_documented_path_pattern_is_the_path_rule(segments: list[str]) -> None:
    path = ".".join(segments)
    accepted = accepts(lambda: domain.validate_path(path, "path"))
    # One rule the pattern leaves out: a segment of digits other than 0-9.
    digits = any(part.isdigit() and not part.isascii() for part in path.split("."))
    assert accepted == (bool(re.fullmatch(domain.PATH_PATTERN, path)) and not digits)


@given(SPACED_TEXT)
@example("a" * domain.NAME_MAX)
@example(f" {'a' * domain.NAME_MAX}\t")
@example("a" * (domain.NAME_MAX + 1))
@example("\u3000")
def test_the_documented_name_pattern_is_the_name_rule(name: str) -> None:
    accepted = accepts(lambda: domain.validate_name(name))
    assert accepted == bool(re.fullmatch(domain.NAME_PATTERN, name))


@given(SPACED_TEXT)
@example("\u2028 \x85")
def test_the_documented_content_pattern_is_the_content_rule(content: str) -> None:
    accepted = accepts(lambda: domain.validate_content(content))
    assert accepted == bool(re.search(domain.CONTENT_PATTERN, content))


@pytest.mark.parametrize(
    "raw",
    ["a" * 24, " " + "A1" * 12 + "\n", "a" * 23, "a" * 25, "g" * 24, "a" * 12 + " " + "a" * 12],
)
def test_the_documented_id_pattern_is_the_id_rule(raw: str) -> None:
    accepted = accepts(lambda: domain.parse_id(raw))
    assert accepted == bool(re.fullmatch(domain.ID_INPUT_PATTERN, raw))
