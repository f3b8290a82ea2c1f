from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from personas.settings import ENVIRONMENT, Settings, SettingsError


def test_defaults_serve_locally_on_the_embedded_database() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.workers == 1
    assert settings.data_dir == Path(".personas")
    assert settings.mongodb_uri is None
    assert settings.db_name == "personas"
    assert settings.graphiql is True
    assert settings.production is False
    assert settings.embedded_sync_on_commit is True
    assert settings.shutdown_timeout == 10.0


PARSED: list[tuple[str, str, str, Any]] = [
    ("PERSONAS_HOST", " 0.0.0.0 ", "host", "0.0.0.0"),
    ("PERSONAS_PORT", "9000", "port", 9000),
    ("PERSONAS_WORKERS", " 4", "workers", 4),
    ("PERSONAS_DATA_DIR", "/var/lib/personas", "data_dir", Path("/var/lib/personas")),
    (
        "MONGODB_URI",
        "mongodb://mongo:27017/?replicaSet=rs0",
        "mongodb_uri",
        "mongodb://mongo:27017/?replicaSet=rs0",
    ),
    ("PERSONAS_DB_NAME", "personas_prod", "db_name", "personas_prod"),
    ("PERSONAS_INDEXED_PATHS", "status, owner.team,,", "indexed_paths", ("status", "owner.team")),
    ("PERSONAS_GRAPHIQL", "off", "graphiql", False),
    ("PERSONAS_ENV", "Production", "env", "production"),
    ("PERSONAS_LOG_LEVEL", "WARNING", "log_level", "warning"),
    ("PERSONAS_DB_TIMEOUT_MS", "250", "db_timeout_ms", 250),
    ("PERSONAS_EMBEDDED_START_TIMEOUT", "2.5", "embedded_start_timeout", 2.5),
    ("PERSONAS_EMBEDDED_SYNC_ON_COMMIT", "off", "embedded_sync_on_commit", False),
    ("PERSONAS_EMBEDDED_RESTARTS", "0", "embedded_restarts", 0),
    ("PERSONAS_EMBEDDED_RESTART_BACKOFF", "0.25", "embedded_restart_backoff", 0.25),
    ("PERSONAS_SHUTDOWN_TIMEOUT", "4", "shutdown_timeout", 4.0),
    ("PERSONAS_MAX_BODY_BYTES", "2048", "max_body_bytes", 2048),
    ("PERSONAS_AUTH", "Required", "auth", "required"),
    ("PERSONAS_GRAPHQL_MAX_DEPTH", "8", "graphql_max_depth", 8),
    ("PERSONAS_GRAPHQL_MAX_ALIASES", "0", "graphql_max_aliases", 0),
    ("PERSONAS_GRAPHQL_MAX_TOKENS", "900", "graphql_max_tokens", 900),
    ("PERSONAS_GRAPHQL_CACHE_SIZE", "64", "graphql_cache_size", 64),
    (
        "PERSONAS_PROTECTED_LABELS",
        "production, prod-eu",
        "protected_labels",
        ("production", "prod-eu"),
    ),
    ("PERSONAS_APPROVAL", "Two-Person", "approval", "two-person"),
    (
        "PERSONAS_CORS_ORIGINS",
        "http://localhost:3000, https://app.example.com,http://[::1]:8080",
        "cors_origins",
        ("http://localhost:3000", "https://app.example.com", "http://[::1]:8080"),
    ),
    ("PERSONAS_PERSISTED_QUERY_CACHE_SIZE", "10", "persisted_query_cache_size", 10),
    ("PERSONAS_PERSISTED_QUERIES", "queries.json", "persisted_queries", Path("queries.json")),
    ("PERSONAS_PERSISTED_ONLY", "no", "persisted_only", False),
    ("PERSONAS_EVENT_RETENTION_DAYS", "30", "event_retention_days", 30),
    ("PERSONAS_SUBSCRIPTIONS_PER_CONNECTION", "3", "subscriptions_per_connection", 3),
    ("PERSONAS_SUBSCRIPTIONS_PER_KEY", "12", "subscriptions_per_key", 12),
    ("PERSONAS_SUBSCRIPTION_BUFFER", "500", "subscription_buffer", 500),
    ("PERSONAS_WEBHOOK_ALLOW_LOOPBACK", "true", "webhook_allow_loopback", True),
    ("PERSONAS_WEBHOOK_TIMEOUT", "2.5", "webhook_timeout", 2.5),
    ("PERSONAS_WEBHOOK_RETRY_BASE", "0.5", "webhook_retry_base", 0.5),
    ("PERSONAS_WEBHOOK_RETRY_FOR", "3600", "webhook_retry_for", 3600.0),
]


@pytest.mark.parametrize(("variable", "raw", "field", "expected"), PARSED)
def test_each_variable_is_parsed_into_its_setting(
    variable: str, raw: str, field: str, expected: Any
) -> None:
    settings = Settings.from_env({variable: raw})
    assert getattr(settings, field) == expected
    assert ENVIRONMENT[variable][0] == field


