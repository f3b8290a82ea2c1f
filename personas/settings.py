"""Typed configuration, read once from environment variables."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personas.domain.labels import LABEL_PATTERN, ApprovalPolicy


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
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def _parse_float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("expected a number") from None


def _parse_path(raw: str) -> Path:
    return Path(raw.strip())


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


ENVS = ("development", "production")
AUTH_MODES = ("auto", "required")
APPROVAL_MODES = ("single", "two-person")
LOG_LEVELS = ("debug", "info", "warning", "error")


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
    embedded_sync_on_commit: bool = True
    embedded_restarts: int = 5
    embedded_restart_backoff: float = 0.5
    shutdown_timeout: float = 10.0
    max_body_bytes: int = 1024 * 1024
    auth: str = "auto"
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5000
    graphql_cache_size: int = 1000
    protected_labels: tuple[str, ...] = ("production",)
    approval: str = "single"
    event_retention_days: int = 7
    subscriptions_per_connection: int = 10
    subscriptions_per_key: int = 50
    subscription_buffer: int = 100
    webhook_allow_loopback: bool = False
    webhook_timeout: float = 10.0
    webhook_retry_base: float = 5.0
    webhook_retry_for: float = 86400.0
    cors_origins: tuple[str, ...] = ()
    persisted_query_cache_size: int = 1000
    persisted_queries: Path | None = None
    persisted_only: bool = False

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(
            protected=frozenset(self.protected_labels), two_person=self.approval == "two-person"
        )

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
                raise SettingsError(f"{_shown(variable, raw)}: {error}") from None
        return cls(**values).validated()

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` applied (None values are ignored), validated."""
        given = {key: value for key, value in changes.items() if value is not None}
        return dataclasses.replace(self, **given).validated()

    def validated(self) -> Settings:
        """This object, once every rule holds; else a SettingsError naming the variable."""
        for field, (holds, rule) in RULES.items():
            value = getattr(self, field)
            if not holds(value):
                raise SettingsError(f"{_shown(VARIABLES[field], value)}: {rule}")
        if self.persisted_only and self.persisted_queries is None:
            raise SettingsError(
                "PERSONAS_PERSISTED_ONLY=true needs PERSONAS_PERSISTED_QUERIES: the file of the "
                "documents it may run"
            )
        return self


def _shown(variable: str, value: object) -> str:
    """`VARIABLE=value` for an error message; a connection string may hold a password."""
    if variable == "MONGODB_URI":
        return variable
    return f"{variable}={str(value)!r}"


def _valid_db_name(name: str) -> bool:
    return 0 < len(name.encode()) < 64 and not any(char in name for char in '/\\. "$\0')


def _valid_origin(origin: str) -> bool:
    """`*`, or an origin as browsers send it: scheme://host[:port], nothing after."""
    return origin == "*" or bool(_ORIGIN.fullmatch(origin))


