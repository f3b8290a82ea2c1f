"""Backups as JSON Lines: `personas export` writes every persona with its history,
`personas import` restores it, idempotently.

A backup is one JSON object per line, each with a `kind`:

- `header` (line 1): `{"kind": "header", "format": "personas-backup", "version": 1,
  "created_at": "...", "tenant": null | "acme"}`;
- `persona`: one persona, everything stored about it: `{"kind": "persona",
  "tenant": "acme", "id": "<24 hex>", "current": {...} | null, "revisions": [...],
  "label_history": [...]}`, `current` being null once the persona is deleted (it holds the
  persona's release `labels`), `revisions` and `label_history` oldest first;
- `event_log`: a tenant's event log: `{"kind": "event_log", "tenant": "acme", "latest":
  <the id of its latest event>}`, followed by its `event` lines;
- `event`: one event still kept in the log, as webhooks send it (`{"kind": "event",
  "tenant": "acme", "id": "17", "type": "persona.updated", "persona_id": ..., "version":
  ..., "actor": ..., "at": ..., "persona": {...revision...} | null, "label": {...} | null,
  "label_move": {"id", "label", "from_version", "to_version"} | null}`);
- `end` (last line): `{"kind": "end", "personas": <how many persona lines>, "events":
  <how many event lines>}`, so that a truncated file is noticed.

What later features store per persona joins its `persona` line as new members; what
stands apart gets a kind of its own. An importer refuses members and kinds it does not
know (the line is reported, never half-restored) and backups of a newer version.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Final

import orjson

from personas.domain import (
    DomainError,
    InvalidInput,
    Label,
    LabelEvent,
    Operation,
    Persona,
    PersonaHistory,
    RestoreOutcome,
    Revision,
    Unavailable,
    iso_timestamp,
    now,
    parse_id,
    settable_label,
    validate_content,
    validate_metadata,
    validate_name,
    validate_tenant,
)
from personas.domain.events import Event, EventType, parse_event_id
from personas.notifications.payloads import event_json
from personas.store import PersonaStore

FORMAT: Final = "personas-backup"
VERSION: Final = 3
"""Version 2 added release labels (`current.labels`) and `label_history`; version 3 the
event log (`event_log` and `event` records, `events` in the end record). Older files are
read as they are."""
HEADER_MEMBERS: Final = frozenset({"kind", "format", "version", "created_at", "tenant"})
PERSONA_MEMBERS: Final = frozenset({"kind", "tenant", "id", "current", "revisions"})
PERSONA_ADDED: Final = frozenset({"label_history"})
CURRENT_MEMBERS: Final = frozenset(
    {"name", "content", "metadata", "version", "created_at", "updated_at"}
)
CURRENT_ADDED: Final = frozenset({"labels"})
LABEL_MEMBERS: Final = frozenset({"name", "version", "set_by", "set_at"})
LABEL_EVENT_MEMBERS: Final = frozenset({"id", "label", "from_version", "to_version", "actor", "at"})
REVISION_MEMBERS: Final = frozenset(
    {"version", "name", "content", "metadata", "operation", "actor", "created_at"}
)
END_MEMBERS: Final = frozenset({"kind", "personas"})
END_ADDED: Final = frozenset({"events"})
EVENT_LOG_MEMBERS: Final = frozenset({"kind", "tenant", "latest"})
EVENT_MEMBERS: Final = frozenset(
    {"kind", "tenant", "id", "type", "persona_id", "version", "actor", "at", "persona"}
    | {"label", "label_move"}
)
MOVE_MEMBERS: Final = frozenset({"id", "label", "from_version", "to_version"})
EVENT_PAGE: Final = 500
LINE: Final = "line"
"""The field of an error about a whole line."""

Advance = Callable[[int], None]
"""Told how much more work is done (personas exported, bytes imported)."""


class BackupError(Exception):
    """A backup that cannot be read at all (no header, another format, a newer version)."""


# -- encoding -----------------------------------------------------------------


def header_line(tenant: str | None, created_at: datetime) -> bytes:
    record = {
        "kind": "header",
        "format": FORMAT,
        "version": VERSION,
        "created_at": iso_timestamp(created_at),
        "tenant": tenant,
    }
    return orjson.dumps(record) + b"\n"


def persona_line(history: PersonaHistory) -> bytes:
    current = history.current
    record = {
        "kind": "persona",
        "tenant": history.tenant,
        "id": history.persona_id,
        "current": None
        if current is None
        else {
            "name": current.name,
            "content": current.content,
            "metadata": current.metadata,
            "version": current.version,
            "created_at": iso_timestamp(current.created_at),
            "updated_at": iso_timestamp(current.updated_at),
            "labels": [
                {
                    "name": label.name,
                    "version": label.version,
                    "set_by": label.set_by,
                    "set_at": iso_timestamp(label.set_at),
                }
                for label in current.labels
            ],
        },
        "revisions": [
            {
                "version": revision.version,
                "name": revision.name,
                "content": revision.content,
                "metadata": revision.metadata,
                "operation": revision.operation.value,
                "actor": revision.actor,
                "created_at": iso_timestamp(revision.created_at),
            }
            for revision in history.revisions
        ],
        "label_history": [
            {
                "id": event.id,
                "label": event.label,
                "from_version": event.from_version,
                "to_version": event.to_version,
                "actor": event.actor,
                "at": iso_timestamp(event.at),
            }
            for event in history.label_events
        ],
    }
    return orjson.dumps(record) + b"\n"


def end_line(personas: int, events: int = 0) -> bytes:
    return orjson.dumps({"kind": "end", "personas": personas, "events": events}) + b"\n"


def event_log_line(tenant: str, latest: int) -> bytes:
    return orjson.dumps({"kind": "event_log", "tenant": tenant, "latest": latest}) + b"\n"


def event_line(tenant: str, event: Event) -> bytes:
    record = {"kind": "event", "tenant": tenant, **event_json(event)}
    return orjson.dumps(record) + b"\n"


# -- decoding (pure: every rule a line must keep) -------------------------------


def parse_line(raw: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(LINE, f"not valid JSON: {error}") from None
    if not isinstance(record, dict):
        raise InvalidInput(LINE, "must be a JSON object")
    return record


def check_header(record: Mapping[str, Any]) -> str | None:
    """The tenant a backup's header names (None: every tenant); BackupError if it is none."""
    if record.get("kind") != "header" or record.get("format") != FORMAT:
        raise BackupError(f"not a {FORMAT} file: the first line must be its header")
    version = record.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BackupError("the header's version must be a whole number, at least 1")
    if version > VERSION:
        raise BackupError(
            f"the backup is of version {version}; this program reads up to version {VERSION}"
        )
    _members(record, HEADER_MEMBERS, "header")
    tenant = record["tenant"]
    return None if tenant is None else validate_tenant(_string(tenant, "tenant"))


