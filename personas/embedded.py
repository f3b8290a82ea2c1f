"""The embedded database: a `secantusd-py` child process with its data in the data directory."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from personas.availability import RECORD_NAME, RUNNING
from personas.store import wait_until_ready

log = logging.getLogger("personas.embedded")

SERVER_COMMAND = "secantusd-py"
STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1
_CONFIG_TEXT = """\
# SecantusDB settings for the Persona API's embedded database.
# `personas serve` passes --host, --port, --storage-path and --log-level itself;
# other [server]/[storage] settings (e.g. cache size) may be set here.
# This file also keeps secantusd from reading ./secantusd.toml or ~/.secantus/.
"""


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database could not be started."""


def _server_command() -> str:
    beside_python = Path(sys.executable).with_name(SERVER_COMMAND)
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(SERVER_COMMAND)
    if found is None:
        raise EmbeddedDatabaseError(
            f"{SERVER_COMMAND} was not found: install the project (make install) "
            "or set MONGODB_URI to use an external MongoDB"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts_connections(port: int) -> bool:
    """Cheaper than a driver ping while the server is still starting."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
    except OSError:
        return False
    return True


def _dies_with_this_process(thread_outlives_child: bool = False) -> Callable[[], None] | None:
    """A pre-exec hook asking the kernel to SIGTERM the child when we die, if we can.

    The kernel ties this to the thread that forks, so it is only safe from the
    main thread, or from a thread that lives as long as the child (the supervisor's):
    from any other, the database would stop when that thread ends.
    """
    if not thread_outlives_child and threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # we died before the request took effect
            os._exit(1)

    return hook


class EmbeddedDatabase:
    """Starts, owns and stops one embedded database server for a data directory.

    A lock file in the data directory makes sure only one server uses it: both this
    process and the database process hold it, so it stays taken until both are gone.
    The address of the running server is recorded in `server.json` beside it.
    Start it from the main thread, so that the database stops if this process dies.
    """

    def __init__(
        self,
        data_dir: Path,
        start_timeout: float = 30.0,
        stop_grace: float = STOP_GRACE_SECONDS,
        sync_on_commit: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.sync_on_commit = sync_on_commit
        self.uri: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._port: int | None = None
        self._interrupted = threading.Event()

    @property
    def storage_path(self) -> Path:
        return self.data_dir / "db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "secantusd.log"

    @property
    def address_path(self) -> Path:
        return self.data_dir / RECORD_NAME

    @property
    def config_path(self) -> Path:
        return self.data_dir / "secantusd.toml"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "lock"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def exit_code(self) -> int | None:
        """The server's exit status once it has exited (negative: killed by that signal)."""
        process = self._process
        return None if process is None else process.poll()

    def start(self) -> str:
        """Start the server and wait until it answers ping; returns its URI."""
        self._interrupted.clear()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
        except OSError as error:
            raise EmbeddedDatabaseError(
                f"cannot use the data directory {self.data_dir}: {error.strerror or error}"
            ) from None
        try:
            return self._launch(_free_port())
        except OSError as error:
            self.stop()
            raise EmbeddedDatabaseError(f"cannot start the embedded database: {error}") from None
        except BaseException:
            self.stop()
            raise

    def restart(self) -> str:
        """Start the server again after it exited: same data, same port (clients keep their
        URI), the data directory kept locked throughout. Call it from the thread that
        supervises the server, which must live as long as the server does."""
        assert self._lock is not None, "start() first"
        assert self._port is not None, "start() first"
        self._discard()
        try:
            return self._launch(self._port, thread_outlives_child=True)
        except OSError as error:
            self._discard()
            raise EmbeddedDatabaseError(f"cannot start the embedded database: {error}") from None
        except BaseException:
            self._discard()
            raise

    def interrupt(self) -> None:
        """Make a start or restart in progress give up (from another thread)."""
        self._interrupted.set()

    def record(self, state: str) -> None:
        """Write the server's address, pid and state (running, restarting, failed) to
        `server.json`, where the API's workers and the `personas` commands read them."""
        if self.uri is None:
            return
        record = {"uri": self.uri, "pid": self.pid, "state": state}
        temporary = self.address_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        temporary.replace(self.address_path)

    def _acquire_lock(self) -> None:
        lock = self.lock_path.open("a+")
        taken_over = False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            try:
                self._take_over(lock, holder)
            except BaseException:
                lock.close()
                raise
            taken_over = True
        lock.seek(0)
        previous = lock.read().strip()
        if previous and previous != str(os.getpid()) and not taken_over:
            log.warning(
                "the previous server on %s (pid %s) did not stop cleanly; taking over "
                "its data directory",
                self.data_dir,
                previous,
            )
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock
        with contextlib.suppress(FileNotFoundError):
            self.address_path.unlink()  # left behind by a server that was killed

    def _take_over(self, lock: IO[str], holder: str) -> None:
        """Take the lock from database servers of this directory whose API server is gone;
        refuse while that API server runs, or when anything else holds the lock."""
        refusal = EmbeddedDatabaseError(
            f"the data directory {self.data_dir} is in use by another Persona API "
            f"server (pid {holder or 'unknown'}) or its database; stop it or choose another "
            "--data-dir (PERSONAS_DATA_DIR)"
        )
        if holder.isdigit() and _is_running(int(holder)):
            raise refusal
        holders = [pid for pid in _processes_holding(self.lock_path) if pid != os.getpid()]
        if not holders or not all(self._is_own_database(pid) for pid in holders):
            raise refusal
        log.warning(
            "the data directory %s is still locked by its database (pid %s) although its "
            "server (pid %s) is gone; stopping that database and taking the directory over",
            self.data_dir,
            ", ".join(map(str, holders)),
            holder or "unknown",
        )
        for pid in holders:
            _stop_pid(pid, self.stop_grace)
        deadline = time.monotonic() + self.stop_grace
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise refusal from None
                time.sleep(0.05)

    def _is_own_database(self, pid: int) -> bool:
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return any(argument.endswith(SERVER_COMMAND.encode()) for argument in arguments) and (
            str(self.storage_path).encode() in arguments
        )

    def _launch(self, port: int, thread_outlives_child: bool = False) -> str:
        assert self._lock is not None
        if not self.config_path.exists():
            self.config_path.write_text(_CONFIG_TEXT)
        self._port = port
        command = [
            _server_command(),
            "--config",
            str(self.config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(self.storage_path),
            "--log-level",
            "WARNING",
            *(["--sync-on-commit"] if self.sync_on_commit else []),
        ]
        with self.log_path.open("ab") as output:
            self._process = subprocess.Popen(  # noqa: S603 - fixed command, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(self._lock.fileno(),),
                preexec_fn=_dies_with_this_process(thread_outlives_child),
            )
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        deadline = time.monotonic() + self.start_timeout
        while not (
            _accepts_connections(port)
            and wait_until_ready(uri, timeout=min(1.0, self.start_timeout))
        ):
            if self._process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"the embedded database exited with code {self._process.returncode}; "
                    f"its log is {self.log_path}:\n{self._log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise EmbeddedDatabaseError(
                    f"the embedded database did not answer ping within {self.start_timeout:g} s "
                    "(PERSONAS_EMBEDDED_START_TIMEOUT); "
                    f"its log is {self.log_path}:\n{self._log_tail()}"
                )
            if self._interrupted.is_set():
                raise EmbeddedDatabaseError("the start of the embedded database was interrupted")
            time.sleep(0.02)
        self.uri = uri
        self.record(RUNNING)
        return uri

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM, then SIGKILL after the grace period (default `stop_grace`); releases
        the data directory."""
        process, self._process = self._process, None
        try:
            if process is not None:
                self._end(process, self.stop_grace if grace is None else grace)
        finally:
            self.uri = None
            self._port = None
            with contextlib.suppress(FileNotFoundError):
                self.address_path.unlink()
            if self._lock is not None:
                self._lock.seek(0)
                self._lock.truncate()  # a clean stop: the next server has nothing to take over
                self._lock.close()
                self._lock = None

    def kill(self) -> None:
        """SIGKILL the server at once (from any thread: the last resort of a shutdown)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()

    def _discard(self) -> None:
        """End the current server process, if any, keeping the data directory locked."""
        process, self._process = self._process, None
        if process is not None:
            self._end(process, self.stop_grace)

    def _end(self, process: subprocess.Popen[bytes], grace: float) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a stopped server could not act on SIGTERM
        try:
            self._wait_waking_the_listener(process, grace)
        except subprocess.TimeoutExpired:
            log.warning("embedded database ignored SIGTERM for %g s; killing it", grace)
            process.kill()
            process.wait()
        except BaseException:  # interrupted while waiting (a second Ctrl-C): leave nothing behind
            process.kill()
            process.wait()
            raise

    def _wait_waking_the_listener(self, process: subprocess.Popen[bytes], grace: float) -> None:
        """Wait up to `grace` seconds for `process` to exit after SIGTERM.

        On SIGTERM secantusd closes its listening socket, which does not wake the
        thread blocked in accept(); it then waits 2 s for that thread. A connection
        wakes it at once, so knock until the process is gone.
        """
        deadline = time.monotonic() + grace
        while True:
            try:
                process.wait(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
                return
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
            if self._port is not None:
                _accepts_connections(self._port)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _is_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _processes_holding(path: Path) -> list[int]:
    """The pids of the processes with `path` open (those whose /proc this user may read)."""
    target = str(path)
    holders = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            descriptors = list((entry / "fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) == target:
                    holders.append(int(entry.name))
                    break
            except OSError:
                continue
    return holders


def _stop_pid(pid: int, grace: float) -> None:
    """SIGTERM (and SIGCONT) a process that is not our child, SIGKILL after `grace`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + grace
    while _is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextmanager
def reach(data_dir: Path, start_timeout: float = 30.0) -> Iterator[str]:
    """The address of the embedded database of `data_dir`: the running server's when one
    runs (as recorded in `server.json`), else one started for the duration."""
    database = EmbeddedDatabase(data_dir, start_timeout)
    try:
        uri = database.start()
    except EmbeddedDatabaseError:
        running = _recorded_uri(database.address_path)
        if running is None:
            raise
        yield running
        return
    try:
        yield uri
    finally:
        database.stop()


def _recorded_uri(address_path: Path) -> str | None:
    try:
        recorded = json.loads(address_path.read_text())
    except (OSError, ValueError):
        return None
    uri = recorded.get("uri") if isinstance(recorded, dict) else None
    return uri if isinstance(uri, str) and wait_until_ready(uri, timeout=2.0) else None
