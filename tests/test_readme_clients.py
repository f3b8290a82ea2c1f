"""The README's client examples, run as written against a real server with an API key."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from personas.settings import Settings
from tests.live import create_key, serving

README = (Path(__file__).parent.parent / "README.md").read_text()


def example(name: str, language: str) -> str:
    found = re.search(
        rf"<!-- example: {name} .*?-->\n```{language}\n(.*?)\n```", README, flags=re.DOTALL
    )
    assert found, f"the README has no {name} example"
    return found.group(1)


def test_the_gql_example_runs(settings: Settings) -> None:
    token = create_key(settings)
    with serving(settings) as base:
        ran = subprocess.run(
            [sys.executable, "-c", example("gql", "python")],
            env={**os.environ, "GRAPHQL": f"{base}/graphql", "KEY": token},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert re.fullmatch(r"created [0-9a-f]{24} version 1 tags \['prod', 'approved'\]", lines[0])
    assert lines[1] == "Support Agent ['prod', 'approved'] {'environment': 'production'}"
    assert lines[2] == "refused: BAD_USER_INPUT"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_curl_example_runs(settings: Settings) -> None:
    token = create_key(settings)
    with serving(settings) as base:
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", example("curl", "bash")],
            env={**os.environ, "GRAPHQL": f"{base}/graphql", "KEY": token},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert ran.returncode == 0, ran.stderr
    created, listed = (json.loads(line) for line in ran.stdout.splitlines())
    assert created["data"]["createPersona"]["tags"] == ["prod"]
    assert listed == {
        "data": {
            "personas": {"totalCount": 1, "nodes": [{"name": "Support Agent", "tags": ["prod"]}]}
        }
    }
