"""Load drivers: wrk (the real one) and a small httpx client for the harness's smoke test."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

JSON_HEADERS = (("Content-Type", "application/json"),)

WRK_MISSING = """\
wrk, the HTTP load generator the benchmark drives load with, is not installed.
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y wrk
  macOS:          brew install wrk
  elsewhere:      build it from source (wg/wrk on GitHub): make, then put wrk on PATH
`--driver python` runs the harness without wrk, for a smoke test only: its numbers
measure the Python client as much as the server."""


class DriverError(RuntimeError):
    """The load generator is missing or failed."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    """Path and query string."""
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    graphql: bool = False
    """A GraphQL answer: a 200 whose body has "errors" counts as an error too."""

    @classmethod
    def get(cls, target: str) -> Request:
        return cls("GET", target)

    def with_headers(self, headers: Sequence[tuple[str, str]]) -> Request:
        return dataclasses.replace(self, headers=(*self.headers, *headers)) if headers else self

    @classmethod
    def graphql_post(cls, target: str, payload: Any) -> Request:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls("POST", target, body, JSON_HEADERS, graphql=True)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One timed run against one endpoint."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int] = field(default_factory=dict)
    """Non-zero error counts by kind: status (>= 400), graphql (a 200 with "errors"),
    timeout, connect, read, write."""
    cpu_seconds: float | None = None
    """User + system CPU the server's process tree used over the run (set by the harness)."""
    database_cpu_seconds: float | None = None
    """The same for the database server, which every side shares."""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def cpu_ms(self) -> float | None:
        """The server's CPU milliseconds per completed request."""
        return per_request(self.cpu_seconds, self.requests)

    @property
    def database_cpu_ms(self) -> float | None:
        return per_request(self.database_cpu_seconds, self.requests)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_ms": self.cpu_ms, "database_cpu_ms": self.database_cpu_ms}


def per_request(seconds: float | None, requests: int) -> float | None:
    """Milliseconds per request, or None when either is unknown or there were no requests."""
    if seconds is None or requests <= 0:
        return None
    return round(seconds * 1000 / requests, 4)


class Driver(Protocol):
    name: str

    def describe(self) -> str: ...

    def measure(
        self, base_url: str, requests: Sequence[Request], duration: float, connections: int
    ) -> Measurement:
        """Send `requests` (cycled) for `duration` seconds over `connections` connections."""
        ...


# ---------------------------------------------------------------------------
# wrk


def lua_string(value: bytes) -> str:
    """A Lua string literal holding exactly `value` (decimal escapes for anything unusual)."""
    escaped = []
    for byte in value:
        char = chr(byte)
        if 32 <= byte < 127 and char not in '"\\':
            escaped.append(char)
        else:
            escaped.append(f"\\{byte:03d}")
    return '"' + "".join(escaped) + '"'


RESULT_MARK = "BENCH_RESULT "

LUA_RUNNING = """\
local prepared = {}
local position = 0
local threads = {}
graphql_errors = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for i, item in ipairs(items) do
    prepared[i] = wrk.format(item[1], item[2], item[3], item[4])
  end
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function done(summary, latency, requests)
  local errors = summary.errors
  local graphql = 0
  for _, thread in ipairs(threads) do
    graphql = graphql + thread:get("graphql_errors")
  end
  io.write(string.format(
    '%s{"requests":%.0f,"duration_us":%.0f,"p50_us":%.3f,"p99_us":%.3f,' ..
    '"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f,"graphql":%.0f}\\n',
    RESULT_MARK, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout, graphql))
end
"""

LUA_GRAPHQL_CHECK = """\
function response(status, headers, body)
  if status == 200 and string.find(body, '"errors":', 1, true) then
    graphql_errors = graphql_errors + 1
  end
end
"""


def lua_script(requests: Sequence[Request]) -> str:
    """A wrk script that cycles through `requests`, prepared once per thread."""
    lines = [f'RESULT_MARK = "{RESULT_MARK}"', "items = {"]
    for item in requests:
        headers = ", ".join(
            f"[{lua_string(name.encode())}] = {lua_string(value.encode())}"
            for name, value in item.headers
        )
        body = "nil" if item.body is None else lua_string(item.body)
        lines.append(
            f"  {{{lua_string(item.method.encode())}, {lua_string(item.target.encode())}, "
            f"{{{headers}}}, {body}}},"
        )
    lines.append("}")
    script = "\n".join(lines) + "\n" + LUA_RUNNING
    if any(item.graphql for item in requests):
        # Only then: with a response() function wrk hands every body to Lua.
        script += LUA_GRAPHQL_CHECK
    return script