_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[^/?#\s:@\[\]]+)(:[0-9]{1,5})?")


def _valid_mongodb_uri(uri: str | None) -> bool:
    return uri is None or uri.startswith(("mongodb://", "mongodb+srv://"))


def _positive_seconds(seconds: float) -> bool:
    return math.isfinite(seconds) and seconds > 0


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "host": (lambda host: bool(host), "must not be empty"),
    "port": (lambda port: 0 <= port <= 65535, "must be between 0 and 65535"),
    "workers": (lambda workers: workers >= 1, "must be at least 1"),
    "mongodb_uri": (_valid_mongodb_uri, "must start with mongodb:// or mongodb+srv://"),
    "db_name": (
        _valid_db_name,
        'must be a MongoDB database name: 1 to 63 bytes, none of / \\ . space " $ NUL',
    ),
    "db_timeout_ms": (lambda timeout: timeout >= 1, "must be at least 1 millisecond"),
    "embedded_start_timeout": (
        lambda timeout: math.isfinite(timeout) and timeout > 0,
        "must be a positive number of seconds",
    ),
    "embedded_restarts": (lambda count: count >= 0, "must be at least 0"),
    "embedded_restart_backoff": (
        lambda delay: math.isfinite(delay) and delay >= 0,
        "must be a number of seconds, at least 0",
    ),
    "shutdown_timeout": (
        lambda bound: math.isfinite(bound) and bound >= 1,
        "must be a number of seconds, at least 1",
    ),
    "max_body_bytes": (lambda size: size >= 1, "must be at least 1 byte"),
    "env": (lambda env: env in ENVS, f"must be one of {', '.join(ENVS)}"),
    "auth": (lambda mode: mode in AUTH_MODES, f"must be one of {', '.join(AUTH_MODES)}"),
    "graphql_max_depth": (lambda limit: limit >= 1, "must be at least 1"),
    "graphql_max_aliases": (lambda limit: limit >= 0, "must be at least 0"),
    "graphql_max_tokens": (lambda limit: limit >= 1, "must be at least 1"),
    "graphql_cache_size": (lambda size: size >= 1, "must be at least 1"),
    "cors_origins": (
        lambda origins: all(_valid_origin(origin) for origin in origins),
        "must be comma-separated origins like https://app.example.com (scheme, host and "
        "optional port; no path), or *",
    ),
    "persisted_query_cache_size": (lambda size: size >= 1, "must be at least 1"),
    "log_level": (lambda level: level in LOG_LEVELS, f"must be one of {', '.join(LOG_LEVELS)}"),
    "protected_labels": (
        lambda labels: all(re.fullmatch(LABEL_PATTERN, label) for label in labels),
        "must be label names: lowercase letters, digits, '.', '_' or '-', comma-separated",
    ),
    "approval": (
        lambda mode: mode in APPROVAL_MODES,
        f"must be one of {', '.join(APPROVAL_MODES)}",
    ),
    "event_retention_days": (lambda days: days >= 1, "must be at least 1 day"),
    "subscriptions_per_connection": (lambda limit: limit >= 1, "must be at least 1"),
    "subscriptions_per_key": (lambda limit: limit >= 1, "must be at least 1"),
    "subscription_buffer": (lambda size: size >= 1, "must be at least 1"),
    "webhook_timeout": (_positive_seconds, "must be a positive number of seconds"),
    "webhook_retry_base": (_positive_seconds, "must be a positive number of seconds"),
    "webhook_retry_for": (_positive_seconds, "must be a positive number of seconds"),
}
"""The rules a setting's value must keep, each with its message."""

ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "PERSONAS_HOST": ("host", str.strip),
    "PERSONAS_PORT": ("port", _parse_int),
    "PERSONAS_WORKERS": ("workers", _parse_int),
    "PERSONAS_DATA_DIR": ("data_dir", _parse_path),
    "MONGODB_URI": ("mongodb_uri", str.strip),
    "PERSONAS_DB_NAME": ("db_name", str.strip),
    "PERSONAS_INDEXED_PATHS": ("indexed_paths", _parse_list),
    "PERSONAS_GRAPHIQL": ("graphiql", _parse_bool),
    "PERSONAS_ENV": ("env", _parse_choice(*ENVS)),
    "PERSONAS_LOG_LEVEL": ("log_level", _parse_choice(*LOG_LEVELS)),
    "PERSONAS_DB_TIMEOUT_MS": ("db_timeout_ms", _parse_int),
    "PERSONAS_EMBEDDED_START_TIMEOUT": ("embedded_start_timeout", _parse_float),
    "PERSONAS_EMBEDDED_SYNC_ON_COMMIT": ("embedded_sync_on_commit", _parse_bool),
    "PERSONAS_EMBEDDED_RESTARTS": ("embedded_restarts", _parse_int),
    "PERSONAS_EMBEDDED_RESTART_BACKOFF": ("embedded_restart_backoff", _parse_float),
    "PERSONAS_SHUTDOWN_TIMEOUT": ("shutdown_timeout", _parse_float),
    "PERSONAS_MAX_BODY_BYTES": ("max_body_bytes", _parse_int),
    "PERSONAS_AUTH": ("auth", _parse_choice(*AUTH_MODES)),
    "PERSONAS_GRAPHQL_MAX_DEPTH": ("graphql_max_depth", _parse_int),
    "PERSONAS_GRAPHQL_MAX_ALIASES": ("graphql_max_aliases", _parse_int),
    "PERSONAS_GRAPHQL_MAX_TOKENS": ("graphql_max_tokens", _parse_int),
    "PERSONAS_GRAPHQL_CACHE_SIZE": ("graphql_cache_size", _parse_int),
    "PERSONAS_PROTECTED_LABELS": ("protected_labels", _parse_list),
    "PERSONAS_APPROVAL": ("approval", _parse_choice(*APPROVAL_MODES)),
    "PERSONAS_EVENT_RETENTION_DAYS": ("event_retention_days", _parse_int),
    "PERSONAS_SUBSCRIPTIONS_PER_CONNECTION": ("subscriptions_per_connection", _parse_int),
    "PERSONAS_SUBSCRIPTIONS_PER_KEY": ("subscriptions_per_key", _parse_int),
    "PERSONAS_SUBSCRIPTION_BUFFER": ("subscription_buffer", _parse_int),
    "PERSONAS_WEBHOOK_ALLOW_LOOPBACK": ("webhook_allow_loopback", _parse_bool),
    "PERSONAS_WEBHOOK_TIMEOUT": ("webhook_timeout", _parse_float),
    "PERSONAS_WEBHOOK_RETRY_BASE": ("webhook_retry_base", _parse_float),
    "PERSONAS_WEBHOOK_RETRY_FOR": ("webhook_retry_for", _parse_float),
    "PERSONAS_CORS_ORIGINS": ("cors_origins", _parse_list),
    "PERSONAS_PERSISTED_QUERY_CACHE_SIZE": ("persisted_query_cache_size", _parse_int),
    "PERSONAS_PERSISTED_QUERIES": ("persisted_queries", _parse_path),
    "PERSONAS_PERSISTED_ONLY": ("persisted_only", _parse_bool),
}
"""Every environment variable the service reads, with the setting it fills."""

VARIABLES: dict[str, str] = {field: variable for variable, (field, _) in ENVIRONMENT.items()}
"""The environment variable of each setting."""
