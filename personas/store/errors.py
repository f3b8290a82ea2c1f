"""The one place that maps driver errors to domain errors (as httpx maps httpcore's)."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Final

from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError

from personas.domain import InvalidInput, Unavailable

log = logging.getLogger("personas.store")

PATH_ERRORS: Final = frozenset({2, 14, 28})
"""Server codes of an update that cannot apply at a path (BadValue, TypeMismatch,
PathNotViable): the caller's path or value does not fit the stored metadata."""


class Translated:
    """Turns driver failures into domain errors the adapters know how to show; with
    `path_field`, an update that does not fit the stored metadata is bad input there. A
    plain context manager (`with translated(): ...`, awaits inside): entering and leaving
    cost two method calls, where a generator-based one costs an async generator per use."""

    __slots__ = ("path_field",)

    def __init__(self, path_field: str | None) -> None:
        self.path_field = path_field

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:  # never swallows: anything else goes on as it is
        if not isinstance(error, PyMongoError):
            return
        if isinstance(error, ConnectionFailure | ExecutionTimeout):
            log.warning("database unavailable: %s", error)
            raise Unavailable("the database is unavailable; try again shortly") from error
        if isinstance(error, OperationFailure) and self.path_field and error.code in PATH_ERRORS:
            raise InvalidInput(self.path_field, _path_message(error)) from None
        if getattr(error, "timeout", False):
            log.warning("database timeout: %s", error)
            raise Unavailable("the database did not answer in time; try again") from error


_UNTRANSLATED_PATHS: Final = Translated(None)


def translated(path_field: str | None = None) -> Translated:
    """Driver failures inside turned into domain errors (`Translated`)."""
    return _UNTRANSLATED_PATHS if path_field is None else Translated(path_field)


def _path_message(error: OperationFailure) -> str:
    message = str((error.details or {}).get("errmsg", error))
    return message.rsplit(":: caused by ::", 1)[-1].strip()
