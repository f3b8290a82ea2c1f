"""Backups: export, then import into another database, on the real server."""

from __future__ import annotations

import io
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pymongo import MongoClient

from personas import backup, domain
from personas.domain import (
    ALL_SCOPES,
    InvalidInput,
    NewPersona,
    PersonaChanges,
    PersonaHistory,
    Principal,
    RestoreOutcome,
)
from personas.settings import Settings
from personas.store import PersonaStore
from tests.conftest import PERSONAS, START_TIMEOUT, Server, clean_environment, processes_using, run

ACME = Principal(tenant="acme", scopes=ALL_SCOPES)
GLOBEX = Principal(tenant="globex", scopes=ALL_SCOPES)


@pytest.fixture
async def target(settings: Settings) -> AsyncIterator[PersonaStore]:
    """An empty database on the same server."""
    assert settings.mongodb_uri is not None
    store = PersonaStore.connect(
        settings.mongodb_uri, f"target_{uuid.uuid4().hex[:16]}", settings.db_timeout_ms
    )
    await store.ensure_indexes()
    try:
        yield store
    finally:
        await store.drop_database()
        await store.close()


async def populate(store: PersonaStore, settings: Settings) -> None:
    """Personas of two tenants with every kind of change, a deleted one and a legacy one."""
    first = await store.create(
        ACME, NewPersona("Support", "You help.", {"tags": ["prod"], "rating": 4.5})
    )
    await store.update(ACME, first.id, PersonaChanges(content="You help kindly."))
    await store.patch(ACME, first.id, {"metadata": {"owner": {"team": "cx"}}})
    await store.add_tags(ACME, first.id, ["approved"])
    await store.set_metadata(ACME, first.id, "metadata.big", 2**40)
    await store.unset_metadata(ACME, first.id, "metadata.rating")
    await store.restore(ACME, first.id, 2)
    await store.labels.set(ACME, first.id, "staging", 3)
    await store.labels.set(ACME, first.id, "production", 3)
    await store.labels.set(ACME, first.id, "production", 2, from_version=3)
    plain = await store.create(ACME, NewPersona("Plain", "No metadata.", None))
    await store.update(ACME, plain.id, PersonaChanges(metadata=None))
    gone = await store.create(GLOBEX, NewPersona("Gone", "Soon deleted.", {"n": 1}))
    await store.remove_tags(GLOBEX, gone.id, ["none"])
    await store.labels.set(GLOBEX, gone.id, "beta", 1)
    await store.delete(GLOBEX, gone.id)
    await store.create(GLOBEX, NewPersona("Ünïcode ✓", "Ça va ? 日本語", {"k": [1, "2", None]}))
    assert settings.mongodb_uri is not None
    mongo: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri)
    with mongo:  # stored before versions existed
        mongo[settings.db_name].personas.insert_one(
            {
                "tenant": "acme",
                "name": "Legacy",
                "content": "From before revisions.",
                "version": 1,
                "created_at": datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
                "updated_at": datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
            }
        )


async def everything(store: PersonaStore) -> list[PersonaHistory]:
    return [item async for item in backup.histories(store, None)]


async def exported(store: PersonaStore, tenant: str | None = None) -> bytes:
    output = io.BytesIO()
    await backup.export(store, output, tenant)
    return output.getvalue()


