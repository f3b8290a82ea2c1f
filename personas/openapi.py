"""The OpenAPI 3.1 document of the REST API, written by hand next to the routes it describes."""

from __future__ import annotations

from typing import Any, Final

from personas import domain

OPERATORS: Final = ("eq", "ne", "in", "nin", "all", "gt", "gte", "lt", "lte")
"""Operators that take any string (exists and prefix have their own rules)."""
TEXT: Final = ["string", "number", "boolean"]
"""What a query-string value may be written from: it arrives as text either way."""


def _segment(excluded: str) -> str:
    """A path segment as a regex: no leading '$', none of `excluded`, '.' or NUL."""
    rest = rf"[^.{excluded}\x00]"
    return rf"[^$.{excluded}\x00]{rest}{{0,{domain.KEY_MAX - 1}}}"


def _path(segment: str) -> str:
    return rf"{segment}(?:\.{segment}){{0,{domain.PATH_MAX_SEGMENTS - 1}}}"


SPACE: Final = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
r"""The characters str.strip() removes, as a regex class (engines disagree on `\s`)."""


def _stripped(longest: int) -> str:
    """A string of 1 to `longest` characters, neither first nor last being whitespace."""
    return rf"[^{SPACE}](?:[\s\S]{{0,{longest - 2}}}[^{SPACE}])?"


def _padded(inner: str) -> str:
    return rf"^[{SPACE}]*{inner}[{SPACE}]*$"


_KEY = _segment("")
_IDEMPOTENCY_KEY = domain.IDEMPOTENCY_KEY_PATTERN
_FILTER_SEGMENT = _segment(r"\[\]")
_SORT_SEGMENT = _segment(",")
_FILTER_PATH = rf"metadata\.{_path(_FILTER_SEGMENT)}"
_SORT_KEY = rf"-?(?:created_at|updated_at|name|metadata\.{_path(_SORT_SEGMENT)})"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _problems(*statuses: int) -> dict[str, Any]:
    """The error responses of an operation: those given, and those of every operation."""
    names = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        412: "PreconditionFailed",
        413: "ContentTooLarge",
        415: "UnsupportedMediaType",
        422: "UnprocessableContent",
        500: "InternalServerError",
        503: "ServiceUnavailable",
    }
    every = sorted({*statuses, 401, 403, 500, 503})
    return {str(status): _ref("responses", names[status]) for status in every}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("schemas", "Problem")}},
    }


