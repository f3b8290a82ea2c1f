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
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from personas.store import wait_until_ready

log = logging.getLogger("personas.embedded")

SERVER_COMMAND = "secantusd-py"
STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


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


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM if we die first."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedDatabase:
    """Starts, owns and stops one embedded database server for a data directory.

    A lock file in the data directory makes sure only one server uses it; the
    address of the running server is recorded in `server.json` beside it.
    """

    def __init__(self, data_dir: Path, start_timeout: float = 30.0) -> None:
        self.data_dir = data_dir.resolve()
        self.start_timeout = start_timeout
        self.uri: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

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
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            return self._launch()
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
                f"another Persona API server (pid {holder}) is using the data directory "
                f"{self.data_dir}; stop it or choose another --data-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock

    def _launch(self) -> str:
        port = _free_port()
        command = [
            _server_command(),
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
                preexec_fn=_die_with_parent,
            )
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        deadline = time.monotonic() + self.start_timeout
        while not wait_until_ready(uri, timeout=min(1.0, self.start_timeout)):
            if self._process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"the embedded database exited with code {self._process.returncode}; "
                    f"its log is {self.log_path}:\n{self._log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise EmbeddedDatabaseError(
                    f"the embedded database did not answer ping within {self.start_timeout:g} s; "
                    f"its log is {self.log_path}"
                )
        self.uri = uri
        self.address_path.write_text(json.dumps({"uri": uri, "pid": self._process.pid}))
        return uri

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; releases the data directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("embedded database ignored SIGTERM; killing it")
                process.kill()
                process.wait()
        self.uri = None
        with contextlib.suppress(FileNotFoundError):
            self.address_path.unlink()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

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