async def test_export_then_import_gives_identical_personas_versions_and_revisions(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    await populate(store, settings)
    original = await everything(store)
    assert len(original) == 5
    assert {item.tenant for item in original} == {"acme", "globex"}
    assert next(item for item in original if item.current is None).revisions[-1].version == 3
    assert any(item.current and not item.revisions for item in original)  # the legacy one
    data = await exported(store)

    report = await backup.restore(target, data.splitlines(keepends=True))

    assert report.ok, report
    assert report.outcomes[RestoreOutcome.CREATED] == 5
    assert await everything(target) == original
    lines = data.splitlines()
    assert orjson.loads(lines[0])["kind"] == "header"
    events = sum(1 for line in lines if orjson.loads(line)["kind"] == "event")
    assert events > 0
    assert orjson.loads(lines[-1]) == {"kind": "end", "personas": 5, "events": events}
    restored = await target.get(ACME, original[0].persona_id)
    assert restored == original[0].current


async def test_the_event_log_comes_back_and_goes_on_after_it(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    await populate(store, settings)
    data = await exported(store)
    for _ in range(2):  # importing twice changes nothing
        report = await backup.restore(target, data.splitlines(keepends=True))
        assert report.ok, report
    for tenant in ("acme", "globex"):
        assert await target.events.since(tenant, 0, 1000) == await store.events.since(
            tenant, 0, 1000
        )
        assert await target.events.latest(tenant) == await store.events.latest(tenant)
    latest = await target.events.latest("acme")
    created = await target.create(ACME, domain.new_persona("After", "the restore"))
    (following,) = await target.events.since("acme", latest, 10)
    assert (following.seq, following.persona_id) == (latest + 1, created.id)
    assert (await exported(store, "globex")).count(b'"kind":"event_log"') == 1


async def test_labels_their_releases_and_their_history_come_back(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    await populate(store, settings)
    report = await backup.restore(target, (await exported(store)).splitlines(keepends=True))
    assert report.ok, report
    query = domain.persona_query()
    released = await target.labels.releases(ACME, "production", query, 10)
    assert [(item.name, item.version) for item in released.items] == [("Support", 2)]
    first = released.items[0].persona_id
    target_revision = await target.labels.target(ACME, first, "production")
    assert target_revision == await store.labels.target(ACME, first, "production")
    history = await target.labels.history(ACME, first, None, 10)
    assert history == await store.labels.history(ACME, first, None, 10)
    assert [event.to_version for event in history.items] == [2, 3, 3]
    assert (await target.labels.releases(GLOBEX, "beta", query, 10)).items == []


async def test_importing_twice_changes_nothing(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    await populate(store, settings)
    lines = (await exported(store)).splitlines(keepends=True)
    await backup.restore(target, lines)
    first = await everything(target)

    again = await backup.restore(target, lines)

    assert again.ok
    assert again.outcomes == {**dict.fromkeys(RestoreOutcome, 0), RestoreOutcome.UNCHANGED: 5}
    assert await everything(target) == first
    assert await exported(target) != b""
    assert (await exported(target)).splitlines()[1:] == (await exported(store)).splitlines()[1:]


async def test_a_bad_line_is_reported_by_number_and_nothing_of_its_persona_is_written(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    await populate(store, settings)
    lines = (await exported(store)).splitlines(keepends=True)
    gap = orjson.loads(lines[1])
    assert len(gap["revisions"]) >= 3
    del gap["revisions"][1]  # version 2 missing: the history has a gap
    lines[1] = orjson.dumps(gap) + b"\n"
    broken_id = orjson.loads(lines[3])["id"]
    lines[3] = lines[3][: len(lines[3]) // 2] + b"\n"  # cut in the middle

    report = await backup.restore(target, lines)

    assert [(error.line, error.message.split(":")[0]) for error in report.errors] == [
        (2, "revisions.1.version"),
        (4, "not valid JSON"),
    ]
    assert "not valid JSON" in report.errors[1].message
    assert report.problem is None
    assert report.outcomes[RestoreOutcome.CREATED] == 3
    written = {item.persona_id for item in await everything(target)}
    assert gap["id"] not in written
    assert broken_id not in written
    assert len(written) == 3


async def test_strict_stops_at_the_first_bad_line(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    await populate(store, settings)
    lines = (await exported(store)).splitlines(keepends=True)
    lines[2] = b'{"kind": "label", "name": "production"}\n'

    report = await backup.restore(target, lines, strict=True)

    assert [(error.line, error.message) for error in report.errors] == [
        (3, "kind: unknown record kind 'label'")
    ]
    assert len(await everything(target)) == 1  # the persona of line 2 only


async def test_a_persona_that_disagrees_with_the_stored_one_is_refused_whole(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    first = await store.create(ACME, NewPersona("One", "First.", None))
    await store.update(ACME, first.id, PersonaChanges(name="Two"))
    await store.update(ACME, first.id, PersonaChanges(name="Three"))
    lines = (await exported(store)).splitlines(keepends=True)
    altered = orjson.loads(lines[1])
    altered["revisions"] = altered["revisions"][:1]
    altered["revisions"][0]["content"] = "Another first."
    altered["current"] = {**altered["current"], "version": 1, "content": "Another first."}
    altered["current"]["name"] = "One"
    seeded = await backup.restore(target, [lines[0], orjson.dumps(altered), backup.end_line(1)])
    assert seeded.ok, seeded

    report = await backup.restore(target, lines)

    assert [error.line for error in report.errors] == [2]
    assert "version 1 differs from the one stored" in report.errors[0].message
    (kept,) = await everything(target)
    assert [revision.version for revision in kept.revisions] == [1]  # 2 and 3 not written
    assert kept.current is not None
    assert kept.current.content == "Another first."


async def test_a_database_holding_a_later_version_is_left_alone(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    persona = await store.create(ACME, NewPersona("One", "First.", None))
    old = (await exported(store)).splitlines(keepends=True)
    await store.update(ACME, persona.id, PersonaChanges(name="Two"))
    await backup.restore(target, (await exported(store)).splitlines(keepends=True))

    report = await backup.restore(target, old)

    assert report.outcomes[RestoreOutcome.NEWER] == 1
    (kept,) = await everything(target)
    assert kept.current is not None
    assert (kept.current.name, kept.current.version) == ("Two", 2)


async def test_an_older_backup_brings_a_persona_forward(
    store: PersonaStore, settings: Settings, target: PersonaStore
) -> None:
    persona = await store.create(ACME, NewPersona("One", "First.", None))
    await backup.restore(target, (await exported(store)).splitlines(keepends=True))
    await store.update(ACME, persona.id, PersonaChanges(name="Two"))
    await store.delete(ACME, persona.id)

    report = await backup.restore(target, (await exported(store)).splitlines(keepends=True))

    assert report.outcomes[RestoreOutcome.UPDATED] == 1
    assert await everything(target) == await everything(store)
    assert await target.get(ACME, persona.id) is None


async def test_one_tenant_only(store: PersonaStore, settings: Settings) -> None:
    await populate(store, settings)
    lines = (await exported(store, "globex")).splitlines()
    assert orjson.loads(lines[0])["tenant"] == "globex"
    assert {orjson.loads(line)["tenant"] for line in lines[1:-1]} == {"globex"}
    events = sum(1 for line in lines if orjson.loads(line)["kind"] == "event")
    assert orjson.loads(lines[-1]) == {"kind": "end", "personas": 2, "events": events}
    assert await backup.count(store, "globex") == 2
    assert await backup.count(store, None) == 5


async def test_a_truncated_file_is_noticed(store: PersonaStore, target: PersonaStore) -> None:
    await store.create(ACME, NewPersona("One", "First.", None))
    lines = (await exported(store)).splitlines(keepends=True)

    report = await backup.restore(target, lines[:-1])

    assert report.outcomes[RestoreOutcome.CREATED] == 1
    assert report.problem is not None
    assert "without its end record" in report.problem


@pytest.mark.parametrize(
    ("first", "message"),
    [
        (b'{"kind": "persona"}\n', "not a personas-backup file"),
        (b"not json\n", "line 1: not valid JSON"),
        (
            b'{"kind": "header", "format": "personas-backup", "version": 4, '
            b'"created_at": "2025-01-01T00:00:00.000Z", "tenant": null}\n',
            "of version 4",
        ),
    ],
)
async def test_a_file_that_is_not_a_backup_is_refused(
    target: PersonaStore, first: bytes, message: str
) -> None:
    with pytest.raises(backup.BackupError, match=message):
        await backup.restore(target, [first])
    assert await everything(target) == []


def persona_record(**changes: Any) -> dict[str, Any]:
    revision = {
        "version": 1,
        "name": "One",
        "content": "First.",
        "metadata": None,
        "operation": "create",
        "actor": None,
        "created_at": "2025-01-15T10:30:00.000Z",
    }
    record: dict[str, Any] = {
        "kind": "persona",
        "tenant": "acme",
        "id": "6790a3c2e4b0a1f2c3d4e5f6",
        "current": {
            "name": "One",
            "content": "First.",
            "metadata": None,
            "version": 1,
            "created_at": "2025-01-15T10:30:00.000Z",
            "updated_at": "2025-01-15T10:30:00.000Z",
        },
        "revisions": [revision],
    }
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"labels": []}, "persona"),
        ({"tenant": "a b"}, "tenant"),
        ({"id": "6790A3C2E4B0A1F2C3D4E5F6"}, "id"),
        ({"current": None}, "revisions"),
        ({"revisions": "none"}, "revisions"),
        ({"revisions": [{"version": 1}]}, "revisions.0"),
    ],
)
def test_decoding_names_the_member_at_fault(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        backup.decode_persona(persona_record(**changes))
    assert raised.value.field == field


def test_decoding_checks_the_history_fits_together() -> None:
    record = persona_record()
    record["current"]["version"] = 2
    with pytest.raises(InvalidInput, match=r"current.version: must be 1"):
        backup.decode_persona(record)
    record = persona_record()
    record["revisions"][0]["metadata"] = {"$where": 1}
    with pytest.raises(InvalidInput, match=r"revisions.0.metadata"):
        backup.decode_persona(record)
    record = persona_record()
    record["current"]["created_at"] = "2025-01-15T10:30:00"
    with pytest.raises(InvalidInput, match=r"current.created_at: must name its time zone"):
        backup.decode_persona(record)
    decoded = backup.decode_persona(persona_record())
    assert decoded.current is not None
    assert decoded.current.created_at == datetime(2025, 1, 15, 10, 30, tzinfo=UTC)


# -- the commands ---------------------------------------------------------------------


def test_the_commands_export_and_import_without_a_server(tmp_path: Path) -> None:
    source, destination = tmp_path / "source", tmp_path / "destination"
    created = run(
        "keys", "--data-dir", str(source), "create", "--tenant", "acme", "--scopes", "write"
    )
    assert created.returncode == 0, created.stderr
    seed = tmp_path / "seed.jsonl"
    seed.write_bytes(
        backup.header_line(None, datetime.now(UTC))
        + orjson.dumps(persona_record())
        + b"\n"
        + backup.end_line(1)
    )
    assert run("import", str(seed), "--data-dir", str(source)).returncode == 0
    file = tmp_path / "backup.jsonl"

    exported = run("export", "--output", str(file), "--data-dir", str(source))
    assert exported.returncode == 0, exported.stderr
    assert "exported 1 persona(s)" in exported.stderr
    assert "\x1b[" not in exported.stderr  # no progress bar without a terminal
    first = run("import", str(file), "--data-dir", str(destination))
    second = run("import", str(file), "--data-dir", str(destination))

    assert first.returncode == 0, first.stderr
    assert "1 created, 0 updated, 0 unchanged" in first.stderr
    assert second.returncode == 0, second.stderr
    assert "0 created, 0 updated, 1 unchanged" in second.stderr
    again = tmp_path / "again.jsonl"
    assert run("export", "-o", str(again), "--data-dir", str(destination)).returncode == 0
    assert again.read_bytes().splitlines()[1:] == file.read_bytes().splitlines()[1:]
    assert processes_using(source) == []
    assert processes_using(destination) == []


def test_a_bad_line_makes_the_import_command_fail_naming_it(tmp_path: Path) -> None:
    file = tmp_path / "backup.jsonl"
    bad = persona_record(id="6790a3c2e4b0a1f2c3d4e5f7")
    bad["revisions"][0]["operation"] = "teleport"
    file.write_bytes(
        backup.header_line(None, datetime.now(UTC))
        + orjson.dumps(persona_record())
        + b"\n"
        + orjson.dumps(bad)
        + b"\n"
        + backup.end_line(2)
    )

    result = run("import", str(file), "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 1
    assert f"{file}:3: revisions.0.operation: must be one of create" in result.stderr
    assert "1 created" in result.stderr
    assert "1 bad line(s)" in result.stderr
    missing = run("import", str(tmp_path / "missing.jsonl"), "--data-dir", str(tmp_path / "data"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_export_reaches_a_running_server(server: Server, tmp_path: Path) -> None:
    created = httpx.post(
        f"http://127.0.0.1:{server.port}/v1/personas",
        json={"name": "Live", "content": "Served.", "metadata": {"tags": ["prod"]}},
    )
    assert created.status_code == 201
    file = tmp_path / "live.jsonl"
    result = subprocess.run(
        [PERSONAS, "export", "-o", str(file), "--data-dir", str(server.data_dir)],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in file.read_bytes().splitlines()[1:-1]]
    (record,) = [item for item in records if item["kind"] == "persona"]
    assert record["id"] == created.json()["id"]
    assert record["tenant"] == "default"
    assert [revision["version"] for revision in record["revisions"]] == [1]
    assert not file.with_name("live.jsonl.partial").exists()
