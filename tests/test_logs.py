"""Log lines: one JSON object each, the same whichever way a line is written."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from personas.logs import FLUSH_SECONDS, JsonFormatter, flush_soon, log_fields, timestamp

StreamT = TypeVar("StreamT", bound=io.StringIO)

FIELDS = {"method": "GET", "path": "/healthz", "status": 200, "duration_ms": 1.25}


def json_logger(name: str, stream: StreamT) -> tuple[logging.Logger, StreamT]:
    """A logger whose only handler writes JSON lines to `stream`, as `configure` sets one up.
    Called in the test itself: pytest attaches its capture handler to every logger that does
    not propagate when a test starts, and a handler other than a JSON stream handler sends
    records the usual way."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


@pytest.fixture
def logger() -> Iterator[Callable[[], tuple[logging.Logger, io.StringIO]]]:
    yield lambda: json_logger("personas.test-logs", io.StringIO())
    logging.getLogger("personas.test-logs").handlers[:] = []


def test_a_line_written_directly_is_the_line_logging_writes(
    logger: Callable[[], tuple[logging.Logger, io.StringIO]],
) -> None:
    log, stream = logger()
    log_fields(log, logging.INFO, "request", FIELDS)
    log.info("request", extra=FIELDS)
    direct, logged = (json.loads(line) for line in stream.getvalue().splitlines())
    assert direct.pop("ts")[:19] == logged.pop("ts")[:19]
    assert direct == logged == {"level": "info", "logger": log.name, "msg": "request", **FIELDS}


def test_the_level_still_decides(logger: Callable[[], tuple[logging.Logger, io.StringIO]]) -> None:
    log, stream = logger()
    log.setLevel(logging.WARNING)
    log_fields(log, logging.INFO, "request", FIELDS)
    assert stream.getvalue() == ""


def test_other_handlers_and_filters_get_a_record(
    logger: Callable[[], tuple[logging.Logger, io.StringIO]], caplog: pytest.LogCaptureFixture
) -> None:
    log, stream = logger()
    log.propagate = True
    with caplog.at_level(logging.INFO, logger=log.name):
        log_fields(log, logging.INFO, "request", FIELDS)
    records = [record for record in caplog.records if record.name == log.name]
    assert records
    assert {getattr(record, "status", None) for record in records} == {200}
    assert json.loads(stream.getvalue())["path"] == "/healthz"
    log.addFilter(lambda record: False)
    log_fields(log, logging.INFO, "request", FIELDS)
    assert len(stream.getvalue().splitlines()) == 1


class CountedFlushes(io.StringIO):
    """A stream that counts its flushes and keeps what each flush made visible."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue())


@pytest.fixture
def counted() -> Iterator[Callable[[], tuple[logging.Logger, CountedFlushes]]]:
    yield lambda: json_logger("personas.test-flushes", CountedFlushes())
    flush_soon.flush()
    logging.getLogger("personas.test-flushes").handlers[:] = []


def test_lines_flushed_soon_share_one_flush_within_the_bound(
    counted: Callable[[], tuple[logging.Logger, CountedFlushes]],
) -> None:
    log, stream = counted()

    async def requests() -> list[str]:
        for status in (200, 201, 204):
            log_fields(log, logging.INFO, "request", {**FIELDS, "status": status}, flush="soon")
        before = list(stream.flushed)
        await asyncio.sleep(FLUSH_SECONDS * 3)
        return before

    before = asyncio.run(requests())
    assert before == []  # no flush per line
    assert len(stream.flushed) == 1
    assert [json.loads(line)["status"] for line in stream.flushed[0].splitlines()] == [
        200,
        201,
        204,
    ]


def test_a_line_flushed_now_takes_the_waiting_lines_with_it_in_order(
    counted: Callable[[], tuple[logging.Logger, CountedFlushes]],
) -> None:
    log, stream = counted()

    async def requests() -> None:
        log_fields(log, logging.INFO, "request", FIELDS, flush="soon")
        log.error("the database failed")
        assert len(stream.flushed) == 1
        messages = [json.loads(line)["msg"] for line in stream.flushed[0].splitlines()]
        assert messages == ["request", "the database failed"]

    asyncio.run(requests())


def test_without_an_event_loop_a_line_is_flushed_at_once(
    counted: Callable[[], tuple[logging.Logger, CountedFlushes]],
) -> None:
    log, stream = counted()
    log_fields(log, logging.INFO, "request", FIELDS, flush="soon")
    assert len(stream.flushed) == 1
    assert json.loads(stream.flushed[0])["path"] == "/healthz"


def test_lines_waiting_for_a_loop_that_stopped_are_flushed_by_the_next(
    counted: Callable[[], tuple[logging.Logger, CountedFlushes]],
) -> None:
    log, stream = counted()

    async def one_request() -> None:
        log_fields(log, logging.INFO, "request", FIELDS, flush="soon")

    asyncio.run(one_request())  # stops before its flush was due
    assert stream.flushed == []

    async def later() -> None:
        await one_request()
        await asyncio.sleep(FLUSH_SECONDS * 3)

    asyncio.run(later())
    assert len(stream.flushed) == 1
    assert len(stream.flushed[0].splitlines()) == 2


def test_a_timestamp_is_what_datetime_writes() -> None:
    edges = [
        0.0,
        1764682295.0,
        1764682295.001,
        1764682295.9995,
        1764682295.9999996,
        1e9 + 0.9999999,
    ]
    draws = random.Random(16)
    moments = edges + [draws.uniform(0, 4e9) for _ in range(20_000)]
    moments += [draws.randrange(2 * 10**9) + draws.randrange(10**6) / 1e6 for _ in range(20_000)]
    for moment in moments:  # the same second twice in a row, and a new one
        assert timestamp(moment) == datetime.fromtimestamp(moment, UTC).isoformat(
            timespec="milliseconds"
        ), moment
