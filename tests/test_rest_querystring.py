"""The REST query-string language, as pure functions: values, filters, sort keys."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from personas import domain
from personas.domain import FilterSpec, InvalidInput, Operator, SortKey
from personas.rest import querystring
from personas.rest.querystring import filter_specs, number, readings, sort_keys
from tests.conftest import accepts


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("150", [150, "150"]),
        ("-3", [-3, "-3"]),
        ("2.0", [2.0, "2.0"]),
        ("1e3", [1000.0, "1e3"]),
        ("true", [True, "true"]),
        ("false", [False, "false"]),
        ("null", [None, "null"]),
        ("2.0.0", ["2.0.0"]),
        ("0150", ["0150"]),
        ("+1", ["+1"]),
        ("1_000", ["1_000"]),
        (" 1", [" 1"]),
        ("True", ["True"]),
        ("NaN", ["NaN"]),
        ("1e999", ["1e999"]),
        (str(2**63), [str(2**63)]),
        (str(-(2**63)), [-(2**63), str(-(2**63))]),
        ("", [""]),
        ("prod", ["prod"]),
    ],
)
def test_readings_of_a_query_string_value(raw: str, expected: list[object]) -> None:
    found = readings(raw)
    assert found == expected
    assert [type(value) for value in found] == [type(value) for value in expected]


@given(st.text())
def test_every_value_reads_as_its_own_string_last(raw: str) -> None:
    assert readings(raw)[-1] == raw


@given(st.integers(min_value=domain.INT64_MIN, max_value=domain.INT64_MAX))
def test_every_64_bit_integer_reads_as_itself(value: int) -> None:
    assert number(str(value)) == value


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("metadata.tags", "prod", [FilterSpec("tags", "prod")]),
        ("metadata.tags[eq]", "prod", [FilterSpec("tags", "prod")]),
        ("metadata.a.b", "150", [FilterSpec("a.b", [150, "150"], Operator.IN)]),
        ("metadata.a[ne]", "x", [FilterSpec("a", "x", Operator.NE)]),
        ("metadata.a[ne]", "true", [FilterSpec("a", [True, "true"], Operator.NIN)]),
        ("metadata.a[in]", "x,1", [FilterSpec("a", ["x", 1, "1"], Operator.IN)]),
        ("metadata.a[nin]", "x,null", [FilterSpec("a", ["x", None, "null"], Operator.NIN)]),
        ("metadata.a[all]", "x,y", [FilterSpec("a", ["x", "y"], Operator.ALL)]),
        (
            "metadata.a[all]",
            "x,2",
            [FilterSpec("a", ["x"], Operator.ALL), FilterSpec("a", [2, "2"], Operator.IN)],
        ),
        ("metadata.a[exists]", "true", [FilterSpec("a", True, Operator.EXISTS)]),
        ("metadata.a[exists]", "false", [FilterSpec("a", False, Operator.EXISTS)]),
        ("metadata.a[gt]", "4", [FilterSpec("a", 4, Operator.GT)]),
        ("metadata.a[lte]", "2.5", [FilterSpec("a", 2.5, Operator.LTE)]),
        ("metadata.a[gte]", "true", [FilterSpec("a", "true", Operator.GTE)]),
        ("metadata.a[lt]", "2025-01-15", [FilterSpec("a", "2025-01-15", Operator.LT)]),
        ("metadata.a[prefix]", "12", [FilterSpec("a", "12", Operator.PREFIX)]),
    ],
)
def test_filter_specs(name: str, raw: str, expected: list[FilterSpec]) -> None:
    assert filter_specs(name, raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("metadata.a[$ne]", "1", "unknown operator"),
        ("metadata.a[in ]", "1", "unknown operator"),
        ("metadata.a[x]y", "1", "cannot hold [ or ]"),
        ("metadata.$where", "1", "must not start with '$'"),
        ("metadata..a", "1", "empty segment"),
        ("metadata.a[exists]", "yes", "true or false"),
        ("metadata.a[prefix]", "", "non-empty string"),
    ],
)
def test_bad_filters_name_the_parameter(name: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        filter_specs(name, raw)
    assert raised.value.field == name
    assert message in raised.value.message


def test_sort_keys() -> None:
    assert sort_keys("metadata.deployment.last_tested,-created_at") == [
        SortKey("metadata.deployment.last_tested", descending=False),
        SortKey("created_at", descending=True),
    ]
    assert sort_keys("name,-updated_at") == [
        SortKey("name", descending=False),
        SortKey("updated_at", descending=True),
    ]
    for raw in ("", "color", "--name", "metadata", "metadata..a", "name,"):
        with pytest.raises(InvalidInput):
            sort_keys(raw)


def test_the_documented_whitespace_is_what_strip_removes() -> None:
    space = re.compile(f"[{domain.SPACE}]")
    every = (chr(code) for code in range(0x110000))
    assert {char for char in every if space.fullmatch(char)} == {
        char for char in map(chr, range(0x110000)) if char.isspace()
    }


SORT_KEYS = ["name", "-name", "created_at", "-updated_at", "metadata.a.b", "-metadata.x"]
SORT_MISTAKES = ["metadata.", "metadata.$a", "metadata.a..b", "color", "--name", "", "metadata"]


@given(st.lists(st.sampled_from(SORT_KEYS + SORT_MISTAKES), min_size=1, max_size=5))
def test_the_documented_sort_pattern_is_the_rule(keys: list[str]) -> None:
    raw = ",".join(keys)
    accepted = accepts(lambda: querystring.persona_query([], sort=raw))
    assert accepted == bool(re.fullmatch(querystring.SORT_PATTERN, raw))


@given(
    st.text(
        st.sampled_from(" \t\u3000\x85ab") | st.characters(exclude_categories=["Cs"]),
        max_size=210,
    )
)
@example("a" * domain.SEARCH_MAX)
@example(f"\u3000{'a' * domain.SEARCH_MAX} ")
@example("a" * (domain.SEARCH_MAX + 1))
@example("  ")
def test_the_documented_search_pattern_is_the_rule(raw: str) -> None:
    accepted = accepts(lambda: querystring.persona_query([], search=raw))
    assert accepted == bool(re.fullmatch(querystring.SEARCH_PATTERN, raw))


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("metadata.a", querystring.FILTER_PATTERN),
        ("metadata.a.b[nin]", querystring.FILTER_PATTERN),
        ("metadata.a[exists]", querystring.EXISTS_FILTER_PATTERN),
        ("metadata.a[prefix]", querystring.PREFIX_FILTER_PATTERN),
    ],
)
def test_the_documented_filter_patterns_name_the_operators(name: str, pattern: str) -> None:
    assert re.fullmatch(pattern, name)
    patterns = [
        querystring.FILTER_PATTERN,
        querystring.EXISTS_FILTER_PATTERN,
        querystring.PREFIX_FILTER_PATTERN,
    ]
    assert [other for other in patterns if re.fullmatch(other, name)] == [pattern]
    for mistake in ("metadata.a[regex]", "metadata.$a", "metadata.a[b]c", "tags"):
        assert not re.fullmatch(pattern, mistake)
