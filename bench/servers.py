"""The processes under test: the real server (`personas serve`) and the floor, both uvicorn."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from bench import floor
from bench.drivers import Request

ROOT = Path(__file__).resolve().parent.parent
APOLLO_DIR = ROOT / "bench" / "peers" / "apollo"
READY_TIMEOUT = 60.0
NPM_TIMEOUT = 600.0
STOP_GRACE = 10.0
_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerError(RuntimeError):
    """A server under test did not start or died."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Runs in the child before exec: if the harness dies, the kernel stops the server."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def server_environment(uri: str, db_name: str, port: int) -> dict[str, str]:
    """The harness's environment without any PERSONAS_* or MONGODB_URI, then production."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PERSONAS_") and name != "MONGODB_URI"
    }
    environment.update(
        {
            "MONGODB_URI": uri,
            "PERSONAS_DB_NAME": db_name,
            "PERSONAS_ENV": "production",
            "PERSONAS_WORKERS": "1",
            "PERSONAS_HOST": "127.0.0.1",
            "PERSONAS_PORT": str(port),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
    )
    return environment


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every request to this server (the subject's API key)."""

    def requests(self, requests: Iterable[Request]) -> list[Request]:
        """`requests` as sent to this server: with its headers."""
        return [request.with_headers(self.headers) for request in requests]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ServerError(
                f"the {self.name} server exited with code {self.process.returncode}; "
                f"its log is {self.log_path}:\n{log_tail(self.log_path)}"
            )

    def wait_ready(
        self,
        path: str,
        timeout: float = READY_TIMEOUT,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(self.base_url + path, headers=headers, timeout=2.0)
                if answer.status_code == 200:
                    return
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"the {self.name} server did not answer {path} within {timeout:g} s; "
                    f"its log is {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _launch(
    name: str, command: list[str], environment: Mapping[str, str], port: int, work_dir: Path
) -> Server:
    log_path = work_dir / f"{name}.log"
    with log_path.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - fixed command, no shell
            command,
            cwd=ROOT,
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    return Server(name=name, process=process, port=port, log_path=log_path)


CPROFILED_SERVE = """\
import cProfile, sys, time
from personas.cli import main
profile = cProfile.Profile(time.process_time)
profile.enable()
try:
    main(["serve", "--port", sys.argv[1]])
finally:
    profile.disable()
    profile.dump_stats(sys.argv[2])
"""
"""`personas serve` under cProfile, timed by the process's CPU clock; the stats are written
to argv[2] when the server stops."""


def start_subject(
    uri: str,
    db_name: str,
    work_dir: Path,
    token: str | None = None,
    cprofile_output: Path | None = None,
) -> Server:
    """`personas serve` in production settings, one worker, against the shared database
    (under cProfile when `cprofile_output` is given). With `token`, as in production: API
    keys required (`PERSONAS_AUTH=required`), every request sent with this one; without,
    anonymous loopback access."""
    port = free_port()
    command = [sys.executable, "-m", "personas", "serve", "--port", str(port)]
    if cprofile_output is not None:
        command = [sys.executable, "-c", CPROFILED_SERVE, str(port), str(cprofile_output)]
    environment = server_environment(uri, db_name, port)
    if token is None:
        return _launch("subject", command, environment, port, work_dir)
    environment["PERSONAS_AUTH"] = "required"
    subject = _launch("subject", command, environment, port, work_dir)
    subject.headers = (("Authorization", f"Bearer {token}"),)
    return subject


def start_floor(uri: str, db_name: str, work_dir: Path) -> Server:
    """The floor app under uvicorn with the subject's options, on its own port."""
    port = free_port()
    environment = server_environment(uri, db_name, port)
    environment[floor.PORT_VARIABLE] = str(port)
    command = [sys.executable, "-m", "bench.floor"]
    return _launch("floor", command, environment, port, work_dir)


class PeerUnavailable(RuntimeError):
    """The Apollo peer cannot run here (no Node.js or npm)."""