def _schemas() -> dict[str, Any]:
    name = {
        "type": "string",
        "pattern": _padded(_stripped(domain.NAME_MAX)),
        "description": f"1 to {domain.NAME_MAX} characters after trimming whitespace.",
        "examples": ["Support Agent v2"],
    }
    content = {
        "type": "string",
        "pattern": f"[^{SPACE}]",
        "maxLength": domain.CONTENT_MAX,
        "description": "The system prompt; not blank.",
        "examples": ["You are a helpful support agent..."],
    }
    metadata = {
        "type": ["object", "null"],
        "description": (
            "Free-form JSON object, or null. Keys: 1 to "
            f"{domain.KEY_MAX} characters, not starting with '$', without '.' or NUL. At most "
            f"{domain.METADATA_MAX_DEPTH} levels deep and {domain.METADATA_MAX_BYTES} bytes "
            "encoded; integers fit in 64 bits."
        ),
        "propertyNames": _ref("schemas", "MetadataKey"),
        "additionalProperties": _ref("schemas", "MetadataValue"),
        "examples": [{"tags": ["prod", "approved"], "version": "2.0.0", "status": "production"}],
    }
    persona_fields = {"name": name, "content": content, "metadata": metadata}
    metadata_patch = {
        **metadata,
        "description": (
            "A merge patch of the metadata object: each key given replaces that key (objects "
            "are merged the same way, recursively), null deletes it; null clears the metadata. "
            "The result follows the metadata rules."
        ),
        "examples": [{"status": "approved", "deployment": {"region": "eu"}, "draft": None}],
    }
    timestamp = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."}
    version = {"type": "integer", "minimum": 1}
    return {
        "MetadataKey": {"type": "string", "pattern": f"^{_KEY}$"},
        "MetadataValue": {
            "description": (
                "Any JSON value; object keys follow MetadataKey. Integers must fit in 64 bits "
                "(other numbers are stored as doubles)."
            ),
            "type": ["null", "boolean", "number", "string", "array", "object"],
            "items": _ref("schemas", "MetadataValue"),
            "propertyNames": _ref("schemas", "MetadataKey"),
            "additionalProperties": _ref("schemas", "MetadataValue"),
        },
        "Persona": {
            "type": "object",
            "required": [
                "id",
                "name",
                "content",
                "metadata",
                "version",
                "created_at",
                "updated_at",
            ],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
                "name": {"type": "string"},
                "content": {"type": "string"},
                "metadata": {"type": ["object", "null"]},
                "version": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "1 on create, +1 on every change.",
                },
                "created_at": timestamp,
                "updated_at": timestamp,
            },
        },
        "PersonaCreate": {
            "type": "object",
            "required": ["name", "content"],
            "additionalProperties": False,
            "properties": persona_fields,
        },
        "PersonaPatch": {
            "type": "object",
            "description": (
                "A JSON merge patch (RFC 7396) of the persona: only the members given change."
            ),
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {"name": name, "content": content, "metadata": metadata_patch},
        },
        "Revision": {
            "type": "object",
            "description": "A persona as one change left it; never changed afterwards.",
            "required": [
                "persona_id",
                "version",
                "name",
                "content",
                "metadata",
                "operation",
                "actor",
                "created_at",
            ],
            "additionalProperties": False,
            "properties": {
                "persona_id": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
                "version": version,
                "name": {"type": "string"},
                "content": {"type": "string"},
                "metadata": {"type": ["object", "null"]},
                "operation": {
                    "enum": [item.value for item in domain.Operation],
                    "description": "The change that made this version.",
                },
                "actor": {
                    "type": ["string", "null"],
                    "description": "Id of the API key that made the change; null if anonymous.",
                },
                "created_at": timestamp,
            },
        },
        "RevisionList": {
            "type": "object",
            "required": ["data", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "data": {"type": "array", "items": _ref("schemas", "Revision")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last page.",
                },
            },
        },
        "PersonaUpdate": {
            "type": "object",
            "description": "Only the fields given change; metadata replaces the whole object.",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": persona_fields,
        },
        "PersonaList": {
            "type": "object",
            "required": ["data", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "data": {"type": "array", "items": _ref("schemas", "Persona")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last page.",
                },
            },
        },
        "ValueCountList": {
            "type": "object",
            "required": ["data"],
            "additionalProperties": False,
            "properties": {
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["value", "count"],
                        "additionalProperties": False,
                        "properties": {
                            "value": {"description": "A value found at the path."},
                            "count": {"type": "integer", "minimum": 1},
                        },
                    },
                }
            },
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "current_version": {
                    "type": "integer",
                    "description": "With 412 (and 409): the persona's version now.",
                },
                "errors": {
                    "type": "array",
                    "description": "With bad input: each field and the rule it broke.",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
    }


