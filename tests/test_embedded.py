"""The embedded database launcher, against the real `secantusd-py`."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from personas import embedded
from personas.embedded import EmbeddedDatabase, EmbeddedDatabaseError
from tests.conftest import is_running, lock_is_free, processes_using


def client(uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(uri, serverSelectionTimeoutMS=5000)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    with EmbeddedDatabase(tmp_path_factory.mktemp("running")) as database:
        yield database


def test_start_answers_ping_and_records_its_address(running: EmbeddedDatabase) -> None:
    assert running.uri is not None
    assert running.uri.startswith("mongodb://127.0.0.1:")
    with client(running.uri) as mongo:
        assert mongo.admin.command("ping")["ok"] == 1
    recorded = json.loads(running.address_path.read_text())
    assert recorded == {"uri": running.uri, "pid": running.pid, "state": "running"}
    assert running.storage_path.is_dir()


def test_a_second_server_on_the_same_data_directory_is_refused(
    running: EmbeddedDatabase,
) -> None:
    second = EmbeddedDatabase(running.data_dir)
    with pytest.raises(EmbeddedDatabaseError) as raised:
        second.start()
    message = str(raised.value)
    assert f"data directory {running.data_dir} is in use" in message
    assert f"pid {os.getpid()}" in message
    assert "--data-dir" in message
    assert second.pid is None
    assert running.uri is not None
    with client(running.uri) as mongo:
        assert mongo.admin.command("ping")["ok"] == 1


def test_stop_ends_the_process_and_frees_the_data_directory(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path)
    database.start()
    pid = database.pid
    assert pid is not None
    assert is_running(pid)
    assert not lock_is_free(tmp_path)

    database.stop()

    assert not is_running(pid)
    assert processes_using(tmp_path) == []
    assert database.uri is None
    assert not database.address_path.exists()
    assert lock_is_free(tmp_path)
    database.stop()  # stopping twice is harmless


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedDatabase(tmp_path) as first:
        assert first.uri is not None
        with client(first.uri) as mongo:
            mongo.restart_test.personas.insert_one({"name": "kept", "metadata": {"v": 1}})

    with EmbeddedDatabase(tmp_path) as second:
        assert second.uri is not None
        with client(second.uri) as mongo:
            found = mongo.restart_test.personas.find_one({"name": "kept"}, {"_id": 0})
    assert found == {"name": "kept", "metadata": {"v": 1}}


def test_a_failed_start_leaves_nothing_running(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("not a directory")  # the server cannot open its storage
    database = EmbeddedDatabase(tmp_path, start_timeout=20)
    with pytest.raises(EmbeddedDatabaseError, match="exited with code") as raised:
        database.start()
    assert str(database.log_path) in str(raised.value)
    assert database.pid is None
    assert processes_using(tmp_path) == []
    assert not database.address_path.exists()
    assert lock_is_free(tmp_path)


HUNG_SERVER = """\
import os, pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pathlib.Path(sys.argv[0]).with_suffix(".pid").write_text(str(os.getpid()))
time.sleep(60)
"""


def test_a_server_that_never_answers_times_out_and_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hung = tmp_path / "hung-server"
    hung.write_text(f"#!{sys.executable}\n{HUNG_SERVER}")
    hung.chmod(hung.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(embedded, "_server_command", lambda: str(hung))
    database = EmbeddedDatabase(tmp_path / "data", start_timeout=0.5, stop_grace=0.2)

    with (
        caplog.at_level(logging.WARNING, logger="personas.embedded"),
        pytest.raises(EmbeddedDatabaseError, match=r"did not answer ping within 0\.5 s"),
    ):
        database.start()

    pid = int(hung.with_suffix(".pid").read_text())
    assert not is_running(pid)
    assert "ignored SIGTERM" in caplog.text
    assert lock_is_free(tmp_path / "data")


def test_an_unusable_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    database = EmbeddedDatabase(tmp_path / "file" / "data")
    with pytest.raises(EmbeddedDatabaseError, match=r"cannot use the data directory .*/file/data"):
        database.start()
    assert database.pid is None


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_the_database_syncs_every_commit_unless_told_otherwise(
    running: EmbeddedDatabase, tmp_path: Path
) -> None:
    assert running.pid is not None
    assert "--sync-on-commit" in command_line(running.pid)
    with EmbeddedDatabase(tmp_path, sync_on_commit=False) as unsynced:
        assert unsynced.pid is not None
        assert "--sync-on-commit" not in command_line(unsynced.pid)


ORPHANING_SERVER = """\
import sys, time
from pathlib import Path
from personas.embedded import EmbeddedDatabase
database = EmbeddedDatabase(Path(sys.argv[1]))
database.start()
print(database.pid, flush=True)
time.sleep(120)
"""


def test_a_lock_still_held_by_the_database_of_a_dead_server_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_SERVER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    orphan = int(server.stdout.readline())
    try:
        os.kill(orphan, signal.SIGSTOP)  # frozen, it cannot act on the SIGTERM its parent's
        server.kill()  # death sends it: it keeps the data directory locked
        server.wait()
        assert is_running(orphan)
        assert not lock_is_free(tmp_path)

        with (
            caplog.at_level(logging.WARNING, logger="personas.embedded"),
            EmbeddedDatabase(tmp_path, stop_grace=1) as taken,
        ):
            assert taken.uri is not None
            with client(taken.uri) as mongo:
                assert mongo.admin.command("ping")["ok"] == 1

        assert f"still locked by its database (pid {orphan})" in caplog.text
        assert f"server (pid {server.pid}) is gone" in caplog.text
        assert not is_running(orphan)
    finally:
        if is_running(orphan):
            os.kill(orphan, signal.SIGKILL)


def test_a_lock_left_by_a_server_that_did_not_stop_cleanly_is_noted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "lock").write_text("999999999")
    with caplog.at_level(logging.WARNING, logger="personas.embedded"), EmbeddedDatabase(tmp_path):
        pass
    assert "(pid 999999999) did not stop cleanly" in caplog.text
    assert (tmp_path / "lock").read_text() == ""  # a clean stop leaves nothing to take over