def decode_end(record: Mapping[str, Any]) -> tuple[int, int | None]:
    """How many personas and (from version 3) events the file says it holds."""
    _members(record, END_MEMBERS, "end", END_ADDED)
    events = record.get("events")
    return (
        _count(record["personas"], "personas", minimum=0),
        None if events is None else _count(events, "events", minimum=0),
    )


def decode_event_log(record: Mapping[str, Any]) -> tuple[str, int]:
    _members(record, EVENT_LOG_MEMBERS, "event_log")
    tenant = validate_tenant(_string(record["tenant"], "tenant"))
    return tenant, _count(record["latest"], "latest", minimum=0)


def decode_event(record: Mapping[str, Any]) -> tuple[str, Event]:
    """An event line: whose event, and the event; InvalidInput naming the member at fault."""
    _members(record, EVENT_MEMBERS, "event")
    tenant = validate_tenant(_string(record["tenant"], "tenant"))
    seq = parse_event_id(record["id"], "id")
    kinds = [kind.value for kind in EventType]
    if record["type"] not in kinds:
        raise InvalidInput("type", f"must be one of {', '.join(kinds)}")
    persona_id = _string(record["persona_id"], "persona_id")
    if parse_id(persona_id, "persona_id") != persona_id:
        raise InvalidInput("persona_id", "must be 24 lowercase hexadecimal characters")
    actor = record["actor"]
    at = _moment(record["at"], "at")
    persona = record["persona"]
    label = record["label"]
    move = record["label_move"]
    revision = None
    if persona is not None:
        item = _object(persona, "persona")
        if item.get("persona_id") != persona_id:
            raise InvalidInput("persona.persona_id", "must be the event's persona_id")
        revision = _revision(
            {k: v for k, v in item.items() if k != "persona_id"}, persona_id, "persona"
        )
    label_move = None
    if move is not None:
        raw_move = _object(move, "label_move")
        _members(raw_move, MOVE_MEMBERS, "label_move")
        label_move = _label_event(
            {**raw_move, "actor": actor, "at": record["at"]}, persona_id, "label_move"
        )
    return tenant, Event(
        seq=seq,
        type=EventType(record["type"]),
        persona_id=persona_id,
        version=_count(record["version"], "version", minimum=1),
        actor=None if actor is None else _string(actor, "actor"),
        at=at,
        persona=revision,
        label=None if label is None else _label(label, "label"),
        label_move=label_move,
    )


