"""Persona rules: what a persona, a change and a revision are, and the limits they keep."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from personas.domain.errors import InvalidInput
from personas.domain.metadata import check_text, validate_metadata

if TYPE_CHECKING:
    from personas.domain.labels import Label

NAME_MAX: Final = 200
CONTENT_MAX: Final = 100_000
VERSION_MAX: Final = 10**18 - 1
VERSION_PATTERN: Final = r"[1-9][0-9]{0,17}"
"""A version written as text (REST paths, entity tags): 1 to VERSION_MAX, 18 digits at most."""
ID_PATTERN: Final = r"[0-9a-f]{24}"
"""A persona id as stored and sent: 24 lowercase hexadecimal characters."""
SPACE: Final = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
r"""The characters str.strip() removes, as the body of a regex class (engines disagree on `\s`)."""


def padded_pattern(inner: str) -> str:
    """`inner` with any whitespace around it: what str.strip() turns into `inner`."""
    return rf"[{SPACE}]*{inner}[{SPACE}]*"


def trimmed_pattern(longest: int) -> str:
    """1 to `longest` characters, neither the first nor the last being whitespace."""
    return rf"[^{SPACE}](?:[\s\S]{{0,{longest - 2}}}[^{SPACE}])?"


NAME_PATTERN: Final = padded_pattern(trimmed_pattern(NAME_MAX))
"""A name as given: 1 to NAME_MAX characters once trimmed."""
CONTENT_PATTERN: Final = f"[^{SPACE}]"
"""Content as given: not blank (found anywhere in it)."""
ID_INPUT_PATTERN: Final = padded_pattern("[0-9a-fA-F]{24}")
"""A persona id as `parse_id` takes it: any case, surrounding whitespace ignored."""
FIELDS: Final = ("name", "content", "metadata")
"""What a persona's caller may give: in a new persona, a change or a merge patch."""


@dataclass(frozen=True, slots=True)
class Persona:
    id: str
    name: str
    content: str
    metadata: dict[str, Any] | None
    version: int
    created_at: datetime
    updated_at: datetime
    labels: tuple[Label, ...] = ()
    """Sorted by name."""


@dataclass(frozen=True, slots=True)
class NewPersona:
    name: str
    content: str
    metadata: dict[str, Any] | None


class Unset(enum.Enum):
    """Marks an input field that was not given (as opposed to given as null)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True)
class PersonaChanges:
    """Fields to replace; only the given ones (`metadata=None` clears the metadata)."""

    name: str | Unset = UNSET
    content: str | Unset = UNSET
    metadata: dict[str, Any] | Unset | None = UNSET

    def given(self) -> dict[str, Any]:
        """The fields given, by name (a metadata of None means: remove it)."""
        return {
            field: value for field in FIELDS if not isinstance(value := getattr(self, field), Unset)
        }


class Operation(enum.Enum):
    """What a revision records."""

    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    SET_METADATA = "set_metadata"
    UNSET_METADATA = "unset_metadata"
    ADD_TAGS = "add_tags"
    REMOVE_TAGS = "remove_tags"
    RESTORE = "restore"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Revision:
    """A persona as one change left it; never changed afterwards."""

    persona_id: str
    version: int
    name: str
    content: str
    metadata: dict[str, Any] | None
    operation: Operation
    actor: str | None
    created_at: datetime


_VERSION = re.compile(VERSION_PATTERN)
_VERSION_RULE: Final = f"must be a version: an integer from 1 to {VERSION_MAX}"


def validate_version(value: int, field: str) -> int:
    """The version rule, for both APIs: versions are 1 to VERSION_MAX (0 is bad input)."""
    if not 1 <= value <= VERSION_MAX:
        raise InvalidInput(field, _VERSION_RULE)
    return value


def parse_version(raw: str, field: str) -> int:
    """A version written as text."""
    if not _VERSION.fullmatch(raw):
        raise InvalidInput(field, _VERSION_RULE)
    return validate_version(int(raw), field)


def expected_version(value: int | None, field: str) -> int | None:
    """The version a conditional write requires, if any."""
    return None if value is None else validate_version(value, field)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def known_fields(body: dict[str, Any], what: str) -> dict[str, Any]:
    """`body` when it names only persona fields; `what` says what the body is."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field; {what} {', '.join(FIELDS)}")
    return body


def patch_changes(persona: Persona, patch: object) -> PersonaChanges:
    """The changes a merge patch of a persona makes, validated like any update."""
    if not isinstance(patch, dict):
        raise InvalidInput("body", "a merge patch must be a JSON object")
    known_fields(patch, "a patch may name")
    given: dict[str, Any] = {key: patch[key] for key in ("name", "content") if key in patch}
    if "metadata" in patch:
        given["metadata"] = merge_patch(persona.metadata, patch["metadata"])
    return persona_changes(**given)


def now() -> datetime:
    """The current time in UTC, at the millisecond precision MongoDB stores."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC, to the millisecond MongoDB keeps: 2025-01-15T14:30:00.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_OBJECT_ID = re.compile(ID_PATTERN)


def parse_id(raw: str, field: str = "id") -> str:
    """A persona id: 24 lowercase hexadecimal characters."""
    value = raw.strip().lower()
    if not _OBJECT_ID.fullmatch(value):
        raise InvalidInput(field, "not a valid persona id (24 hexadecimal characters)")
    return value


def validate_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    check_text(value, field)
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput(field, f"must be 1 to {NAME_MAX} characters after trimming")
    return name


def validate_content(value: object, field: str = "content") -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    check_text(value, field)
    if not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > CONTENT_MAX:
        raise InvalidInput(field, f"must be at most {CONTENT_MAX} characters")
    return value


def new_persona(name: object, content: object, metadata: object = None) -> NewPersona:
    return NewPersona(
        name=validate_name(name),
        content=validate_content(content),
        metadata=validate_metadata(metadata),
    )


def persona_changes(
    name: object = UNSET, content: object = UNSET, metadata: object = UNSET
) -> PersonaChanges:
    if name is UNSET and content is UNSET and metadata is UNSET:
        raise InvalidInput("input", "give at least one of name, content, metadata")
    return PersonaChanges(
        name=UNSET if name is UNSET else validate_name(name),
        content=UNSET if content is UNSET else validate_content(content),
        metadata=UNSET if metadata is UNSET else validate_metadata(metadata),
    )
