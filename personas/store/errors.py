"""The one place that maps driver errors to domain errors (as httpx maps httpcore's)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError

from personas.domain import InvalidInput, Unavailable

log = logging.getLogger("personas.store")

PATH_ERRORS: Final = frozenset({2, 14, 28})
"""Server codes of an update that cannot apply at a path (BadValue, TypeMismatch,
PathNotViable): the caller's path or value does not fit the stored metadata."""


@asynccontextmanager
async def translated(path_field: str | None = None) -> AsyncIterator[None]:
    """Turn driver failures into domain errors the adapters know how to show; with
    `path_field`, an update that does not fit the stored metadata is bad input there."""
    try:
        yield
    except (ConnectionFailure, ExecutionTimeout) as error:
        log.warning("database unavailable: %s", error)
        raise Unavailable("the database is unavailable; try again shortly") from error
    except PyMongoError as error:
        if isinstance(error, OperationFailure) and path_field and error.code in PATH_ERRORS:
            raise InvalidInput(path_field, _path_message(error)) from None
        if getattr(error, "timeout", False):
            log.warning("database timeout: %s", error)
            raise Unavailable("the database did not answer in time; try again") from error
        raise


def _path_message(error: OperationFailure) -> str:
    message = str((error.details or {}).get("errmsg", error))
    return message.rsplit(":: caused by ::", 1)[-1].strip()