def test_every_variable_has_a_parsing_case() -> None:
    assert {variable for variable, *_ in PARSED} == set(ENVIRONMENT)


@pytest.mark.parametrize("flag", ["1", "true", "YES", "on"])
def test_true_spellings(flag: str) -> None:
    assert Settings.from_env({"PERSONAS_GRAPHIQL": "off"}).graphiql is False
    assert Settings.from_env({"PERSONAS_GRAPHIQL": flag}).graphiql is True


def test_blank_values_keep_the_default() -> None:
    settings = Settings.from_env({"PERSONAS_PORT": "  ", "MONGODB_URI": "", "PERSONAS_HOST": ""})
    assert settings.port == 8000
    assert settings.mongodb_uri is None
    assert settings.host == "127.0.0.1"


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONAS_PORT", "8123")
    monkeypatch.setenv("PERSONAS_DB_NAME", "from_environment")
    settings = Settings.from_env()
    assert (settings.port, settings.db_name) == (8123, "from_environment")


@pytest.mark.parametrize(
    ("variable", "raw", "rule"),
    [
        ("PERSONAS_PORT", "eighty", "whole number"),
        ("PERSONAS_PROTECTED_LABELS", "Production", "label names"),
        ("PERSONAS_APPROVAL", "three-person", "single, two-person"),
        ("PERSONAS_PORT", "8000.5", "whole number"),
        ("PERSONAS_PORT", "70000", "between 0 and 65535"),
        ("PERSONAS_PORT", "-1", "between 0 and 65535"),
        ("PERSONAS_WORKERS", "0", "at least 1"),
        ("PERSONAS_WORKERS", "two", "whole number"),
        ("PERSONAS_DB_NAME", "my.db", "MongoDB database name"),
        ("PERSONAS_DB_NAME", "a" * 64, "MongoDB database name"),
        ("PERSONAS_DB_NAME", "$cmd", "MongoDB database name"),
        ("PERSONAS_GRAPHIQL", "maybe", "true or false"),
        ("PERSONAS_ENV", "staging", "development, production"),
        ("PERSONAS_LOG_LEVEL", "verbose", "debug, info, warning, error"),
        ("PERSONAS_DB_TIMEOUT_MS", "0", "at least 1"),
        ("PERSONAS_EMBEDDED_START_TIMEOUT", "soon", "a number"),
        ("PERSONAS_EMBEDDED_START_TIMEOUT", "0", "positive"),
        ("PERSONAS_EMBEDDED_START_TIMEOUT", "nan", "positive"),
        ("PERSONAS_EMBEDDED_START_TIMEOUT", "inf", "positive"),
        ("PERSONAS_EMBEDDED_RESTARTS", "-1", "at least 0"),
        ("PERSONAS_EMBEDDED_RESTART_BACKOFF", "-1", "at least 0"),
        ("PERSONAS_EMBEDDED_RESTART_BACKOFF", "inf", "at least 0"),
        ("PERSONAS_SHUTDOWN_TIMEOUT", "0.5", "at least 1"),
        ("PERSONAS_SHUTDOWN_TIMEOUT", "nan", "at least 1"),
        ("PERSONAS_MAX_BODY_BYTES", "-5", "at least 1"),
        ("MONGODB_URI", "localhost:27017", "mongodb://"),
        ("PERSONAS_CORS_ORIGINS", "https://app.example.com/", "no path"),
        ("PERSONAS_CORS_ORIGINS", "app.example.com", "no path"),
        ("PERSONAS_CORS_ORIGINS", "null", "no path"),
        ("PERSONAS_PERSISTED_QUERY_CACHE_SIZE", "0", "at least 1"),
        ("PERSONAS_PERSISTED_ONLY", "true", "needs PERSONAS_PERSISTED_QUERIES"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(variable: str, raw: str, rule: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: raw})
    message = str(raised.value)
    assert message.startswith(variable)
    assert rule in message


def test_a_bad_connection_string_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MONGODB_URI": "mongo://admin:s3cret@db:27017"})
    assert "MONGODB_URI" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_replace_applies_given_values_and_ignores_none() -> None:
    base = Settings.from_env({"PERSONAS_PORT": "9000", "PERSONAS_HOST": "10.0.0.1"})
    changed = base.replace(host="0.0.0.0", port=None, data_dir=None, workers=3)
    assert changed.host == "0.0.0.0"
    assert changed.port == 9000
    assert changed.data_dir == base.data_dir
    assert changed.workers == 3
    assert base.host == "10.0.0.1"


def test_replace_keeps_a_zero_port() -> None:
    assert Settings().replace(port=0).port == 0


def test_replace_validates_the_result() -> None:
    with pytest.raises(SettingsError, match=r"^PERSONAS_WORKERS='0': must be at least 1$"):
        Settings().replace(workers=0)


def test_the_readme_documents_every_variable() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [variable for variable in ENVIRONMENT if f"| `{variable}` |" not in readme]
    assert missing == []
