"""Metadata rules: the JSON values users store, their keys, the paths into them, and tags."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import orjson

from personas.domain.errors import InvalidInput

METADATA_MAX_BYTES: Final = 64 * 1024
METADATA_MAX_DEPTH: Final = 20
KEY_MAX: Final = 256
PATH_MAX_SEGMENTS: Final = 16
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
TAG_MAX: Final = 100
TAGS_PER_CALL_MAX: Final = 100
PREFIX: Final = "metadata."
"""Stored fields of metadata paths start with this; the server adds it, never the caller."""
TAGS: Final = PREFIX + "tags"


def segment_pattern(excluded: str = "") -> str:
    """A metadata key or path segment as a regex: 1 to KEY_MAX characters, not starting with
    '$', without '.', NUL or any character of `excluded` (a regex class body)."""
    return rf"[^$.{excluded}\x00][^.{excluded}\x00]{{0,{KEY_MAX - 1}}}"


def path_pattern(segment: str) -> str:
    """A path of 1 to PATH_MAX_SEGMENTS `segment`s joined by '.'."""
    return rf"{segment}(?:\.{segment}){{0,{PATH_MAX_SEGMENTS - 1}}}"


KEY_PATTERN: Final = segment_pattern()
"""A metadata key, as `validate_metadata` takes it."""
PATH_PATTERN: Final = path_pattern(KEY_PATTERN)
"""A path inside metadata, as `validate_path` takes it (`deployment.environment`)."""


def validate_metadata(value: object, field: str = "metadata") -> dict[str, Any] | None:
    """Metadata: a JSON object (or null) within the published limits."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object or null")
    check_json(value, field, depth=1, keys=True)
    size = len(orjson.dumps(value))
    if size > METADATA_MAX_BYTES:
        raise InvalidInput(field, f"is {size} bytes encoded; at most {METADATA_MAX_BYTES} allowed")
    return value


def check_json(value: object, field: str, depth: int, keys: bool) -> None:
    """Walk a JSON value: types, integer range, nesting depth and (with `keys`) object keys
    as metadata keys; without, keys only must not start with '$'."""
    if depth > METADATA_MAX_DEPTH:
        raise InvalidInput(field, f"nesting deeper than {METADATA_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(field, "object keys must be strings")
            if keys:
                _check_key(key, field)
            elif key.startswith("$"):
                raise InvalidInput(field, f"key {key!r} must not start with '$'")
            check_json(item, f"{field}.{key}", depth + 1, keys)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{field}.{index}", depth + 1, keys)
    elif isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidInput(field, "integers must fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(field, "numbers must be finite")
    else:
        raise InvalidInput(field, f"{type(value).__name__} is not a JSON value")


def check_text(text: str, field: str) -> None:
    """Text must be valid Unicode: no lone surrogates (they cannot be stored as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "text must be valid Unicode (no lone surrogates)") from None


def _check_key(key: str, field: str) -> None:
    check_text(key, field)
    if not 1 <= len(key) <= KEY_MAX:
        raise InvalidInput(field, f"keys must be 1 to {KEY_MAX} characters")
    if key.startswith("$"):
        raise InvalidInput(field, f"key {key!r} must not start with '$'")
    if "." in key:
        raise InvalidInput(field, f"key {key!r} must not contain '.'")
    if "\0" in key:
        raise InvalidInput(field, "keys must not contain NUL")


def validate_value(value: object, field: str) -> object:
    """A user value to compare with: any JSON value without `$`-prefixed keys."""
    check_json(value, field, depth=1, keys=False)
    return value


def validate_path(path: object, field: str) -> str:
    """A user path inside metadata, e.g. `deployment.environment`: the stored field name."""
    if not isinstance(path, str):
        raise InvalidInput(field, "path must be a string")
    segments = path.split(".")
    if len(segments) > PATH_MAX_SEGMENTS:
        raise InvalidInput(field, f"path has more than {PATH_MAX_SEGMENTS} segments")
    for segment in segments:
        if not segment:
            raise InvalidInput(field, f"path {path!r} has an empty segment")
        if len(segment) > KEY_MAX:
            raise InvalidInput(field, f"path segments must be at most {KEY_MAX} characters")
        if segment.startswith("$"):
            raise InvalidInput(field, f"path segment {segment!r} must not start with '$'")
        if "\0" in segment:
            raise InvalidInput(field, "path must not contain NUL")
        if segment.isdigit() and not segment.isascii():
            raise InvalidInput(field, f"path segment {segment!r}: array positions are 0-9 digits")
        check_text(segment, field)
    return PREFIX + path


def metadata_assignment(path: object, value: object) -> tuple[str, Any]:
    """A value to store at a metadata path: the stored field and the checked value."""
    stored = validate_path(path, "path")
    depth = stored.count(".")
    check_json(value, "value", depth=depth + 1, keys=True)
    if len(orjson.dumps(value)) > METADATA_MAX_BYTES:
        raise InvalidInput("value", f"metadata may be at most {METADATA_MAX_BYTES} bytes encoded")
    return stored, value


def validate_tags(tags: Sequence[object], field: str = "tags") -> list[str]:
    """Tags for `metadata.tags`: 1..100 distinct strings of 1..100 characters, order kept."""
    if not tags:
        raise InvalidInput(field, "give at least one tag")
    if len(tags) > TAGS_PER_CALL_MAX:
        raise InvalidInput(field, f"at most {TAGS_PER_CALL_MAX} tags per call")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not 1 <= len(tag) <= TAG_MAX:
            raise InvalidInput(f"{field}.{index}", f"tags are strings of 1 to {TAG_MAX} characters")
        check_text(tag, f"{field}.{index}")
    return list(dict.fromkeys(tag for tag in tags if isinstance(tag, str)))


def tags_of(metadata: object) -> list[str]:
    """`Persona.tags`: the tags a `{path: "tags", value: "<tag>"}` filter finds the persona
    by — the strings of a `tags` list (in order, each once), a lone string, else none."""
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    if isinstance(tags, str):
        return [tags]
    if not isinstance(tags, list):
        return []
    return list(dict.fromkeys(tag for tag in tags if isinstance(tag, str)))
