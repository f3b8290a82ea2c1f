"""The schema guard: schema.graphql is the code's schema, and no change since the last release
breaks its clients unless CHANGELOG.md lists it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from graphql import build_schema, find_breaking_changes, find_dangerous_changes

PUBLISHED = Path("schema.graphql")
RELEASED = Path("schema/released.graphql")
CHANGELOG = Path("CHANGELOG.md")

_SECTION = re.compile(r"^## ", re.MULTILINE)
_LISTED = re.compile(r"^\s*[-*]\s+`([^`]+)`", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SchemaReport:
    up_to_date: bool
    """schema.graphql is the code's schema."""
    breaking: list[str] = field(default_factory=list)
    """Breaking changes since the release that the changelog does not list."""
    listed: list[str] = field(default_factory=list)
    """Breaking changes since the release that the changelog lists."""
    dangerous: list[str] = field(default_factory=list)
    """Changes that may change what existing clients see (graphql-core's dangerous changes)."""

    @property
    def ok(self) -> bool:
        return self.up_to_date and not self.breaking

    def lines(self) -> list[str]:
        lines = []
        if not self.up_to_date:
            lines.append(f"{PUBLISHED} differs from the code's schema: run `make schema`")
        lines += [f"breaking, not in {CHANGELOG}: `{change}`" for change in self.breaking]
        lines += [f"breaking, listed in {CHANGELOG}: `{change}`" for change in self.listed]
        lines += [f"dangerous: {change}" for change in self.dangerous]
        if self.ok:
            lines.append(f"{PUBLISHED} is up to date; no unlisted breaking change since {RELEASED}")
        return lines


def breaking_changes(released_sdl: str, current_sdl: str) -> list[str]:
    """graphql-core's description of each change that breaks a client of the released schema."""
    old, new = build_schema(released_sdl), build_schema(current_sdl)
    return [change.description for change in find_breaking_changes(old, new)]


def dangerous_changes(released_sdl: str, current_sdl: str) -> list[str]:
    old, new = build_schema(released_sdl), build_schema(current_sdl)
    return [change.description for change in find_dangerous_changes(old, new)]


def listed_breaking_changes(changelog: str) -> set[str]:
    """The changes listed under `### Breaking` of the `## Unreleased` section, one per list
    item, each written first on its line between backticks exactly as the guard prints it."""
    for section in _SECTION.split(changelog):
        title, _, body = section.partition("\n")
        if title.strip().lower() != "unreleased":
            continue
        breaking = re.split(r"^### ", body, flags=re.MULTILINE)
        for part in breaking:
            heading, _, items = part.partition("\n")
            if heading.strip().lower() == "breaking":
                return set(_LISTED.findall(items))
    return set()


def check(code_sdl: str, published_sdl: str, released_sdl: str, changelog: str) -> SchemaReport:
    listed = listed_breaking_changes(changelog)
    changes = breaking_changes(released_sdl, code_sdl)
    return SchemaReport(
        up_to_date=published_sdl.strip() == code_sdl.strip(),
        breaking=[change for change in changes if change not in listed],
        listed=[change for change in changes if change in listed],
        dangerous=dangerous_changes(released_sdl, code_sdl),
    )


def check_files(code_sdl: str, root: Path = Path()) -> SchemaReport:
    """`check` over the repository's files under `root`."""
    changelog = root / CHANGELOG
    return check(
        code_sdl,
        (root / PUBLISHED).read_text(),
        (root / RELEASED).read_text(),
        changelog.read_text() if changelog.exists() else "",
    )
