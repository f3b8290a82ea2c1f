"""The benchmark harness still works: a tiny run end to end, and its wrk script. No speeds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import scenarios
from bench.drivers import Request, lua_script, parse_wrk_output

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ("subject_rps", "floor_rps", "ratio", "p50_ms", "p99_ms", "floor_p50_ms", "floor_p99_ms")


def run_bench(tmp_path: Path, *arguments: str) -> dict[str, Any]:
    output = tmp_path / "results.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--personas",
        "100",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--connections",
        "2",
        "--rss-requests",
        "60",
        "--rss-queries",
        "20",
        "--output",
        str(output),
        "--work-dir",
        str(tmp_path / "work"),
        *arguments,
    ]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results: dict[str, Any] = json.loads(output.read_text())
    assert "results written to" in completed.stdout
    return results


def assert_measured(row: dict[str, Any]) -> None:
    assert row["status"] == "ok", row
    for key in MEASURED:
        assert isinstance(row[key], float | int), (row["name"], key, row[key])
    assert row["target"] == str(scenarios.TARGETS[row["name"]])
    assert isinstance(row["met"], bool)
    assert len(row["rounds"]) == 1
    assert row["errors"] == {"subject": 0, "floor": 0}


def test_harness_runs_every_scenario_and_writes_results(tmp_path: Path) -> None:
    """The fallback driver, so that this runs (and fails) where wrk is not installed."""
    results = run_bench(tmp_path, "--driver", "python", "--duration", "0.5")

    assert [row["name"] for row in results["scenarios"]] == list(scenarios.COMPARISONS)
    for row in results["scenarios"]:
        assert_measured(row)
    assert results["personas"] == 100
    assert results["machine"]["cores"] >= 1
    assert results["machine"]["driver"].startswith("python")
    assert isinstance(results["rss_growth_mib"], float | int)
    assert results["rss"]["completed"] == 60
    assert results["rss"]["errors"] == {}
    assert results["rss"]["complete"] is True
    assert results["rss"]["distinct_queries"] == 20
    by_name = {row["name"]: row for row in results["scenarios"]}
    assert by_name[scenarios.GRAPHQL_BY_ID]["same_answer"] is True
    assert by_name[scenarios.PAGE50_VS_PAGE1]["page"] >= 2


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_harness_drives_load_with_wrk(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--duration", "1", "--scenarios", scenarios.GRAPHQL_BY_ID)

    [row] = results["scenarios"]
    assert row["name"] == scenarios.GRAPHQL_BY_ID
    assert_measured(row)
    assert row["rounds"][0]["subject"]["requests"] > 0
    assert results["rss"] is None
    assert results["machine"]["driver"].startswith("wrk")


def test_wrk_script_prepares_every_request_and_reports_errors() -> None:
    requests = [
        Request.graphql_post("/graphql", {"query": 'query { a: persona(id: "1") { id } }'}),
        Request.get("/v1/personas?metadata.tags=prod&limit=20"),
    ]
    script = lua_script(requests)

    assert script.count("wrk.format") == 1
    assert "\\034query\\034" in script  # JSON quotes escaped as Lua decimal escapes
    assert '"/v1/personas?metadata.tags=prod&limit=20"' in script
    assert "function response" in script  # GraphQL answers are checked for "errors"
    assert "function response" not in lua_script(requests[1:])


def test_wrk_result_line_is_parsed() -> None:
    output = (
        "Running 1s test @ http://127.0.0.1:1/\n"
        'BENCH_RESULT {"requests":200,"duration_us":2000000,"p50_us":1500.0,"p99_us":9000.0,'
        '"connect":0,"read":0,"write":0,"status":3,"timeout":0,"graphql":1}\n'
    )
    measured = parse_wrk_output(output)

    assert measured.rps == 100
    assert measured.p50_ms == 1.5
    assert measured.p99_ms == 9
    assert measured.errors == {"status": 3, "graphql": 1}
