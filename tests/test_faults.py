"""Faults of the real database under a real `personas serve`: SIGKILL, SIGSTOP, failed restarts.

Durations are generous bounds (the machine is shared), never speed assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    PERSONAS,
    Server,
    clean_environment,
    free_port,
    is_running,
    lock_is_free,
    processes_using,
)

SLACK = 5.0
"""Added to every bound: the machine is shared, and these are bounds, not speed tests."""


class Launched(Server):
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def record(self) -> dict[str, object]:
        found: dict[str, object] = json.loads((self.data_dir / "server.json").read_text())
        return found

    def wait_for_state(self, state: str, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if self.record().get("state") == state:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        raise AssertionError(f"the database never became {state}: {self.log()[-3000:]}")

    def wait_for_exit(self, within: float) -> int:
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the server did not exit within {within:g} s") from None


Launch = Callable[..., Launched]
"""Starts `personas serve` with the given environment variables, waits until it is ready."""


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    launched: list[Launched] = []

    def start(**variables: str) -> Launched:
        port = free_port()
        data_dir = tmp_path / f"data{len(launched)}"
        log_path = tmp_path / f"server{len(launched)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [PERSONAS, "serve", "--port", str(port), "--data-dir", str(data_dir)],
                env={**clean_environment(), **variables},
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )
        server = Launched(process, port, data_dir)
        server.log_path = log_path
        launched.append(server)
        server.wait_until_ready()
        return server

    yield start
    for server in launched:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        for pid in processes_using(server.data_dir):
            os.kill(pid, signal.SIGKILL)


def url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def versions(http: httpx.Client, server: Server, persona_id: str) -> list[int]:
    response = http.get(url(server, f"/v1/personas/{persona_id}/revisions"), params={"limit": 100})
    assert response.status_code == 200, response.text
    return [revision["version"] for revision in response.json()["data"]]


def test_no_acknowledged_write_is_lost_when_the_database_is_killed(launch: Launch) -> None:
    server: Launched = launch(
        PERSONAS_DB_TIMEOUT_MS="3000", PERSONAS_EMBEDDED_RESTART_BACKOFF="0.2"
    )
    first_database = server.database_pid()
    acknowledged: dict[str, int] = {}
    statuses: list[int] = []
    durations: list[float] = []
    stop_at = time.monotonic() + 6.0

    async def writer(number: int) -> None:
        async with httpx.AsyncClient(base_url=url(server, ""), timeout=30) as http:
            count = 0
            while time.monotonic() < stop_at:
                count += 1
                started = time.monotonic()
                created = await http.post(
                    "/v1/personas",
                    json={"name": f"writer {number} #{count}", "content": "Durable."},
                )
                durations.append(time.monotonic() - started)
                statuses.append(created.status_code)
                if created.status_code != 201:
                    continue
                persona_id = created.json()["id"]
                acknowledged[persona_id] = 1
                started = time.monotonic()
                updated = await http.put(
                    f"/v1/personas/{persona_id}", json={"content": f"Durable, {count}."}
                )
                durations.append(time.monotonic() - started)
                statuses.append(updated.status_code)
                if updated.status_code == 200:
                    acknowledged[persona_id] = updated.json()["version"]

    async def load() -> None:
        writers = [asyncio.create_task(writer(number)) for number in range(6)]
        await asyncio.sleep(2.0)
        os.kill(first_database, signal.SIGKILL)
        await asyncio.gather(*writers)

    asyncio.run(load())

    assert set(statuses) <= {200, 201, 503}, sorted(set(statuses))
    assert max(durations) < 3.0 + 1.0 + SLACK
    assert "was killed by SIGKILL" in server.log()
    server.wait_for_state("running", within=30)
    assert server.database_pid() != first_database
    server.wait_until_ready()
    assert len(acknowledged) > 20
    with httpx.Client(timeout=30) as http:
        for persona_id, version in acknowledged.items():
            stored = http.get(url(server, f"/v1/personas/{persona_id}"))
            assert stored.status_code == 200, (persona_id, stored.text)
            assert stored.json()["version"] >= version
            current = stored.json()["version"]
            assert versions(http, server, persona_id) == list(range(current, 0, -1))
    code, _ = server.stop()
    assert code == 0


def test_a_killed_database_is_restarted_and_given_up_on_after_failed_restarts(
    launch: Launch,
) -> None:
    server: Launched = launch(
        PERSONAS_DB_TIMEOUT_MS="1000",
        PERSONAS_EMBEDDED_RESTART_BACKOFF="2",
        PERSONAS_EMBEDDED_RESTARTS="2",
    )
    first_database = server.database_pid()

    os.kill(first_database, signal.SIGKILL)
    server.wait_for_state("restarting", within=2 + SLACK)

    started = time.monotonic()
    listing = httpx.get(url(server, "/v1/personas"), timeout=30)
    assert time.monotonic() - started < 1.0 + 1.0 + SLACK
    assert listing.status_code == 503
    assert listing.headers["retry-after"] == "1"
    assert listing.headers["content-type"] == "application/problem+json"
    query = httpx.post(url(server, "/graphql"), json={"query": "{ personas { totalCount } }"})
    assert query.status_code == 503
    assert query.headers["retry-after"] == "1"
    assert query.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert httpx.get(url(server, "/readyz")).status_code == 503
    assert httpx.get(url(server, "/healthz")).status_code == 200

    server.wait_for_state("running", within=30)
    server.wait_until_ready()
    second_database = server.database_pid()
    assert second_database != first_database
    created = httpx.post(url(server, "/v1/personas"), json={"name": "After", "content": "Back."})
    assert created.status_code == 201

    os.kill(second_database, signal.SIGKILL)
    server.wait_for_state("restarting", within=2 + SLACK)
    storage = server.data_dir / "db"
    storage.rename(server.data_dir / "db-moved")
    storage.write_text("the database cannot open its storage any more")

    code = server.wait_for_exit(within=2 * 2 + 2 * 30 + 10 + SLACK)

    assert code == 1
    log = server.log()
    assert "giving up on the embedded database" in log
    assert "PERSONAS_EMBEDDED_RESTARTS=2" in log
    assert processes_using(server.data_dir) == []
    assert lock_is_free(server.data_dir)


def in_flight(server: Server, count: int) -> tuple[list[threading.Thread], list[object]]:
    """`count` requests sent from threads; their responses (or errors) land in the list."""
    results: list[object] = []

    def send(number: int) -> None:
        try:
            results.append(
                httpx.post(
                    url(server, "/v1/personas"),
                    json={"name": f"in flight {number}", "content": "Waiting."},
                    timeout=60,
                )
            )
        except httpx.HTTPError as error:
            results.append(error)

    threads = [threading.Thread(target=send, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def test_sigterm_with_the_database_dead_stops_within_the_bound(launch: Launch) -> None:
    server: Launched = launch(
        PERSONAS_DB_TIMEOUT_MS="1000",
        PERSONAS_EMBEDDED_RESTART_BACKOFF="30",  # it stays dead
        PERSONAS_SHUTDOWN_TIMEOUT="4",
    )
    database = server.database_pid()
    os.kill(database, signal.SIGKILL)
    server.wait_for_state("restarting", within=2 + SLACK)
    with httpx.Client(timeout=30) as http:
        assert http.get(url(server, "/v1/personas")).status_code == 503

    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.wait_for_exit(within=4 + SLACK)

    assert time.monotonic() - started < 4 + SLACK
    assert code == 0, server.log()[-3000:]
    assert processes_using(server.data_dir) == []
    assert lock_is_free(server.data_dir)
    assert not (server.data_dir / "server.json").exists()


def test_sigterm_with_the_database_hanging_stops_within_the_bound(launch: Launch) -> None:
    server: Launched = launch(PERSONAS_DB_TIMEOUT_MS="2000", PERSONAS_SHUTDOWN_TIMEOUT="4")
    database = server.database_pid()
    os.kill(database, signal.SIGSTOP)  # alive, accepting connections, never answering
    try:
        threads, results = in_flight(server, 4)
        time.sleep(0.5)

        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.wait_for_exit(within=4 + SLACK)

        assert time.monotonic() - started < 4 + SLACK
        assert code == 0, server.log()[-3000:]
        for thread in threads:
            thread.join(10)
        responses = [result for result in results if isinstance(result, httpx.Response)]
        assert len(responses) == 4, results
        assert {response.status_code for response in responses} == {503}
        assert all(response.headers.get("connection") == "close" for response in responses)
        assert all(response.headers["retry-after"] == "1" for response in responses)
        assert not is_running(database)
        assert processes_using(server.data_dir) == []
        assert lock_is_free(server.data_dir)
    finally:
        if is_running(database):
            os.kill(database, signal.SIGKILL)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "(gone)"


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def test_with_workers_every_worker_follows_the_database_and_shutdown_leaves_no_child(
    launch: Launch,
) -> None:
    server = launch(
        PERSONAS_WORKERS="2",
        PERSONAS_DB_TIMEOUT_MS="1000",
        PERSONAS_EMBEDDED_RESTART_BACKOFF="2",
        PERSONAS_SHUTDOWN_TIMEOUT="4",
    )
    children = children_of(server.process.pid)
    assert len(children) >= 3  # two workers and the database
    first = server.database_pid()
    os.kill(first, signal.SIGKILL)
    server.wait_for_state("restarting", within=2 + SLACK)
    with httpx.Client(timeout=30) as http:  # new connections: the workers take turns
        refused = [http.get(url(server, "/v1/personas"), headers={"connection": "close"})]
        refused += [http.get(url(server, "/v1/personas"), headers={"connection": "close"})]
    assert [response.status_code for response in refused] == [503, 503]

    server.wait_for_state("running", within=30)
    server.wait_until_ready()
    with httpx.Client(timeout=30) as http:
        for number in range(6):
            created = http.post(
                url(server, "/v1/personas"),
                json={"name": f"after {number}", "content": "Back."},
                headers={"connection": "close"},
            )
            assert created.status_code == 201, created.text

    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.wait_for_exit(within=4 + SLACK)

    assert time.monotonic() - started < 4 + SLACK
    assert code == 0, server.log()[-3000:]
    deadline = time.monotonic() + SLACK  # multiprocessing's helper leaves once it sees EOF
    while (left := [pid for pid in children if is_running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], [command_line(pid) for pid in left]
    assert processes_using(server.data_dir) == []
    assert lock_is_free(server.data_dir)
