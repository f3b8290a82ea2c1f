"""The schema guard: the published schema is the code's, and breaking changes are listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from personas import cli
from personas.graphql.guard import (
    breaking_changes,
    check,
    check_files,
    listed_breaking_changes,
)
from personas.graphql.schema import build_schema

ROOT = Path(__file__).parent.parent
RELEASED = """
type Query { persona(id: ID!): Persona }
type Persona { id: ID! name: String! legacy: String }
"""
WITHOUT_LEGACY = """
type Query { persona(id: ID!): Persona }
type Persona { id: ID! name: String! }
"""
CHANGELOG = """# Changelog

## Unreleased

### Breaking

- `Field Persona.legacy was removed.` Read `name` instead.

## 1.0.0

### Breaking

- `Persona.name was removed.`
"""


def test_the_repository_passes_the_guard() -> None:
    report = check_files(build_schema().as_str(), ROOT)
    assert report.up_to_date, "schema.graphql is out of date: run `make schema`"
    assert report.breaking == [], (
        "breaking changes since schema/released.graphql must be listed in CHANGELOG.md "
        "(## Unreleased, ### Breaking): " + "; ".join(report.breaking)
    )


def test_a_removed_field_is_breaking() -> None:
    assert breaking_changes(RELEASED, WITHOUT_LEGACY) == ["Field Persona.legacy was removed."]
    assert breaking_changes(WITHOUT_LEGACY, RELEASED) == []


def test_only_the_unreleased_breaking_list_counts() -> None:
    assert listed_breaking_changes(CHANGELOG) == {"Field Persona.legacy was removed."}
    assert listed_breaking_changes("# Changelog\n\n## 1.0.0\n\n### Breaking\n\n- `x`\n") == set()


def test_an_unlisted_breaking_change_fails_and_a_listed_one_passes() -> None:
    refused = check(WITHOUT_LEGACY, WITHOUT_LEGACY, RELEASED, "# Changelog\n")
    assert not refused.ok
    assert refused.breaking == ["Field Persona.legacy was removed."]
    accepted = check(WITHOUT_LEGACY, WITHOUT_LEGACY, RELEASED, CHANGELOG)
    assert accepted.ok
    assert accepted.listed == ["Field Persona.legacy was removed."]
    stale = check(WITHOUT_LEGACY, RELEASED, RELEASED, CHANGELOG)
    assert not stale.ok
    assert not stale.up_to_date


def test_the_command_line_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "schema").mkdir()
    shutil.copy(ROOT / "schema.graphql", tmp_path / "schema.graphql")
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    released = (ROOT / "schema.graphql").read_text()
    extra = "type Query {\n  legacyPersonas: Int!\n"
    (tmp_path / "schema" / "released.graphql").write_text(released.replace("type Query {\n", extra))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["schema", "--check"]) == 1
    assert "breaking, not in CHANGELOG.md: `Field Query.legacyPersonas was removed.`" in (
        capsys.readouterr().err
    )
    changelog = (tmp_path / "CHANGELOG.md").read_text()
    head, unreleased = changelog.split("## Unreleased", 1)
    unreleased = unreleased.replace(
        "### Breaking\n", "### Breaking\n\n- `Field Query.legacyPersonas was removed.` Gone.\n"
    )
    listed = f"{head}## Unreleased{unreleased}"
    (tmp_path / "CHANGELOG.md").write_text(listed)
    assert cli.main(["schema", "--check"]) == 0
    assert "schema.graphql is up to date" in capsys.readouterr().out
