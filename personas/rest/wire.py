"""The JSON shapes the REST API takes and sends, typed once: handlers build them, and the
OpenAPI document's component schemas are generated from these types (by pydantic). Their
patterns and limits are the constants of the rules they describe.

Annotations are evaluated (no `from __future__ import annotations`), so that each shape
knows its required keys at run time as the document does."""

from datetime import datetime
from typing import Annotated, Any, Final, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypeAliasType, TypedDict

from personas import domain
from personas.domain import webhooks as hooks
from personas.domain.events import EventType

OPEN: Final = ConfigDict(regex_engine="python-re")
"""Shapes are only turned into JSON Schema, never used to validate: Python's regex engine
takes the patterns as the rules write them."""
CLOSED: Final = ConfigDict(regex_engine="python-re", extra="forbid")
"""A shape with no other members than those it names."""
CHANGE: Final = ConfigDict(
    regex_engine="python-re", extra="forbid", json_schema_extra={"minProperties": 1}
)
"""A change: at least one member."""

MetadataKey = TypeAliasType("MetadataKey", Annotated[str, Field(pattern=f"^{domain.KEY_PATTERN}$")])
MetadataValue = TypeAliasType(
    "MetadataValue",
    Annotated[
        "bool | float | str | list[MetadataValue] | dict[MetadataKey, MetadataValue] | None",
        Field(
            description=(
                "Any JSON value; object keys follow MetadataKey. Integers must fit in 64 bits "
                "(other numbers are stored as doubles)."
            )
        ),
    ],
)
Metadata = Annotated[
    dict[MetadataKey, MetadataValue] | None,
    Field(
        description=(
            f"Free-form JSON object, or null. Keys: 1 to {domain.KEY_MAX} characters, not "
            "starting with '$', without '.' or NUL. At most "
            f"{domain.METADATA_MAX_DEPTH} levels deep and {domain.METADATA_MAX_BYTES} bytes "
            "encoded; integers fit in 64 bits."
        ),
        examples=[{"tags": ["prod", "approved"], "version": "2.0.0", "status": "production"}],
    ),
]
MetadataPatch = Annotated[
    dict[MetadataKey, MetadataValue] | None,
    Field(
        description=(
            "A merge patch of the metadata object: each key given replaces that key (objects "
            "are merged the same way, recursively), null deletes it; null clears the metadata. "
            "The result follows the metadata rules."
        ),
        examples=[{"status": "approved", "deployment": {"region": "eu"}, "draft": None}],
    ),
]
Name = Annotated[
    str,
    Field(
        pattern=f"^{domain.NAME_PATTERN}$",
        description=f"1 to {domain.NAME_MAX} characters after trimming whitespace.",
        examples=["Support Agent v2"],
    ),
]
Content = Annotated[
    str,
    Field(
        pattern=domain.CONTENT_PATTERN,
        max_length=domain.CONTENT_MAX,
        description="The system prompt; not blank.",
        examples=["You are a helpful support agent..."],
    ),
]
PersonaId = Annotated[str, Field(pattern=f"^{domain.ID_PATTERN}$")]
Version = Annotated[int, Field(ge=1, le=domain.VERSION_MAX)]
Timestamp = Annotated[
    str, Field(description="ISO 8601, UTC.", json_schema_extra={"format": "date-time"})
]
NextCursor = Annotated[
    str | None,
    Field(description="Pass as `cursor` for the next page; null on the last page."),
]


@with_config(CLOSED)
class PersonaCreate(TypedDict):
    """A new persona."""

    name: Name
    content: Content
    metadata: NotRequired[Metadata]


@with_config(CHANGE)
class PersonaUpdate(TypedDict, total=False):
    """Only the fields given change; metadata replaces the whole object."""

    name: Name
    content: Content
    metadata: Metadata


@with_config(CHANGE)
class PersonaPatch(TypedDict, total=False):
    """A JSON merge patch (RFC 7396) of the persona: only the members given change."""

    name: Name
    content: Content
    metadata: MetadataPatch


@with_config(CLOSED)
class Persona(TypedDict):
    """A persona at its current version."""

    id: PersonaId
    name: str
    content: str
    metadata: dict[str, Any] | None
    version: Annotated[Version, Field(description="1 on create, +1 on every change.")]
    created_at: Timestamp
    updated_at: Timestamp


@with_config(CLOSED)
class Revision(TypedDict):
    """A persona as one change left it; never changed afterwards."""

    persona_id: PersonaId
    version: Version
    name: str
    content: str
    metadata: dict[str, Any] | None
    operation: Annotated[
        str,
        Field(
            description="The change that made this version.",
            json_schema_extra={"enum": [item.value for item in domain.Operation]},
        ),
    ]
    actor: Annotated[
        str | None,
        Field(description="Id of the API key that made the change; null if anonymous."),
    ]
    created_at: Timestamp


