"""Typed configuration, read once from environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A configuration value that cannot be used."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _parse_int(raw: str) -> int:
    return int(raw.strip())


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    data_dir: Path = Path(".personas")
    mongodb_uri: str | None = None
    db_name: str = "personas"
    indexed_paths: tuple[str, ...] = ()
    graphiql: bool = True
    env: str = "development"
    log_level: str = "info"
    db_timeout_ms: int = 5000
    embedded_start_timeout: float = 30.0
    max_body_bytes: int = 1024 * 1024

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable, (field, parse) in ENVIRONMENT.items():
            raw = source.get(variable)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[field] = parse(raw)
            except ValueError as error:
                raise SettingsError(f"{variable}={raw!r}: {error}") from None
        return cls(**values).validated()

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` applied (None values are ignored), validated."""
        given = {key: value for key, value in changes.items() if value is not None}
        return dataclasses.replace(self, **given).validated()

    def validated(self) -> Settings:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port {self.port}: must be between 0 and 65535")
        if self.workers < 1:
            raise SettingsError(f"workers {self.workers}: must be at least 1")
        if self.max_body_bytes < 1:
            raise SettingsError(f"body limit {self.max_body_bytes} bytes: must be positive")
        if self.db_timeout_ms < 1:
            raise SettingsError(f"database timeout {self.db_timeout_ms} ms: must be positive")
        if not self.db_name or any(char in self.db_name for char in '/\\. "$\0'):
            raise SettingsError(f"database name {self.db_name!r}: not a valid MongoDB name")
        return self


ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "PERSONAS_HOST": ("host", str.strip),
    "PERSONAS_PORT": ("port", _parse_int),
    "PERSONAS_WORKERS": ("workers", _parse_int),
    "PERSONAS_DATA_DIR": ("data_dir", Path),
    "MONGODB_URI": ("mongodb_uri", str.strip),
    "PERSONAS_DB_NAME": ("db_name", str.strip),
    "PERSONAS_INDEXED_PATHS": ("indexed_paths", _parse_list),
    "PERSONAS_GRAPHIQL": ("graphiql", _parse_bool),
    "PERSONAS_ENV": ("env", _parse_choice("development", "production")),
    "PERSONAS_LOG_LEVEL": ("log_level", _parse_choice("debug", "info", "warning", "error")),
    "PERSONAS_DB_TIMEOUT_MS": ("db_timeout_ms", _parse_int),
    "PERSONAS_EMBEDDED_START_TIMEOUT": ("embedded_start_timeout", float),
    "PERSONAS_MAX_BODY_BYTES": ("max_body_bytes", _parse_int),
}
"""Every environment variable the service reads, with the setting it fills."""
