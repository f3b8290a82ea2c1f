"""What docker-compose.yml and the Dockerfile promise (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo.uri_parser import parse_uri

from personas.settings import ENVIRONMENT, Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found: dict[str, Any] = compose["services"]
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def replica_set_name(mongo: dict[str, Any]) -> str:
    command: list[str] = mongo["command"]
    return command[command.index("--replSet") + 1]


def test_mongo_is_version_8_as_a_single_node_replica_set(services: dict[str, Any]) -> None:
    mongo = services["mongo"]
    assert re.fullmatch(r"mongo:8(\.\d+)*", mongo["image"])
    assert mongo["command"][0] == "mongod"
    assert "--bind_ip_all" in mongo["command"]
    assert replica_set_name(mongo) == "rs0"
    assert {volume.split(":")[1] for volume in mongo["volumes"]} == {"/data/db", "/data/configdb"}


def test_the_mongo_healthcheck_initiates_the_replica_set_and_waits_for_a_primary(
    services: dict[str, Any],
) -> None:
    mongo = services["mongo"]
    test = mongo["healthcheck"]["test"]
    assert test[:2] == ["CMD", "mongosh"]
    script = test[test.index("--eval") + 1]
    assert f'_id: "{replica_set_name(mongo)}"' in script
    assert 'host: "mongo:27017"' in script  # the name the api service resolves
    assert "rs.initiate(" in script
    assert "isWritablePrimary" in script
    assert mongo["healthcheck"]["retries"] >= 10


def test_mongo_is_published_on_loopback_only(services: dict[str, Any]) -> None:
    assert services["mongo"]["ports"] == ["127.0.0.1:27017:27017"]


def test_the_api_waits_for_a_healthy_mongo_and_is_built_here(services: dict[str, Any]) -> None:
    api = services["api"]
    assert api["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert api["depends_on"] == {"mongo": {"condition": "service_healthy"}}
    assert api["init"] is True
    assert "/readyz" in " ".join(api["healthcheck"]["test"])


def test_the_api_publishes_the_port_it_serves_on(services: dict[str, Any]) -> None:
    assert services["api"]["ports"] == [f"{Settings().port}:{Settings().port}"]


def test_the_api_uses_the_mongo_replica_set(services: dict[str, Any]) -> None:
    environment: dict[str, str] = services["api"]["environment"]
    parsed = parse_uri(environment["MONGODB_URI"])
    assert parsed["nodelist"] == [("mongo", 27017)]
    assert parsed["options"]["replicaSet"] == replica_set_name(services["mongo"])
    assert Settings.from_env(environment).db_name == "personas"
    assert Settings.from_env(environment).production


def test_the_api_sets_only_variables_the_service_reads(services: dict[str, Any]) -> None:
    assert set(services["api"]["environment"]) <= set(ENVIRONMENT)


def test_the_dockerfile_installs_the_lock_then_the_package_without_dependencies(
    dockerfile: list[str],
) -> None:
    assert dockerfile[0] == "FROM python:3.11-slim"
    runs = [line for line in dockerfile if line.startswith("RUN ")]
    lock = next(i for i, line in enumerate(runs) if "pip install -r requirements.lock" in line)
    package = next(i for i, line in enumerate(runs) if "pip install --no-deps ." in line)
    assert lock < package
    assert any(line.startswith("COPY requirements.lock") for line in dockerfile)


def test_the_dockerfile_serves_on_all_interfaces(dockerfile: list[str]) -> None:
    command = next(line for line in dockerfile if line.startswith("CMD "))
    assert json.loads(command.removeprefix("CMD ")) == ["personas", "serve", "--host", "0.0.0.0"]
    assert f"EXPOSE {Settings().port}" in dockerfile


def test_the_lock_pins_every_runtime_dependency() -> None:
    """The image installs the package with --no-deps: the lock must hold all it needs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pinned, requirement


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".personas"} <= ignored