@with_config(CLOSED)
class PersonaList(TypedDict):
    """One page of personas."""

    data: list[Persona]
    next_cursor: NextCursor


@with_config(CLOSED)
class RevisionList(TypedDict):
    """One page of a persona's revisions, newest first."""

    data: list[Revision]
    next_cursor: NextCursor


@with_config(CLOSED)
class ValueCount(TypedDict):
    """How many personas have one value at a metadata path."""

    value: Annotated[Any, Field(description="A value found at the path.")]
    count: Annotated[int, Field(ge=1)]


@with_config(CLOSED)
class ValueCountList(TypedDict):
    """Values, most frequent first (arrays unwound)."""

    data: list[ValueCount]


@with_config(OPEN)
class FieldError(TypedDict):
    """A field of the request, and the rule it broke."""

    field: str
    message: str


@with_config(OPEN)
class Problem(TypedDict):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    current_version: NotRequired[
        Annotated[int, Field(description="With 412 (and 409): the persona's version now.")]
    ]
    errors: NotRequired[
        Annotated[
            list[FieldError],
            Field(description="With bad input: each field and the rule it broke."),
        ]
    ]


def persona_json(persona: domain.Persona) -> Persona:
    return {
        "id": persona.id,
        "name": persona.name,
        "content": persona.content,
        "metadata": persona.metadata,
        "version": persona.version,
        "created_at": domain.iso_timestamp(persona.created_at),
        "updated_at": domain.iso_timestamp(persona.updated_at),
    }


def revision_json(revision: domain.Revision) -> Revision:
    return {
        "persona_id": revision.persona_id,
        "version": revision.version,
        "name": revision.name,
        "content": revision.content,
        "metadata": revision.metadata,
        "operation": revision.operation.value,
        "actor": revision.actor,
        "created_at": domain.iso_timestamp(revision.created_at),
    }


LabelName = Annotated[str, Field(pattern=f"^{domain.LABEL_PATTERN}$")]


@with_config(CLOSED)
class Label(TypedDict):
    """A release label: a name pointing at one version of a persona."""

    name: LabelName
    version: Version
    set_by: Annotated[
        str | None, Field(description="Id of the API key that set it; null if anonymous.")
    ]
    set_at: Timestamp


@with_config(CLOSED)
class LabelList(TypedDict):
    data: list[Label]


@with_config(CLOSED)
class LabelEvent(TypedDict):
    """One move of a label: set anew (from_version null), moved, or removed (to_version
    null)."""

    label: LabelName
    from_version: Version | None
    to_version: Version | None
    actor: str | None
    at: Timestamp


@with_config(CLOSED)
class LabelEventList(TypedDict):
    data: list[LabelEvent]
    next_cursor: Annotated[
        str | None,
        Field(description="Pass as `cursor` for the next page; null on the last page."),
    ]


@with_config(CLOSED)
class LabelMove(TypedDict):
    """The version a label is to point at."""

    version: Version


PersonaDiff = TypedDict(
    "PersonaDiff",
    {
        "from": Version,
        "to": Version,
        "name": Annotated[
            list[str] | None, Field(description="[old, new], or null when unchanged.")
        ],
        "content_diff": Annotated[
            str | None, Field(description="A unified diff, or null when unchanged.")
        ],
        "metadata_patch": Annotated[
            list[dict[str, Any]],
            Field(description="An RFC 6902 JSON Patch from the old metadata to the new."),
        ],
    },
)
"""What changed between two versions (`from` is a keyword, hence this form)."""


def label_json(label: domain.Label) -> Label:
    return {
        "name": label.name,
        "version": label.version,
        "set_by": label.set_by,
        "set_at": domain.iso_timestamp(label.set_at),
    }


def label_event_json(event: domain.LabelEvent) -> LabelEvent:
    return {
        "label": event.label,
        "from_version": event.from_version,
        "to_version": event.to_version,
        "actor": event.actor,
        "at": domain.iso_timestamp(event.at),
    }


def diff_json(changes: domain.PersonaDiff) -> PersonaDiff:
    return {
        "from": changes.from_version,
        "to": changes.to_version,
        "name": None if changes.name is None else list(changes.name),
        "content_diff": changes.content_diff,
        "metadata_patch": changes.metadata_patch,
    }