def _parameters() -> dict[str, Any]:
    stripped = _padded(f"(?:{_stripped(domain.SEARCH_MAX)})?")
    return {
        "PersonaId": {
            "name": "id",
            "in": "path",
            "required": True,
            "description": "24 hexadecimal characters (surrounding whitespace is ignored).",
            "schema": {"type": "string", "pattern": _padded("[0-9a-fA-F]{24}")},
        },
        "IfMatch": {
            "name": "If-Match",
            "in": "header",
            "description": (
                "Write only if the persona is at this version: the ETag of a response about it "
                '(`"3"`), or `*` for any existing persona. Another version is a 412 and writes '
                'nothing; a list, a weak tag (`W/"3"`) or anything else is a 400.'
            ),
            "schema": {"type": "string", "pattern": rf'^(?:\*|"{domain.VERSION_PATTERN}")$'},
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "description": (
                "Makes a retry safe: the same key with the same request answers what the first "
                "request answered and writes nothing again; with a different request it is a "
                '422. Kept 24 hours, per tenant. Bare or quoted (`"<key>"`).'
            ),
            "schema": {
                "type": "string",
                "pattern": f'^(?:{_IDEMPOTENCY_KEY}|"{_IDEMPOTENCY_KEY}")$',
            },
        },
        "RevisionVersion": {
            "name": "version",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": domain.VERSION_MAX},
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": domain.PAGE_MAX,
                "default": domain.PAGE_DEFAULT,
            },
        },
        "Cursor": {
            "name": "cursor",
            "in": "query",
            "description": "`next_cursor` of the previous page, with the same filters and sort.",
            "schema": {"type": "string"},
        },
        "Search": {
            "name": "q",
            "in": "query",
            "description": "Case-insensitive substring of the name.",
            "schema": {"type": "string", "pattern": stripped},
        },
        "Sort": {
            "name": "sort",
            "in": "query",
            "description": (
                "Comma-separated: created_at, updated_at, name or metadata.<path>; a leading "
                f"'-' sorts descending; at most {domain.ORDER_KEYS_MAX} keys. Default -created_at."
            ),
            "schema": {
                "type": "string",
                "pattern": rf"^{_SORT_KEY}(?:,{_SORT_KEY}){{0,{domain.ORDER_KEYS_MAX - 1}}}$",
                "examples": ["metadata.deployment.last_tested,-created_at"],
            },
        },
        "MetadataFilters": {
            "name": "metadata",
            "in": "query",
            "style": "form",
            "explode": True,
            "description": (
                "`metadata.<path>=<value>` and `metadata.<path>[<op>]=<value>`, all ANDed; "
                f"at most {domain.FILTERS_MAX}. A value that reads as a number, true, false or "
                "null matches that JSON value and the string. Operators: eq, ne, in, nin, all "
                "(lists comma-separated), exists (true or false), gt, gte, lt, lte (numbers "
                "compare as numbers), prefix."
            ),
            "schema": {
                "type": "object",
                "maxProperties": domain.FILTERS_MAX,
                # A query string has no types: 1 and "1", true and "true" are the same text.
                "patternProperties": {
                    rf"^{_FILTER_PATH}(?:\[(?:{'|'.join(OPERATORS)})\])?$": {"type": TEXT},
                    rf"^{_FILTER_PATH}\[exists\]$": {"enum": ["true", "false", True, False]},
                    rf"^{_FILTER_PATH}\[prefix\]$": {"type": TEXT, "minLength": 1},
                },
                "additionalProperties": False,
                "examples": [{"metadata.tags": "prod", "metadata.status": "approved"}],
            },
        },
        "MetadataPath": {
            "name": "path",
            "in": "query",
            "required": True,
            "description": "A path inside metadata, e.g. tags or deployment.environment.",
            "schema": {
                "type": "string",
                "pattern": rf"^{_path(_KEY)}$",
            },
        },
        "ValuesLimit": {
            "name": "limit",
            "in": "query",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": domain.FACETS_MAX,
                "default": domain.FACETS_DEFAULT,
            },
        },
    }


def _responses() -> dict[str, Any]:
    return {
        "BadRequest": _problem_response(
            "Bad input: malformed JSON, an unknown field or parameter, or a broken rule."
        ),
        "Unauthorized": {
            **_problem_response("Missing, malformed, unknown or revoked API key."),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        },
        "Forbidden": _problem_response("The API key lacks the scope this needs."),
        "NotFound": _problem_response("No persona with this id (or no such version of it)."),
        "Conflict": _problem_response("The persona changed while the change was applied."),
        "PreconditionFailed": _problem_response(
            "If-Match named another version than the persona's (`current_version`); nothing "
            "was written."
        ),
        "ContentTooLarge": _problem_response("The request body is over the size limit."),
        "UnprocessableContent": _problem_response(
            "The Idempotency-Key was already used for a different request; nothing was written."
        ),
        "UnsupportedMediaType": {
            **_problem_response(
                "The body is not sent as application/json (for PATCH: not as "
                "application/merge-patch+json)."
            ),
            "headers": {"Accept-Patch": {"schema": {"type": "string"}}},
        },
        "InternalServerError": _problem_response("Unexpected error (details are logged)."),
        "ServiceUnavailable": _problem_response("The database is unavailable; try again."),
    }


def _headers() -> dict[str, Any]:
    return {
        "ETag": {
            "description": (
                'The persona\'s version as a strong entity tag, e.g. `"3"`: send it back in '
                "If-Match to write only that version."
            ),
            "required": True,
            "schema": {"type": "string", "pattern": f'^"{domain.VERSION_PATTERN}"$'},
        }
    }