def node_version() -> str:
    """`node --version`, or PeerUnavailable when Node.js is not on the PATH."""
    node = shutil.which("node")
    if node is None:
        raise PeerUnavailable("node is not on the PATH (install Node.js 20.19 or newer)")
    completed = subprocess.run(  # noqa: S603 - fixed command, no shell
        [node, "--version"], capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() or completed.stderr.strip()


def apollo_installed() -> bool:
    """Whether node_modules holds what package-lock.json pins (npm writes its own copy)."""
    installed = APOLLO_DIR / "node_modules" / ".package-lock.json"
    lockfile = APOLLO_DIR / "package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lockfile.stat().st_mtime


def install_apollo(work_dir: Path) -> bool:
    """`npm ci` from the lockfile into bench/peers/apollo/node_modules, unless it is there
    already; True when it ran. No install scripts run (the peer needs none)."""
    if apollo_installed():
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise PeerUnavailable("npm is not on the PATH (it comes with Node.js)")
    log_path = work_dir / "apollo-npm-ci.log"
    with log_path.open("ab") as output:
        completed = subprocess.run(  # noqa: S603 - fixed command, no shell
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=APOLLO_DIR,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    if completed.returncode != 0:
        raise ServerError(
            f"npm ci in {APOLLO_DIR} exited with code {completed.returncode}; "
            f"its log is {log_path}:\n{log_tail(log_path)}"
        )
    return True


def apollo_versions() -> dict[str, str]:
    """The installed versions of the peer's direct dependencies."""
    manifest = orjson.loads((APOLLO_DIR / "package.json").read_bytes())
    versions: dict[str, str] = {}
    for name in manifest["dependencies"]:
        installed = APOLLO_DIR / "node_modules" / name / "package.json"
        try:
            versions[name] = orjson.loads(installed.read_bytes())["version"]
        except (OSError, orjson.JSONDecodeError, KeyError):
            versions[name] = "not installed"
    return versions


def start_apollo(uri: str, db_name: str, work_dir: Path) -> Server:
    """The Apollo peer (bench/peers/apollo/server.mjs) on Node, NODE_ENV=production."""
    node = shutil.which("node")
    if node is None:
        raise PeerUnavailable("node is not on the PATH")
    port = free_port()
    environment = server_environment(uri, db_name, port)
    environment.update(BENCH_APOLLO_PORT=str(port), NODE_ENV="production")
    command = [node, str(APOLLO_DIR / "server.mjs")]
    return _launch("apollo", command, environment, port, work_dir)


# ---------------------------------------------------------------------------
# /proc readings


def status_kib(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status, e.g. VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ServerError(f"/proc/{pid}/status has no {field}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _process_times(pid: int) -> tuple[int, float]:
    """A process's parent pid and its CPU seconds: its own user + system time and that of
    the children it has waited for (cutime, cstime)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = sum(int(value) for value in fields[11:15])
    return int(fields[1]), ticks / _CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by a process and all its live descendants
    (and the descendants that ended and were waited for)."""
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent, used = _process_times(int(entry.name))
            parents[int(entry.name)] = parent
            seconds[int(entry.name)] = used
    if pid not in seconds:
        raise ServerError(f"process {pid} is gone")
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += seconds.get(current, 0.0)
        pending.extend(children.get(current, ()))
    return total


def wait_idle(pids: Iterable[int], max_seconds: float, interval: float = 0.1) -> float:
    """Wait until the processes use under 5 % of a core (two intervals running).

    Requests still in flight when a load run stops keep the server and the database
    busy; the next measurement must not pay for them. Returns the seconds waited.
    """
    watched = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    started = time.monotonic()
    quiet = 0
    before = sum(cpu_seconds(pid) for pid in watched)
    while quiet < 2 and time.monotonic() - started < max_seconds:
        time.sleep(interval)
        after = sum(cpu_seconds(pid) for pid in watched)
        quiet = quiet + 1 if after - before <= 0.05 * interval else 0
        before = after
    return time.monotonic() - started