def decode_persona(record: Mapping[str, Any]) -> PersonaHistory:
    """A persona line as the history it restores; InvalidInput naming the member at fault."""
    _members(record, PERSONA_MEMBERS, "persona", PERSONA_ADDED)
    tenant = validate_tenant(_string(record["tenant"], "tenant"))
    raw_id = _string(record["id"], "id")
    persona_id = parse_id(raw_id)
    if persona_id != raw_id:
        raise InvalidInput("id", "must be 24 lowercase hexadecimal characters")
    raw_revisions = record["revisions"]
    if not isinstance(raw_revisions, list):
        raise InvalidInput("revisions", "must be a list")
    revisions = tuple(
        _revision(item, persona_id, f"revisions.{index}")
        for index, item in enumerate(raw_revisions)
    )
    current = None if record["current"] is None else _current(record["current"], persona_id)
    _check_history(current, revisions)
    raw_events = record.get("label_history", [])
    if not isinstance(raw_events, list):
        raise InvalidInput("label_history", "must be a list")
    events = tuple(
        _label_event(item, persona_id, f"label_history.{index}")
        for index, item in enumerate(raw_events)
    )
    if current is not None:
        versions = {revision.version for revision in revisions}
        for index, label in enumerate(current.labels):
            if label.version not in versions:
                raise InvalidInput(
                    f"current.labels.{index}.version", "must be a version among the revisions"
                )
    return PersonaHistory(tenant, persona_id, current, revisions, events)


def _check_history(current: Persona | None, revisions: tuple[Revision, ...]) -> None:
    for index, (earlier, later) in enumerate(itertools.pairwise(revisions)):
        if later.version != earlier.version + 1:
            raise InvalidInput(
                f"revisions.{index + 1}.version",
                f"must be {earlier.version + 1}: versions run on without a gap, oldest first",
            )
    deletions = [
        index for index, item in enumerate(revisions) if item.operation is Operation.DELETE
    ]
    if current is None:
        if not revisions or deletions != [len(revisions) - 1]:
            raise InvalidInput(
                "revisions", "a deleted persona's revisions must end with its only deletion"
            )
        return
    if deletions:
        raise InvalidInput(f"revisions.{deletions[0]}.operation", "the persona is not deleted")
    if revisions and revisions[-1].version != current.version:
        raise InvalidInput(
            "current.version",
            f"must be {revisions[-1].version}, the version of the last revision",
        )


def _current(raw: object, persona_id: str) -> Persona:
    item = _object(raw, "current")
    _members(item, CURRENT_MEMBERS, "current", CURRENT_ADDED)
    raw_labels = item.get("labels", [])
    if not isinstance(raw_labels, list):
        raise InvalidInput("current.labels", "must be a list")
    labels = tuple(
        _label(label, f"current.labels.{index}") for index, label in enumerate(raw_labels)
    )
    if len({label.name for label in labels}) != len(labels):
        raise InvalidInput("current.labels", "each label may be set once")
    return Persona(
        labels=tuple(sorted(labels, key=lambda label: label.name)),
        id=persona_id,
        name=_name(item["name"], "current.name"),
        content=validate_content(item["content"], "current.content"),
        metadata=validate_metadata(item["metadata"], "current.metadata"),
        version=_count(item["version"], "current.version", minimum=1),
        created_at=_moment(item["created_at"], "current.created_at"),
        updated_at=_moment(item["updated_at"], "current.updated_at"),
    )