def document() -> dict[str, Any]:
    persona = _json(_ref("schemas", "Persona"))
    persona_id = _ref("parameters", "PersonaId")
    if_match = _ref("parameters", "IfMatch")
    idempotency_key = _ref("parameters", "IdempotencyKey")
    etag = {"ETag": _ref("headers", "ETag")}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Persona API",
            "version": "1",
            "description": (
                "LLM personas with free-form JSON metadata. Errors are application/problem+json "
                "(RFC 9457)."
            ),
        },
        "paths": {
            "/v1/personas": {
                "post": {
                    "operationId": "createPersona",
                    "summary": "Create a persona",
                    "parameters": [idempotency_key],
                    "requestBody": {
                        "required": True,
                        "content": _json(_ref("schemas", "PersonaCreate")),
                    },
                    "responses": {
                        "201": {
                            "description": "Created.",
                            "headers": {
                                "Location": {
                                    "description": "/v1/personas/{id}",
                                    "schema": {"type": "string"},
                                },
                                **etag,
                            },
                            "content": persona,
                        },
                        **_problems(400, 413, 415, 422),
                    },
                },
                "get": {
                    "operationId": "listPersonas",
                    "summary": "List personas matching metadata filters, newest first",
                    "parameters": [
                        _ref("parameters", "MetadataFilters"),
                        _ref("parameters", "Search"),
                        _ref("parameters", "Sort"),
                        _ref("parameters", "Limit"),
                        _ref("parameters", "Cursor"),
                    ],
                    "responses": {
                        "200": {
                            "description": "One page.",
                            "content": _json(_ref("schemas", "PersonaList")),
                        },
                        **_problems(400),
                    },
                },
            },
            "/v1/personas/{id}": {
                "parameters": [persona_id],
                "get": {
                    "operationId": "getPersona",
                    "summary": "Get a persona",
                    "responses": {
                        "200": {"description": "The persona.", "headers": etag, "content": persona},
                        **_problems(400, 404),
                    },
                },
                "put": {
                    "operationId": "updatePersona",
                    "summary": "Replace the given fields of a persona",
                    "parameters": [if_match, idempotency_key],
                    "requestBody": {
                        "required": True,
                        "content": _json(_ref("schemas", "PersonaUpdate")),
                    },
                    "responses": {
                        "200": {
                            "description": "The updated persona.",
                            "headers": etag,
                            "content": persona,
                        },
                        **_problems(400, 404, 412, 413, 415, 422),
                    },
                },
                "patch": {
                    "operationId": "patchPersona",
                    "summary": "Change what a JSON merge patch (RFC 7396) names",
                    "parameters": [if_match, idempotency_key],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/merge-patch+json": {
                                "schema": _ref("schemas", "PersonaPatch")
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The patched persona.",
                            "headers": etag,
                            "content": persona,
                        },
                        **_problems(400, 404, 409, 412, 413, 415, 422),
                    },
                },
                "delete": {
                    "operationId": "deletePersona",
                    "summary": "Delete a persona (its revisions stay)",
                    "parameters": [if_match, idempotency_key],
                    "responses": {
                        "204": {"description": "Deleted."},
                        **_problems(400, 404, 412, 422),
                    },
                },
            },
            "/v1/personas/{id}/revisions": {
                "parameters": [persona_id],
                "get": {
                    "operationId": "listPersonaRevisions",
                    "summary": (
                        "A persona's revisions, newest first, also after its deletion (none for "
                        "an unknown id)"
                    ),
                    "parameters": [_ref("parameters", "Limit"), _ref("parameters", "Cursor")],
                    "responses": {
                        "200": {
                            "description": "One page.",
                            "content": _json(_ref("schemas", "RevisionList")),
                        },
                        **_problems(400),
                    },
                },
            },
            "/v1/personas/{id}/revisions/{version}": {
                "parameters": [persona_id, _ref("parameters", "RevisionVersion")],
                "get": {
                    "operationId": "getPersonaRevision",
                    "summary": "One version of a persona, also after its deletion",
                    "responses": {
                        "200": {
                            "description": "The revision.",
                            "content": _json(_ref("schemas", "Revision")),
                        },
                        **_problems(400, 404),
                    },
                },
            },
            "/v1/metadata/values": {
                "get": {
                    "operationId": "metadataValues",
                    "summary": "How many personas have each value at a metadata path",
                    "parameters": [
                        _ref("parameters", "MetadataPath"),
                        _ref("parameters", "MetadataFilters"),
                        _ref("parameters", "ValuesLimit"),
                    ],
                    "responses": {
                        "200": {
                            "description": "Values, most frequent first (arrays unwound).",
                            "content": _json(_ref("schemas", "ValueCountList")),
                        },
                        **_problems(400),
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1.",
                            "content": _json({"type": "object"}),
                        }
                    },
                }
            },
        },
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "An API key from `personas keys create`. A server on loopback with no "
                        "key created yet also serves anonymous callers."
                    ),
                }
            },
            "schemas": _schemas(),
            "parameters": _parameters(),
            "responses": _responses(),
            "headers": _headers(),
        },
    }
