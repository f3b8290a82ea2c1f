"""Log lines: one JSON object each, the same whichever way a line is written."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from personas.logs import JsonFormatter, log_fields, timestamp

FIELDS = {"method": "GET", "path": "/healthz", "status": 200, "duration_ms": 1.25}


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("personas.test-logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.handlers[:] = []


def test_a_line_written_directly_is_the_line_logging_writes(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    log_fields(log, logging.INFO, "request", FIELDS)
    log.info("request", extra=FIELDS)
    direct, logged = (json.loads(line) for line in stream.getvalue().splitlines())
    assert direct.pop("ts")[:19] == logged.pop("ts")[:19]
    assert direct == logged == {"level": "info", "logger": log.name, "msg": "request", **FIELDS}


def test_the_level_still_decides(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = logger
    log.setLevel(logging.WARNING)
    log_fields(log, logging.INFO, "request", FIELDS)
    assert stream.getvalue() == ""


def test_other_handlers_and_filters_get_a_record(
    logger: tuple[logging.Logger, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    log, stream = logger
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
