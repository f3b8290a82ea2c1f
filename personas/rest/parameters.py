"""The parameters REST operations take and the headers they answer with, each with its
shape as a type: the OpenAPI document generates their schemas from these, and the patterns
and limits are the constants of the rules they describe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import Field
from pydantic.config import JsonDict

from personas import domain
from personas.domain import Operator
from personas.rest import querystring
from personas.rest.handlers import DIGEST_TAG_PATTERN, ENTITY_TAG_PATTERN, IF_MATCH_PATTERN


@dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter: `key` names it among the document's components."""

    key: str
    name: str
    location: Literal["path", "query", "header"]
    shape: Any
    description: str | None = None
    required: bool = False
    exploded: bool = False
    """An object whose members are parameters of their own (`metadata.<path>=...`)."""


@dataclass(frozen=True, slots=True)
class Header:
    """A header a response carries: `key` names it among the document's components."""

    key: str
    name: str
    shape: Any
    description: str | None = None
    required: bool = False


def _listed(operators: frozenset[Operator]) -> str:
    return ", ".join(op.value for op in Operator if op in operators)


TEXT: Final[JsonDict] = {"type": ["string", "number", "boolean"]}
"""A query-string value: a string, or what reads as a number or boolean (it arrives as text
either way)."""

PERSONA_ID: Final = Parameter(
    "PersonaId",
    "id",
    "path",
    Annotated[str, Field(pattern=f"^{domain.ID_INPUT_PATTERN}$")],
    "24 hexadecimal characters (surrounding whitespace is ignored).",
    required=True,
)
REVISION_VERSION: Final = Parameter(
    "RevisionVersion",
    "version",
    "path",
    Annotated[int, Field(ge=1, le=domain.VERSION_MAX)],
    required=True,
)
IF_MATCH: Final = Parameter(
    "IfMatch",
    "If-Match",
    "header",
    Annotated[str, Field(pattern=f"^(?:{IF_MATCH_PATTERN})$")],
    "Write only if the persona is at this version: the ETag of a response about it "
    '(`"3"`), or `*` for any existing persona. Another version is a 412 and writes '
    'nothing; a list, a weak tag (`W/"3"`) or anything else is a 400.',
)
IDEMPOTENCY_KEY: Final = Parameter(
    "IdempotencyKey",
    "Idempotency-Key",
    "header",
    Annotated[
        str,
        Field(pattern=f'^(?:{domain.IDEMPOTENCY_KEY_PATTERN}|"{domain.IDEMPOTENCY_KEY_PATTERN}")$'),
    ],
    "Makes a retry safe: the same key with the same request answers what the first request "
    "answered and writes nothing again; with a different request it is a 422. Kept 24 hours, "
    'per tenant. Bare or quoted (`"<key>"`).',
)
LABEL: Final = Parameter(
    "Label",
    "label",
    "path",
    Annotated[str, Field(pattern=f"^{domain.LABEL_PATTERN}$")],
    "A release label, e.g. production; `latest` (read only) is the current version.",
    required=True,
)
RELEASE_LABEL: Final = Parameter(
    "ReleaseLabel",
    "label",
    "query",
    Annotated[str, Field(pattern=f"^{domain.LABEL_PATTERN}$")],
    "The label whose releases to list, e.g. production.",
    required=True,
)
LABEL_IF_MATCH: Final = Parameter(
    "LabelIfMatch",
    "If-Match",
    "header",
    Annotated[str, Field(pattern=f"^(?:{IF_MATCH_PATTERN})$")],
    'Move only if the label points at this version now (`"2"`); otherwise a 412 and nothing '
    "is written. `*` takes any.",
)
DIFF_FROM: Final = Parameter(
    "DiffFrom",
    "from",
    "query",
    Annotated[int, Field(ge=1, le=domain.VERSION_MAX)],
    "The older version.",
    required=True,
)
DIFF_TO: Final = Parameter(
    "DiffTo",
    "to",
    "query",
    Annotated[int, Field(ge=1, le=domain.VERSION_MAX)],
    "The newer version.",
    required=True,
)
LIMIT: Final = Parameter(
    "Limit",
    "limit",
    "query",
    Annotated[
        int, Field(ge=1, le=domain.PAGE_MAX, json_schema_extra={"default": domain.PAGE_DEFAULT})
    ],
)
CURSOR: Final = Parameter(
    "Cursor",
    "cursor",
    "query",
    str,
    "`next_cursor` of the previous page, with the same filters and sort.",
)
SEARCH: Final = Parameter(
    "Search",
    "q",
    "query",
    Annotated[str, Field(pattern=f"^{querystring.SEARCH_PATTERN}$")],
    "Case-insensitive substring of the name.",
)
SORT: Final = Parameter(
    "Sort",
    "sort",
    "query",
    Annotated[
        str,
        Field(
            pattern=f"^{querystring.SORT_PATTERN}$",
            examples=["metadata.deployment.last_tested,-created_at"],
        ),
    ],
    "Comma-separated: created_at, updated_at, name or metadata.<path>; a leading '-' sorts "
    f"descending; at most {domain.ORDER_KEYS_MAX} keys. Default -created_at.",
)
METADATA_FILTERS: Final = Parameter(
    "MetadataFilters",
    "metadata",
    "query",
    Annotated[
        dict[str, str],
        Field(
            max_length=domain.FILTERS_MAX,
            examples=[{"metadata.tags": "prod", "metadata.status": "approved"}],
            # A query string has no types: 1 and "1", true and "true" are the same text.
            json_schema_extra={
                "patternProperties": {
                    f"^{querystring.FILTER_PATTERN}$": TEXT,
                    f"^{querystring.EXISTS_FILTER_PATTERN}$": {
                        "enum": ["true", "false", True, False]
                    },
                    f"^{querystring.PREFIX_FILTER_PATTERN}$": {**TEXT, "minLength": 1},
                },
                "additionalProperties": False,
            },
        ),
    ],
    "`metadata.<path>=<value>` and `metadata.<path>[<op>]=<value>`, all ANDed; at most "
    f"{domain.FILTERS_MAX}. A value that reads as a number, true, false or null matches that "
    f"JSON value and the string. Operators: {_listed(frozenset(Operator))}; "
    f"{_listed(domain.LIST_OPERATORS)} take comma-separated lists; exists takes true or false; "
    f"{_listed(domain.RANGE_OPERATORS)} compare numbers as numbers; prefix takes a non-empty "
    "string.",
    exploded=True,
)
METADATA_PATH: Final = Parameter(
    "MetadataPath",
    "path",
    "query",
    Annotated[str, Field(pattern=f"^{domain.PATH_PATTERN}$")],
    "A path inside metadata, e.g. tags or deployment.environment.",
    required=True,
)
VALUES_LIMIT: Final = Parameter(
    "ValuesLimit",
    "limit",
    "query",
    Annotated[
        int,
        Field(ge=1, le=domain.FACETS_MAX, json_schema_extra={"default": domain.FACETS_DEFAULT}),
    ],
)

IF_NONE_MATCH: Final = Parameter(
    "IfNoneMatch",
    "If-None-Match",
    "header",
    str,
    "The ETag of an earlier answer (or `*`): while it is still the current one the answer is "
    "304 Not Modified, with the ETag and no body. Compared weakly (RFC 9110); a list of tags "
    "is read as a list.",
)
DIGEST_ETAG: Final = Header(
    "DigestETag",
    "ETag",
    Annotated[str, Field(pattern=f"^{DIGEST_TAG_PATTERN}$")],
    "A digest of the body as a strong entity tag: send it back in If-None-Match to be "
    "answered 304 while the answer is unchanged.",
    required=True,
)
ETAG: Final = Header(
    "ETag",
    "ETag",
    Annotated[str, Field(pattern=f"^{ENTITY_TAG_PATTERN}$")],
    'The persona\'s version as a strong entity tag, e.g. `"3"`: send it back in If-Match to '
    "write only that version.",
    required=True,
)
LOCATION: Final = Header("Location", "Location", str, "/v1/personas/{id}")
