"""Structured logging: one JSON object per line."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from math import floor
from typing import Any, Final, Literal

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


def timestamp(created: float) -> str:
    """`created` in UTC, ISO 8601 to the millisecond: "2026-12-02T13:31:35.120+00:00". The
    part up to the second is formatted once per second."""
    second = floor(created)
    micros = round((created - second) * 1_000_000)  # as datetime.fromtimestamp rounds
    if micros == 1_000_000:
        second, micros = second + 1, 0
    if second != _second[0]:
        _second[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    prefix: str = _second[1]
    return prefix + _MILLISECONDS[micros // 1000]


_second: list[Any] = [None, ""]
_MILLISECONDS: Final = tuple(f".{millis:03d}+00:00" for millis in range(1000))


def json_line(
    created: float, level: str, logger: str, message: str, fields: Mapping[str, Any]
) -> str:
    """A log line: when, level, logger and message, then the record's own fields."""
    line = {"ts": timestamp(created), "level": level.lower(), "logger": logger, "msg": message}
    return orjson.dumps({**line, **fields}, default=str).decode()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {key: value for key, value in record.__dict__.items() if key not in _STANDARD}
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return json_line(record.created, record.levelname, record.name, record.getMessage(), fields)


def stderr_handler() -> logging.StreamHandler[Any]:
    """A stream handler writing to standard error through a buffer of its own: Python keeps
    `sys.stderr` line-buffered, a write per line, and the access log writes a line per
    request. A record logged the usual way is still flushed at once (`StreamHandler.emit`),
    and with it every line before it, in order; access lines (`flush="soon"`) wait at most
    `FLUSH_SECONDS`. Falls back to `sys.stderr` itself when it has no file descriptor."""
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return logging.StreamHandler(sys.stderr)
    stream = open(  # noqa: SIM115 - the handler keeps it; logging.shutdown flushes it
        descriptor,
        "w",
        encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
        errors="backslashreplace",
        closefd=False,
    )
    return logging.StreamHandler(stream)


def configure(level: str) -> None:
    handler = stderr_handler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


FLUSH_SECONDS: Final = 0.1
"""How long a line written with `flush="soon"` may wait in its stream's buffer."""


class _FlushSoon:
    """Flushes the handlers given to it together, `FLUSH_SECONDS` after the first of them,
    by one timer of the running event loop (at once when none runs). A line any other way
    flushes its stream, and with it the lines before it, in order; `logging.shutdown` (at
    the end of the process) flushes every handler."""

    def __init__(self) -> None:
        self._handlers: set[logging.Handler] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, handler: logging.Handler) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            handler.flush()
            return
        self._handlers.add(handler)
        if self._timer is None or self._loop is not loop:  # none yet, or a stopped loop's
            self._loop = loop
            self._timer = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Flush every handler given since the last flush, now."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        handlers, self._handlers = self._handlers, set()
        for handler in handlers:
            handler.flush()


flush_soon: Final = _FlushSoon()


def log_fields(
    logger: logging.Logger,
    level: int,
    message: str,
    fields: Mapping[str, Any],
    *,
    flush: Literal["now", "soon"] = "now",
) -> None:
    """`logger.log(level, message, extra=fields)`, in fewer steps where that changes nothing:
    when the only handlers the record would reach are stream handlers with a
    `JsonFormatter` (as `configure` and `personas serve` set up), the line they would write
    is written to their streams directly, without a `LogRecord`. Otherwise (another
    handler, a filter: a test capturing records, say) the record goes through logging.

    With `flush="soon"` (the access log: a line per request) a line written directly is
    flushed with the lines around it, at most `FLUSH_SECONDS` later, rather than by a write
    of its own."""
    if not logger.isEnabledFor(level):
        return
    handlers = _json_handlers(logger, level)
    if handlers is None:
        logger.log(level, message, extra=dict(fields), stacklevel=2)
        return
    line = json_line(time.time(), logging.getLevelName(level), logger.name, message, fields)
    for handler in handlers:
        stream = handler.stream
        handler.acquire()
        try:
            stream.write(line + handler.terminator)
        finally:
            handler.release()
        if getattr(stream, "line_buffering", False):  # the line flushed it
            continue
        if flush == "soon":
            flush_soon.add(handler)
        else:
            handler.flush()


def _json_handlers(logger: logging.Logger, level: int) -> list[logging.StreamHandler[Any]] | None:
    """The handlers a record of `logger` at `level` reaches, when every one of them is a
    plain stream handler formatting with `JsonFormatter` and nothing filters; else None."""
    if logger.disabled or logger.filters:
        return None
    found: list[logging.StreamHandler[Any]] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if level < handler.level:
                continue
            if (
                type(handler) is not logging.StreamHandler
                or type(handler.formatter) is not JsonFormatter
                or handler.filters
            ):
                return None
            found.append(handler)
        current = current.parent if current.propagate else None
    return found or None  # no handler at all: logging's last resort decides