def _revision(raw: object, persona_id: str, where: str) -> Revision:
    item = _object(raw, where)
    _members(item, REVISION_MEMBERS, where)
    operation = item["operation"]
    choices = [choice.value for choice in Operation]
    if operation not in choices:
        raise InvalidInput(f"{where}.operation", f"must be one of {', '.join(choices)}")
    actor = item["actor"]
    if actor is not None:
        actor = _string(actor, f"{where}.actor")
    return Revision(
        persona_id=persona_id,
        version=_count(item["version"], f"{where}.version", minimum=1),
        name=_name(item["name"], f"{where}.name"),
        content=validate_content(item["content"], f"{where}.content"),
        metadata=validate_metadata(item["metadata"], f"{where}.metadata"),
        operation=Operation(operation),
        actor=actor,
        created_at=_moment(item["created_at"], f"{where}.created_at"),
    )


def _label(raw: object, where: str) -> Label:
    item = _object(raw, where)
    _members(item, LABEL_MEMBERS, where)
    set_by = item["set_by"]
    return Label(
        name=settable_label(item["name"], f"{where}.name"),
        version=_count(item["version"], f"{where}.version", minimum=1),
        set_by=None if set_by is None else _string(set_by, f"{where}.set_by"),
        set_at=_moment(item["set_at"], f"{where}.set_at"),
    )


def _label_event(raw: object, persona_id: str, where: str) -> LabelEvent:
    item = _object(raw, where)
    _members(item, LABEL_EVENT_MEMBERS, where)
    event_id = _string(item["id"], f"{where}.id")
    if parse_id(event_id, f"{where}.id") != event_id:
        raise InvalidInput(f"{where}.id", "must be 24 lowercase hexadecimal characters")
    versions = [
        None if item[name] is None else _count(item[name], f"{where}.{name}", minimum=1)
        for name in ("from_version", "to_version")
    ]
    actor = item["actor"]
    return LabelEvent(
        id=event_id,
        persona_id=persona_id,
        label=settable_label(item["label"], f"{where}.label"),
        from_version=versions[0],
        to_version=versions[1],
        actor=None if actor is None else _string(actor, f"{where}.actor"),
        at=_moment(item["at"], f"{where}.at"),
    )


def _members(
    item: Mapping[str, Any],
    expected: frozenset[str],
    where: str,
    added: frozenset[str] = frozenset(),
) -> None:
    """`item` holds every member `expected` and nothing else but the `added` ones (members
    later versions of the format added, absent from older files)."""
    unknown = sorted(set(item) - expected - added)
    if unknown:
        raise InvalidInput(where, f"unknown member {unknown[0]!r}")
    missing = sorted(expected - set(item))
    if missing:
        raise InvalidInput(where, f"missing member {missing[0]!r}")