EventTypeName = Annotated[
    str, Field(json_schema_extra={"enum": [kind.value for kind in EventType]})
]
OperatorName = Annotated[
    str, Field(json_schema_extra={"enum": [op.value for op in domain.Operator]})
]
MaybeTimestamp = Annotated[
    str | None, Field(description="ISO 8601, UTC.", json_schema_extra={"format": "date-time"})
]


@with_config(CLOSED)
class WebhookCondition(TypedDict):
    """A metadata filter of a webhook, in the listing's language."""

    path: Annotated[str, Field(description='A metadata path: "tags", "owner.team".')]
    op: NotRequired[OperatorName]
    value: NotRequired[
        Annotated[Any, Field(description="What op compares with (a list for in, nin, all).")]
    ]


@with_config(CLOSED)
class WebhookCreate(TypedDict):
    """A webhook for the events after now."""

    url: Annotated[
        str,
        Field(
            max_length=hooks.URL_MAX,
            description="https only (http and loopback addresses only with "
            "PERSONAS_WEBHOOK_ALLOW_LOOPBACK); private and link-local addresses are refused.",
        ),
    ]
    types: NotRequired[
        Annotated[
            list[EventTypeName],
            Field(min_length=1, description="The event types to deliver; all when left out."),
        ]
    ]
    metadata_filter: NotRequired[
        Annotated[
            list[WebhookCondition],
            Field(
                max_length=domain.FILTERS_MAX,
                description="Conditions the persona as the change left it must meet.",
            ),
        ]
    ]
    label: NotRequired[
        Annotated[
            str,
            Field(
                pattern=f"^{domain.LABEL_PATTERN}$",
                description="Only moves of this label (types must then include them).",
            ),
        ]
    ]


@with_config(CLOSED)
class Webhook(TypedDict):
    """An endpoint that receives signed deliveries of events."""

    id: PersonaId
    url: str
    types: list[EventTypeName]
    metadata_filter: list[WebhookCondition]
    label: str | None
    secret: Annotated[
        str | None,
        Field(
            description="whsec_ and the base64 signing key: only in the answers of creating "
            "the webhook and rotating its secret."
        ),
    ]
    created_at: Timestamp
    disabled_at: MaybeTimestamp
    disabled_reason: Annotated[
        str | None, Field(description="Why deliveries stopped; null while enabled.")
    ]


@with_config(CLOSED)
class WebhookList(TypedDict):
    data: list[Webhook]


@with_config(CLOSED)
class WebhookAttempt(TypedDict):
    at: Timestamp
    status_code: Annotated[int | None, Field(description="null when no answer came.")]
    duration_ms: float
    error: Annotated[str | None, Field(description="null when the endpoint answered 2xx.")]


@with_config(CLOSED)
class WebhookDelivery(TypedDict):
    """One event sent to one webhook, with its attempts (the last 50)."""

    id: Annotated[str, Field(description="Sent as webhook-id: msg_<id>.")]
    event_id: str
    type: EventTypeName
    status: Annotated[
        str, Field(json_schema_extra={"enum": [item.value for item in hooks.DeliveryStatus]})
    ]
    attempts: list[WebhookAttempt]
    next_attempt_at: MaybeTimestamp
    created_at: Timestamp
    delivered_at: MaybeTimestamp


@with_config(CLOSED)
class WebhookDeliveryList(TypedDict):
    data: list[WebhookDelivery]
    next_cursor: NextCursor


def _moment(moment: datetime | None) -> str | None:
    return None if moment is None else domain.iso_timestamp(moment)


def webhook_json(webhook: hooks.Webhook) -> Webhook:
    wanted = webhook.filter
    return {
        "id": webhook.id,
        "url": webhook.url,
        "types": [kind.value for kind in EventType if kind in wanted.types],
        "metadata_filter": [
            {"path": item.field.removeprefix("metadata."), "op": item.op.value, "value": item.value}
            for item in wanted.query.all_of
        ],
        "label": wanted.label,
        "secret": webhook.secret,
        "created_at": domain.iso_timestamp(webhook.created_at),
        "disabled_at": _moment(webhook.disabled_at),
        "disabled_reason": webhook.disabled_reason,
    }


def delivery_json(delivery: hooks.Delivery) -> WebhookDelivery:
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "type": delivery.type,
        "status": delivery.status.value,
        "attempts": [
            {
                "at": domain.iso_timestamp(item.at),
                "status_code": item.status_code,
                "duration_ms": item.duration_ms,
                "error": item.error,
            }
            for item in delivery.attempts
        ],
        "next_attempt_at": _moment(delivery.next_attempt_at),
        "created_at": domain.iso_timestamp(delivery.created_at),
        "delivered_at": _moment(delivery.delivered_at),
    }
