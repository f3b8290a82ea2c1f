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


def _dies_with_this_process() -> Callable[[], None] | None:
    """A pre-exec hook asking the kernel to SIGTERM the child when we die, if we can.

    The kernel ties this to the thread that forks, so it is only safe from the
    main thread: from any other, the database would stop when that thread ends.
    """
    if threading.current_thread() is not threading.main_thread():
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
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.uri: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._port: int | None = None

    @property
    def storage_path(self) -> Path:
        return self.data_dir / "db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "secantusd.log"

    @property
    def address_path(self) -> Path:
        return self.data_dir / "server.json"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "secantusd.toml"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> str:
        """Start the server and wait until it answers ping; returns its URI."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
        except OSError as error:
            raise EmbeddedDatabaseError(
                f"cannot use the data directory {self.data_dir}: {error.strerror or error}"
            ) from None
        try:
            return self._launch()
        except OSError as error:
            self.stop()
            raise EmbeddedDatabaseError(f"cannot start the embedded database: {error}") from None
        except BaseException:
            self.stop()
            raise

    def _acquire_lock(self) -> None:
        lock = (self.data_dir / "lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise EmbeddedDatabaseError(
                f"the data directory {self.data_dir} is in use by another Persona API "
                f"server (pid {holder}) or its database; stop it or choose another "
                "--data-dir (PERSONAS_DATA_DIR)"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock
        with contextlib.suppress(FileNotFoundError):
            self.address_path.unlink()  # left behind by a server that was killed

    def _launch(self) -> str:
        assert self._lock is not None
        if not self.config_path.exists():
            self.config_path.write_text(_CONFIG_TEXT)
        port = self._port = _free_port()
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
        ]
        with self.log_path.open("ab") as output:
            self._process = subprocess.Popen(  # noqa: S603 - fixed command, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(self._lock.fileno(),),
                preexec_fn=_dies_with_this_process(),
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
            time.sleep(0.02)
        self.uri = uri
        self.address_path.write_text(json.dumps({"uri": uri, "pid": self._process.pid}))
        return uri

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; releases the data directory."""
        process, self._process = self._process, None
        try:
            if process is not None:
                self._end(process)
        finally:
            self.uri = None
            self._port = None
            with contextlib.suppress(FileNotFoundError):
                self.address_path.unlink()
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            self._wait_waking_the_listener(process)
        except subprocess.TimeoutExpired:
            log.warning("embedded database ignored SIGTERM for %g s; killing it", self.stop_grace)
            process.kill()
            process.wait()
        except BaseException:  # interrupted while waiting (a second Ctrl-C): leave nothing behind
            process.kill()
            process.wait()
            raise

    def _wait_waking_the_listener(self, process: subprocess.Popen[bytes]) -> None:
        """Wait up to the grace period for `process` to exit after SIGTERM.

        On SIGTERM secantusd closes its listening socket, which does not wake the
        thread blocked in accept(); it then waits 2 s for that thread. A connection
        wakes it at once, so knock until the process is gone.
        """
        deadline = time.monotonic() + self.stop_grace
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