def _object(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput(where, "must be an object")
    return raw


def _string(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise InvalidInput(where, "must be a string")
    return raw


def _name(raw: object, where: str) -> str:
    name = validate_name(raw, where)
    if name != raw:
        raise InvalidInput(where, "must not start or end with white space")
    return name


def _count(raw: object, where: str, minimum: int) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < minimum:
        raise InvalidInput(where, f"must be a whole number, at least {minimum}")
    return raw


def _moment(raw: object, where: str) -> datetime:
    text = _string(raw, where)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(where, "must be an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise InvalidInput(where, "must name its time zone (e.g. Z)")
    return moment.astimezone(UTC)


# -- export ---------------------------------------------------------------------


async def export(
    store: PersonaStore,
    output: IO[bytes],
    tenant: str | None = None,
    advance: Advance | None = None,
) -> int:
    """Write the backup of `tenant` (default: every tenant) to `output`; how many personas."""
    output.write(header_line(tenant, now()))
    count = 0
    async for history in histories(store, tenant):
        output.write(persona_line(history))
        count += 1
        if advance is not None:
            advance(1)
    events = 0
    for name in [tenant] if tenant is not None else await store.events.tenants():
        output.write(event_log_line(name, await store.events.latest(name)))
        position = 0
        while page := await store.events.since(name, position, EVENT_PAGE):
            for event in page:
                output.write(event_line(name, event))
            events += len(page)
            position = page[-1].seq
    output.write(end_line(count, events))
    output.flush()
    return count


async def histories(store: PersonaStore, tenant: str | None) -> AsyncIterator[PersonaHistory]:
    for name in [tenant] if tenant is not None else await store.backups.tenants():
        async for history in store.backups.histories(name):
            yield history


async def count(store: PersonaStore, tenant: str | None) -> int:
    """How many personas an export of `tenant` (default: every tenant) writes."""
    names = [tenant] if tenant is not None else await store.backups.tenants()
    return sum([await store.backups.count_histories(name) for name in names])


# -- import ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    message: str


@dataclass
class ImportReport:
    outcomes: dict[RestoreOutcome, int] = field(
        default_factory=lambda: dict.fromkeys(RestoreOutcome, 0)
    )
    errors: list[LineError] = field(default_factory=list)
    problem: str | None = None
    """What was wrong with the file as a whole (truncated, the database gone...)."""

    @property
    def ok(self) -> bool:
        return not self.errors and self.problem is None

    @property
    def personas(self) -> int:
        return sum(self.outcomes.values())


async def restore(
    store: PersonaStore,
    lines: Iterable[bytes],
    strict: bool = False,
    advance: Advance | None = None,
) -> ImportReport:
    """Restore a backup, one persona per transaction.

    A bad line (or one whose persona disagrees with the stored one) is reported with
    its number and nothing of its persona is written; the others are restored, unless
    `strict`, which stops at the first. BackupError when the file is not a backup."""
    report = ImportReport()
    numbered = enumerate(lines, start=1)
    declared: int | None = None
    declared_events: int | None = None
    seen = 0
    events_seen = 0
    logs: dict[str, int] = {}
    """Each tenant's latest event id, from its event_log record."""
    header_read = False
    for number, raw in numbered:
        if advance is not None:
            advance(len(raw))
        if number == 1:
            try:
                check_header(parse_line(raw))
            except InvalidInput as error:
                raise BackupError(f"line 1: {_described(error)}") from None
            except BackupError as error:
                raise BackupError(f"line 1: {error}") from None
            header_read = True
            continue
        if not raw.strip():
            continue
        if declared is None:
            seen += 1  # a record meant to be a persona, whether it can be read or not
        try:
            if declared is not None:
                raise InvalidInput(LINE, "comes after the end record")
            record = parse_line(raw)
            kind = record.get("kind")
            if kind == "end":
                seen -= 1
                declared, declared_events = decode_end(record)
                continue
            if kind in ("event_log", "event"):
                seen -= 1
                events_seen += 1 if kind == "event" else 0
                await _restore_events(store, record, logs)
                continue
            if kind != "persona":
                raise InvalidInput("kind", f"unknown record kind {kind!r}")
            history = decode_persona(record)
            outcome = await store.backups.restore_history(history)
        except Unavailable as error:
            report.problem = (
                f"line {number}: {error.message}; stopped here (importing again is safe: "
                "what is already restored is left as it is)"
            )
            return report
        except DomainError as error:
            report.errors.append(LineError(number, _described(error)))
            if strict:
                return report
            continue
        report.outcomes[outcome] += 1
    if not header_read:
        raise BackupError("the file is empty: a backup starts with its header")
    if declared is None:
        report.problem = "the file ends without its end record: it may be incomplete"
    elif declared != seen:
        report.problem = f"the end record counts {declared} personas, but the file holds {seen}"
    elif declared_events is not None and declared_events != events_seen:
        report.problem = (
            f"the end record counts {declared_events} events, but the file holds {events_seen}"
        )
    return report


async def _restore_events(
    store: PersonaStore, record: Mapping[str, Any], logs: dict[str, int]
) -> None:
    """An event_log record (remembered, and the tenant's counter moved up) or an event
    record (put back unless the log has it)."""
    if record.get("kind") == "event_log":
        tenant, latest = decode_event_log(record)
        logs[tenant] = latest
        await store.events.restore(tenant, latest, [])
        return
    tenant, event = decode_event(record)
    if event.seq > logs.get(tenant, 0):
        raise InvalidInput("id", "comes after its tenant's latest event (or before its event_log)")
    await store.events.restore(tenant, logs[tenant], [event])


def _described(error: DomainError) -> str:
    """The message of an error; one about the whole line does not name a member."""
    if isinstance(error, InvalidInput) and error.field == LINE:
        return error.errors[0].message
    return error.message


# -- progress -----------------------------------------------------------------------


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, shown: bool) -> Iterator[Advance | None]:
    """A progress bar on stderr (rich), when `shown`; else nothing to tell."""
    if not shown:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=sys.stderr), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda amount: bar.advance(task, amount)