def parse_wrk_output(output: str) -> Measurement:
    for line in output.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line.removeprefix(RESULT_MARK))
            break
    else:
        raise DriverError(f"wrk printed no result line:\n{output}")
    seconds = result["duration_us"] / 1e6
    requests = int(result["requests"])
    errors = {
        kind: int(result[kind])
        for kind in ("status", "graphql", "timeout", "connect", "read", "write")
        if result[kind]
    }
    return Measurement(
        requests=requests,
        seconds=seconds,
        rps=requests / seconds if seconds > 0 else 0.0,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=errors,
    )


class WrkDriver:
    name = "wrk"

    def __init__(self, threads: int = 2, timeout: float = 10.0, executable: str | None = None):
        found = executable or shutil.which("wrk")
        if found is None:
            raise DriverError(WRK_MISSING)
        self.executable = found
        self.threads = threads
        self.timeout = timeout

    def describe(self) -> str:
        completed = subprocess.run(  # noqa: S603 - fixed command, no shell
            [self.executable, "--version"], capture_output=True, text=True, check=False
        )
        first = (completed.stdout or completed.stderr).strip().splitlines()
        version = first[0].split(" Copyright")[0] if first else "wrk"
        return f"{version} (-t {self.threads}, --timeout {self.timeout:g}s)"

    def measure(
        self, base_url: str, requests: Sequence[Request], duration: float, connections: int
    ) -> Measurement:
        seconds = max(1, round(duration))
        with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
            script.write(lua_script(requests))
            script.flush()
            command = [
                self.executable,
                "-t",
                str(min(self.threads, connections)),
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--timeout",
                f"{max(1, round(self.timeout))}s",
                "-s",
                script.name,
                base_url + "/",
            ]
            completed = subprocess.run(  # noqa: S603 - fixed command, no shell
                command, capture_output=True, text=True, check=False, timeout=seconds + 60
            )
        if completed.returncode != 0:
            raise DriverError(
                f"wrk exited with code {completed.returncode}:\n{completed.stdout}"
                f"{completed.stderr}"
            )
        return parse_wrk_output(completed.stdout)


# ---------------------------------------------------------------------------
# The harness's own client: smoke tests, and exact request counts


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * percent // 100))
    return sorted_values[min(int(rank), len(sorted_values)) - 1]


@dataclass(slots=True)
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def _send(client: httpx.AsyncClient, request: Request, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        response = await client.request(
            request.method, request.target, content=request.body, headers=dict(request.headers)
        )
    except httpx.TimeoutException:
        tally.error("timeout")
        return
    except httpx.TransportError:
        tally.error("read")
        return
    tally.latencies.append(time.perf_counter() - started)
    if response.status_code >= 400:
        tally.error("status")
    elif request.graphql and b'"errors":' in response.content:
        tally.error("graphql")


async def drive(
    base_url: str,
    requests: Sequence[Request],
    connections: int,
    *,
    duration: float | None = None,
    count: int | None = None,
    request_timeout: float = 10.0,
) -> Measurement:
    """Send `requests` in turn from `connections` workers, until `duration` or `count` ends."""
    tally = Tally()
    issued = 0
    deadline = None if duration is None else time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    def next_request() -> Request | None:
        nonlocal issued
        if count is not None and issued >= count:
            return None
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        request = requests[issued % len(requests)]
        issued += 1
        return request

    async def worker(client: httpx.AsyncClient) -> None:
        while (request := next_request()) is not None:
            await _send(client, request, tally)

    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=request_timeout) as client,
        asyncio.TaskGroup() as group,
    ):
        for _ in range(connections):
            group.create_task(worker(client))
    seconds = time.perf_counter() - started
    ordered = sorted(tally.latencies)
    return Measurement(
        requests=len(ordered),
        seconds=seconds,
        rps=len(ordered) / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        errors=tally.errors,
    )


class PythonDriver:
    """httpx from asyncio: enough to prove the harness works, not to measure a server."""

    name = "python"

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def describe(self) -> str:
        return f"python (httpx {httpx.__version__}; smoke runs only, not for numbers)"

    def measure(
        self, base_url: str, requests: Sequence[Request], duration: float, connections: int
    ) -> Measurement:
        return asyncio.run(
            drive(base_url, requests, connections, duration=duration, request_timeout=self.timeout)
        )
