"""Persona data, validation and metadata filters. Pure: no I/O, no driver, no GraphQL."""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

# ---------------------------------------------------------------------------
# Published limits (README: "Limits")

NAME_MAX: Final = 200
CONTENT_MAX: Final = 100_000
METADATA_MAX_BYTES: Final = 64 * 1024
METADATA_MAX_DEPTH: Final = 20
KEY_MAX: Final = 256
PATH_MAX_SEGMENTS: Final = 16
FILTERS_MAX: Final = 20
LIST_VALUES_MAX: Final = 100
PAGE_MAX: Final = 100
PAGE_DEFAULT: Final = 20
ORDER_KEYS_MAX: Final = 3
SEARCH_MAX: Final = 200
FACETS_MAX: Final = 100
FACETS_DEFAULT: Final = 50
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


# ---------------------------------------------------------------------------
# Errors


class DomainError(Exception):
    """An expected error, shown to the caller with its code."""

    code: str = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class InvalidInput(DomainError):
    code = "BAD_USER_INPUT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.errors = (FieldError(field, message),)


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    code = "CONFLICT"

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Unavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"


# ---------------------------------------------------------------------------
# Principals: who a store call is made for


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    scopes: frozenset[str]
    key_id: str | None = None


ALL_SCOPES: Final = frozenset({"read", "write", "admin"})
ANONYMOUS: Final = Principal(tenant="default", scopes=ALL_SCOPES)
NOBODY: Final = Principal(tenant="", scopes=frozenset())
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def validate_tenant(raw: str) -> str:
    if not _TENANT.fullmatch(raw):
        raise InvalidInput(
            "tenant", "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return raw


def parse_scopes(raw: str) -> frozenset[str]:
    scopes = frozenset(item.strip() for item in raw.split(",") if item.strip())
    unknown = sorted(scopes - ALL_SCOPES)
    if not scopes or unknown:
        raise InvalidInput("scopes", f"choose from {', '.join(sorted(ALL_SCOPES))}")
    return scopes


def require(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant: str
    scopes: frozenset[str]
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def principal(self) -> Principal:
        return Principal(tenant=self.tenant, scopes=self.scopes, key_id=self.id)


# ---------------------------------------------------------------------------
# Personas


@dataclass(frozen=True, slots=True)
class Persona:
    id: str
    name: str
    content: str
    metadata: dict[str, Any] | None
    version: int
    created_at: datetime
    updated_at: datetime


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

    def as_document(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if not isinstance(self.name, Unset):
            changes["name"] = self.name
        if not isinstance(self.content, Unset):
            changes["content"] = self.content
        if not isinstance(self.metadata, Unset):
            changes["metadata"] = self.metadata
        return changes


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


@dataclass(frozen=True, slots=True)
class PersonaHistory:
    """Everything stored about one persona: its tenant, its current state (None once
    deleted) and its revisions, oldest first. What a backup holds per persona."""

    tenant: str
    persona_id: str
    current: Persona | None
    revisions: tuple[Revision, ...]


class RestoreOutcome(enum.Enum):
    """What restoring a persona's history did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    NEWER = "newer"
    """The database holds a later version: nothing was written."""


@dataclass(frozen=True, slots=True)
class RevisionPage:
    items: list[Revision]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return encode_revision_cursor(self.items[-1]) if self.items else None


def _pack(payload: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _unpack(raw: str) -> Any:
    """The payload of a cursor; ValueError, TypeError or binascii.Error when it is none."""
    return orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def encode_revision_cursor(revision: Revision) -> str:
    return _pack(["revisions", revision.persona_id, revision.version])


def decode_revision_cursor(raw: str, persona_id: str, field: str = "after") -> int:
    """The version a revision cursor points at."""
    try:
        kind, cursor_id, version = orjson.loads(
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        )
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput(field, "not a valid cursor") from None
    if kind != "revisions" or cursor_id != persona_id or not isinstance(version, int):
        raise InvalidInput(field, "not a cursor of this persona's revisions")
    return version


def validate_version(value: int | None, field: str) -> int | None:
    if value is not None and value < 1:
        raise InvalidInput(field, "versions start at 1")
    return value


TAG_MAX: Final = 100
TAGS_PER_CALL_MAX: Final = 100


def validate_tags(tags: Sequence[object], field: str = "tags") -> list[str]:
    """Tags for `metadata.tags`: 1..100 distinct strings of 1..100 characters, order kept."""
    if not tags:
        raise InvalidInput(field, "give at least one tag")
    if len(tags) > TAGS_PER_CALL_MAX:
        raise InvalidInput(field, f"at most {TAGS_PER_CALL_MAX} tags per call")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not 1 <= len(tag) <= TAG_MAX:
            raise InvalidInput(f"{field}.{index}", f"tags are strings of 1 to {TAG_MAX} characters")
        _check_text(tag, f"{field}.{index}")
    return list(dict.fromkeys(tag for tag in tags if isinstance(tag, str)))


def metadata_assignment(path: object, value: object) -> tuple[str, Any]:
    """A value to store at a metadata path: the stored field and the checked value."""
    stored = validate_path(path, "path")
    depth = stored.count(".")
    _check_json(value, "value", depth=depth + 1, keys=True)
    if len(orjson.dumps(value)) > METADATA_MAX_BYTES:
        raise InvalidInput("value", f"metadata may be at most {METADATA_MAX_BYTES} bytes encoded")
    return stored, value


PATCHABLE: Final = ("name", "content", "metadata")


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


def patch_changes(persona: Persona, patch: object) -> PersonaChanges:
    """The changes a merge patch of a persona makes, validated like any update."""
    if not isinstance(patch, dict):
        raise InvalidInput("body", "a merge patch must be a JSON object")
    unknown = sorted(set(patch) - set(PATCHABLE))
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field; a patch may name {', '.join(PATCHABLE)}")
    given: dict[str, Any] = {}
    for key in ("name", "content"):
        if key in patch:
            given[key] = patch[key]
    if "metadata" in patch:
        given["metadata"] = merge_patch(persona.metadata, patch["metadata"])
    return persona_changes(**given)


def now() -> datetime:
    """The current time in UTC, at the millisecond precision MongoDB stores."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


_OBJECT_ID = re.compile(r"[0-9a-f]{24}")


def parse_id(raw: str, field: str = "id") -> str:
    """A persona id: 24 lowercase hexadecimal characters."""
    value = raw.strip().lower()
    if not _OBJECT_ID.fullmatch(value):
        raise InvalidInput(field, "not a valid persona id (24 hexadecimal characters)")
    return value


def validate_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    _check_text(value, field)
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput(field, f"must be 1 to {NAME_MAX} characters after trimming")
    return name


def validate_content(value: object, field: str = "content") -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    _check_text(value, field)
    if not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > CONTENT_MAX:
        raise InvalidInput(field, f"must be at most {CONTENT_MAX} characters")
    return value


def validate_metadata(value: object, field: str = "metadata") -> dict[str, Any] | None:
    """Metadata: a JSON object (or null) within the published limits."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object or null")
    _check_json(value, field, depth=1, keys=True)
    size = len(orjson.dumps(value))
    if size > METADATA_MAX_BYTES:
        raise InvalidInput(field, f"is {size} bytes encoded; at most {METADATA_MAX_BYTES} allowed")
    return value


def _check_json(value: object, field: str, depth: int, keys: bool) -> None:
    """Walk a JSON value: types, integer range, nesting depth and object keys."""
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
            _check_json(item, f"{field}.{key}", depth + 1, keys)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{field}.{index}", depth + 1, keys)
    elif isinstance(value, str):
        _check_text(value, field)
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


def _check_text(text: str, field: str) -> None:
    """Text must be valid Unicode: no lone surrogates (they cannot be stored as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "text must be valid Unicode (no lone surrogates)") from None


def _check_key(key: str, field: str) -> None:
    _check_text(key, field)
    if not 1 <= len(key) <= KEY_MAX:
        raise InvalidInput(field, f"keys must be 1 to {KEY_MAX} characters")
    if key.startswith("$"):
        raise InvalidInput(field, f"key {key!r} must not start with '$'")
    if "." in key:
        raise InvalidInput(field, f"key {key!r} must not contain '.'")
    if "\0" in key:
        raise InvalidInput(field, "keys must not contain NUL")


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


# ---------------------------------------------------------------------------
# Metadata paths and filters


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
        _check_text(segment, field)
    return "metadata." + path


class Operator(enum.Enum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NIN = "nin"
    ALL = "all"
    EXISTS = "exists"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    PREFIX = "prefix"


LIST_OPERATORS: Final = frozenset({Operator.IN, Operator.NIN, Operator.ALL})
RANGE_OPERATORS: Final = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """A filter as the caller gave it (not yet validated)."""

    path: object
    value: object = None
    op: Operator = Operator.EQ


@dataclass(frozen=True, slots=True)
class Condition:
    """A validated filter: `field` is the stored field (`metadata.<path>`)."""

    field: str
    op: Operator
    value: Any

    def to_mongo(self) -> dict[str, Any]:
        if self.op is Operator.PREFIX:
            return {self.field: {"$regex": "^" + re.escape(self.value)}}
        return {self.field: {"$" + self.op.value: self.value}}


def validate_value(value: object, field: str) -> object:
    """A user value to compare with: any JSON value without `$`-prefixed keys."""
    _check_json(value, field, depth=1, keys=False)
    return value


def condition(spec: FilterSpec, field: str) -> Condition:
    stored = validate_path(spec.path, field)
    value = spec.value
    op = spec.op
    if op in LIST_OPERATORS:
        if not isinstance(value, list) or not value:
            raise InvalidInput(field, f"{op.name} takes a non-empty list")
        if len(value) > LIST_VALUES_MAX:
            raise InvalidInput(field, f"{op.name} takes at most {LIST_VALUES_MAX} values")
    elif op is Operator.EXISTS:
        if value is None:
            value = True
        if not isinstance(value, bool):
            raise InvalidInput(field, "EXISTS takes true or false")
    elif op in RANGE_OPERATORS:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidInput(field, f"{op.name} takes a number or a string")
    elif op is Operator.PREFIX and (not isinstance(value, str) or not value):
        raise InvalidInput(field, "PREFIX takes a non-empty string")
    return Condition(stored, op, validate_value(value, f"{field}.value"))


def conditions(specs: Sequence[FilterSpec], field: str) -> tuple[Condition, ...]:
    return tuple(condition(spec, f"{field}.{index}") for index, spec in enumerate(specs))


def combine(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    return [item.to_mongo() for item in conditions]


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


HINTED_OPERATORS: Final = frozenset({Operator.ALL, Operator.PREFIX})
"""Conditions an index narrows but a simple query planner may not pair with it by itself."""


# ---------------------------------------------------------------------------
# Listing: filters, search, order and keyset cursors


class SortField(enum.Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"
    METADATA = "metadata"


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool


DEFAULT_ORDER: Final = (SortKey("created_at", descending=True),)


def sort_key(field_kind: SortField, path: object, descending: bool, field: str) -> SortKey:
    if field_kind is SortField.METADATA:
        if path is None:
            raise InvalidInput(field, "METADATA ordering needs a path")
        return SortKey(validate_path(path, f"{field}.path"), descending)
    if path is not None:
        raise InvalidInput(field, f"{field_kind.name} ordering takes no path")
    return SortKey(field_kind.value, descending)


@dataclass(frozen=True, slots=True)
class PersonaQuery:
    all_of: tuple[Condition, ...] = ()
    any_of: tuple[Condition, ...] = ()
    search: str | None = None
    order: tuple[SortKey, ...] = DEFAULT_ORDER

    def clauses(self) -> list[dict[str, Any]]:
        """The MongoDB conditions to AND (without tenant or cursor)."""
        clauses = combine(self.all_of)
        if self.any_of:
            clauses.append({"$or": combine(self.any_of)})
        if self.search:
            clauses.append({"name": {"$regex": re.escape(self.search), "$options": "i"}})
        return clauses

    def sort(self) -> list[tuple[str, int]]:
        keys = [(key.field, -1 if key.descending else 1) for key in self.order]
        keys.append(("_id", -1 if self.order[0].descending else 1))
        return keys

    @property
    def by_metadata(self) -> bool:
        """Ordered by a metadata path: sort values are computed per document."""
        return any(key.field.startswith("metadata.") for key in self.order)

    def hinted_field(self, indexed: Iterable[str]) -> str | None:
        """An indexed field to name to the planner: the first `ALL` or `PREFIX` condition on
        one. Other conditions are left to the planner, which indexes them itself."""
        available = set(indexed)
        for item in self.all_of:
            if item.field in available and item.op in HINTED_OPERATORS:
                return item.field
        return None

    def fingerprint(self) -> str:
        """Identifies the filter and order a cursor belongs to."""
        described = [
            [[c.field, c.op.value, c.value] for c in self.all_of],
            [[c.field, c.op.value, c.value] for c in self.any_of],
            self.search,
            [[key.field, key.descending] for key in self.order],
        ]
        digest = hashlib.sha256(orjson.dumps(described, option=orjson.OPT_SORT_KEYS))
        return digest.hexdigest()[:16]


def persona_query(
    all_of: Sequence[FilterSpec] = (),
    any_of: Sequence[FilterSpec] = (),
    search: str | None = None,
    order: Sequence[SortKey] = (),
    filter_field: str = "metadataFilter",
    any_field: str = "metadataFilterAny",
) -> PersonaQuery:
    if len(all_of) + len(any_of) > FILTERS_MAX:
        raise InvalidInput(filter_field, f"at most {FILTERS_MAX} filters are allowed")
    if len(order) > ORDER_KEYS_MAX:
        raise InvalidInput("orderBy", f"at most {ORDER_KEYS_MAX} sort keys are allowed")
    if search is not None:
        search = search.strip()
        _check_text(search, "search")
        if len(search) > SEARCH_MAX:
            raise InvalidInput("search", f"must be at most {SEARCH_MAX} characters")
    return PersonaQuery(
        all_of=conditions(all_of, filter_field),
        any_of=conditions(any_of, any_field),
        search=search or None,
        order=tuple(order) or DEFAULT_ORDER,
    )


def page_size(first: int | None, field: str = "first") -> int:
    if first is None:
        return PAGE_DEFAULT
    if not 1 <= first <= PAGE_MAX:
        raise InvalidInput(field, f"must be between 1 and {PAGE_MAX}")
    return first


def facet_size(first: int | None, field: str = "first") -> int:
    if first is None:
        return FACETS_DEFAULT
    if not 1 <= first <= FACETS_MAX:
        raise InvalidInput(field, f"must be between 1 and {FACETS_MAX}")
    return first


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after one persona in one listing: its sort values and id."""

    values: tuple[Any, ...]
    id: str


def encode_cursor(query: PersonaQuery, values: Sequence[Any], persona_id: str) -> str:
    """An opaque cursor: the listing's fingerprint, the sort values and the id of a persona."""
    encoded = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return _pack([query.fingerprint(), encoded, persona_id])


def decode_cursor(raw: str, query: PersonaQuery, field: str = "after") -> Cursor:
    try:
        fingerprint, values, persona_id = _unpack(raw)
        if not isinstance(values, list) or len(values) != len(query.order):
            raise ValueError
        decoded = tuple(
            _decode_value(key, value) for key, value in zip(query.order, values, strict=True)
        )
        persona_id = parse_id(persona_id, field)
    except (ValueError, TypeError, binascii.Error, InvalidInput):
        raise InvalidInput(field, "not a valid cursor") from None
    if fingerprint != query.fingerprint():
        raise InvalidInput(field, "this cursor belongs to a listing with another filter or order")
    return Cursor(decoded, persona_id)


def _decode_value(key: SortKey, value: Any) -> Any:
    if key.field in {"created_at", "updated_at"}:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment
    if key.field == "name" and not isinstance(value, str):
        raise ValueError("name must be a string")
    _check_json(value, "after", depth=1, keys=False)
    return value


def keyset_filter(sort: Sequence[tuple[str, int]], values: Sequence[Any]) -> dict[str, Any]:
    """Documents strictly after `values` in the order `sort` (the last key is unique)."""
    branches: list[dict[str, Any]] = []
    for index, (stored, direction) in enumerate(sort):
        branch: dict[str, Any] = {
            earlier: {"$eq": values[position]} for position, (earlier, _) in enumerate(sort[:index])
        }
        branch[stored] = {"$lt" if direction < 0 else "$gt": values[index]}
        branches.append(branch)
    return {"$or": branches}


def keyset_expression(sort: Sequence[tuple[str, int]], values: Sequence[Any]) -> dict[str, Any]:
    """`keyset_filter` for computed sort fields: compares across types in BSON order."""
    branches: list[dict[str, Any]] = []
    for index, (stored, direction) in enumerate(sort):
        terms: list[dict[str, Any]] = [
            {"$eq": ["$" + earlier, {"$literal": values[position]}]}
            for position, (earlier, _) in enumerate(sort[:index])
        ]
        terms.append(
            {"$lt" if direction < 0 else "$gt": ["$" + stored, {"$literal": values[index]}]}
        )
        branches.append({"$and": terms})
    return {"$expr": {"$or": branches}}


def sort_expression(key: SortKey) -> Any:
    """A document's sort value for `key`, as MongoDB orders it: an array sorts by its
    smallest element ascending and its largest descending; missing sorts as null."""
    if not key.field.startswith("metadata."):
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


# ---------------------------------------------------------------------------
# Facets


@dataclass(frozen=True, slots=True)
class ValueCount:
    value: Any
    count: int


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Persona]
    cursors: list[str]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def field_errors(error: InvalidInput) -> list[Mapping[str, str]]:
    return [{"field": item.field, "message": item.message} for item in error.errors]
