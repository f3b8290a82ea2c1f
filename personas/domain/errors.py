"""The expected errors: each carries the code both APIs show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class DomainError(Exception):
    """An expected error, shown to the caller with its code."""

    code: str = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class InvalidInput(DomainError):
    code = "BAD_USER_INPUT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.errors = (FieldError(field, message),)

    def renamed(self, field: str) -> InvalidInput:
        """The same error naming the field as an adapter calls it."""
        return InvalidInput(field, self.errors[0].message)


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    code = "CONFLICT"

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Unavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"


def field_errors(error: InvalidInput) -> list[Mapping[str, str]]:
    return [{"field": item.field, "message": item.message} for item in error.errors]
