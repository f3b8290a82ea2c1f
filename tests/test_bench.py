"""The benchmark harness still works: a tiny run end to end, and its wrk script. No speeds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench import scenarios
from bench.drivers import Measurement, Request, lua_script, parse_wrk_output
from bench.profile import Profile, cprofile_summary, summary
from bench.servers import cpu_seconds, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
MEASURED = (
    "subject_rps",
    "floor_rps",
    "ratio",
    "p50_ms",
    "p99_ms",
    "floor_p50_ms",
    "floor_p99_ms",
    "subject_cpu_ms",
    "floor_cpu_ms",
    "cpu_ratio",
)
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def start_harness(
    tmp_path: Path, *arguments: str, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
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
        "--apollo-warmup",
        "0",
        "--connections",
        "2",
        "--rss-requests",
        "60",
        "--rss-queries",
        "20",
        "--output",
        str(tmp_path / "results.json"),
        "--work-dir",
        str(tmp_path / "work"),
        *arguments,
    ]
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # the first run installs the Apollo peer's packages (npm ci)
        check=False,
        env={**os.environ, **(environment or {})},
    )


def run_bench(tmp_path: Path, *arguments: str) -> tuple[dict[str, Any], str]:
    """The results file and the printed table of a run that succeeded."""
    completed = start_harness(tmp_path, *arguments)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results: dict[str, Any] = json.loads((tmp_path / "results.json").read_text())
    assert "results written to" in completed.stdout
    return results, completed.stdout


def assert_measured(row: dict[str, Any]) -> None:
    assert row["status"] == "ok", row
    for key in MEASURED:
        assert isinstance(row[key], float | int), (row["name"], key, row[key])
    assert row["subject_cpu_ms"] > 0
    assert row["floor_cpu_ms"] > 0
    assert row["target"] == str(scenarios.TARGETS[row["name"]])
    assert isinstance(row["met"], bool)
    assert len(row["rounds"]) == 1
    assert row["errors"] == {"subject": 0, "floor": 0}
    for role in ("subject", "floor"):
        measured = row["rounds"][0][role]
        assert measured["cpu_seconds"] > 0
        assert measured["cpu_ms"] == pytest.approx(
            measured["cpu_seconds"] * 1000 / measured["requests"], abs=1e-3
        )
    cpu_target = scenarios.CPU_TARGETS.get(row["name"])
    if cpu_target is not None:
        assert row["cpu_target"]["versus"] == cpu_target.versus
        assert row["cpu_target"]["target"] == str(cpu_target.target)


def assert_apollo_measured(row: dict[str, Any]) -> None:
    """The Apollo peer was timed on the scenario, and compared on CPU per request."""
    peer = row[scenarios.APOLLO]
    assert peer["status"] == "ok", peer
    assert peer["same_answer"] is True
    assert peer["errors"] == 0
    assert peer["cpu_ms"] > 0
    assert peer["cpu_ratio"] == pytest.approx(row["subject_cpu_ms"] / peer["cpu_ms"], rel=0.01)
    assert row["rounds"][0][scenarios.APOLLO]["requests"] > 0
    if row["name"] in scenarios.CPU_TARGETS:
        assert row["cpu_target"]["ratio"] == peer["cpu_ratio"]
        assert isinstance(row["cpu_target"]["met"], bool)


def test_harness_runs_every_scenario_and_writes_results(tmp_path: Path) -> None:
    """The fallback driver, so that this runs (and fails) where wrk is not installed."""
    before = datetime.now(UTC).replace(microsecond=0)
    results, printed = run_bench(tmp_path, "--driver", "python", "--duration", "0.5")

    started = datetime.fromisoformat(results["started_at"])
    assert before <= started  # when the run began, not when it ended
    assert started + timedelta(seconds=results["seconds"] - 1) <= datetime.now(UTC)
    assert [row["name"] for row in results["scenarios"]] == list(scenarios.COMPARISONS)
    for row in results["scenarios"]:
        assert_measured(row)
    assert "cpu ms" in printed
    assert "cpu target" in printed
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
    peer = results["apollo"]
    if NODE is None:
        assert peer["status"] == "skipped", peer
        return
    assert peer["status"] == "ok", peer
    assert peer["packages"]["@apollo/server"].startswith("5.")
    assert len(peer["checks"]) >= 8  # page 2 of the listing included
    assert all(check["same_answer"] for check in peer["checks"]), peer["checks"]
    assert "vs Apollo Server" in printed
    for row in results["scenarios"]:
        if row["name"] in scenarios.APOLLO_SCENARIOS:
            assert_apollo_measured(row)
        else:
            assert scenarios.APOLLO not in row


@needs_node
def test_apollo_peer_that_answers_otherwise_is_not_timed_and_fails_the_run(
    tmp_path: Path,
) -> None:
    """A peer scoped to another tenant finds none of the personas: the checks say so."""
    completed = start_harness(
        tmp_path,
        "--driver",
        "python",
        "--duration",
        "0.2",
        "--scenarios",
        scenarios.GRAPHQL_BY_ID,
        environment={"BENCH_APOLLO_TENANT": "someone-else"},
    )

    assert completed.returncode == 1, completed.stdout + completed.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    peer = results["apollo"]
    assert peer["status"] == "failed"
    wrong = {check["name"] for check in peer["checks"] if not check["same_answer"]}
    assert {"persona by id", "tags = prod, first 5"} <= wrong
    assert "persona by an absent id" not in wrong  # null on both sides
    [row] = results["scenarios"]
    assert row["status"] == "ok"
    assert scenarios.APOLLO not in row
    assert set(row["rounds"][0]) == {"subject", "floor"}
    assert "bench: failed: apollo" in completed.stderr


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_harness_drives_load_with_wrk(tmp_path: Path) -> None:
    results, _ = run_bench(tmp_path, "--duration", "1", "--scenarios", scenarios.GRAPHQL_BY_ID)

    [row] = results["scenarios"]
    assert row["name"] == scenarios.GRAPHQL_BY_ID
    assert_measured(row)
    assert row["rounds"][0]["subject"]["requests"] > 0
    assert results["rss"] is None
    assert results["machine"]["driver"].startswith("wrk")
    if NODE is not None:
        assert_apollo_measured(row)


BURN = """\
import sys, time
while time.process_time() < 0.4:
    pass
print("done", flush=True)
sys.stdin.read()
"""
PARENT = """\
import subprocess, sys
child = subprocess.Popen([sys.executable, sys.argv[1]], stdin=subprocess.PIPE)
sys.stdin.read()
"""


def test_cpu_of_a_process_tree_counts_its_children(tmp_path: Path) -> None:
    """A child that burns CPU shows in its parent's tree, not in the parent's own stat."""
    (tmp_path / "burn.py").write_text(BURN)
    (tmp_path / "parent.py").write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(tmp_path / "parent.py"), str(tmp_path / "burn.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline() == "done\n"  # the child has burnt its CPU
        tree = tree_cpu_seconds(parent.pid)
        assert tree >= 0.39
        assert cpu_seconds(parent.pid) < tree - 0.3
    finally:
        parent.kill()
        parent.wait()


def test_cpu_per_request_needs_requests() -> None:
    measured = Measurement(requests=400, seconds=1.0, rps=400, p50_ms=1, p99_ms=2)
    assert measured.cpu_ms is None
    timed = Measurement(requests=400, seconds=1.0, rps=400, p50_ms=1, p99_ms=2, cpu_seconds=0.3)
    assert timed.cpu_ms == 0.75
    assert timed.as_json()["cpu_ms"] == 0.75
    none = Measurement(requests=0, seconds=1.0, rps=0, p50_ms=0, p99_ms=0, cpu_seconds=0.3)
    assert none.cpu_ms is None


def test_answers_compare_modulo_key_order_and_name_the_first_difference() -> None:
    ours = {"data": {"persona": {"id": "a", "metadata": {"tags": ["x"], "n": 3.0}}}}
    theirs = {"data": {"persona": {"metadata": {"n": 3, "tags": ["x"]}, "id": "a"}}}
    assert scenarios.first_difference(ours, theirs) is None
    other = {"data": {"persona": {"metadata": {"n": 3, "tags": ["y"]}, "id": "a"}}}
    assert scenarios.first_difference(ours, other) == (
        ".data.persona.metadata.tags[0]: 'x' against 'y'"
    )
    shorter = {"data": {"persona": {"id": "a"}}}
    assert scenarios.first_difference(ours, shorter) == ".data.persona.metadata: only on one side"
    error = {"message": "id: bad", "locations": [{"line": 1}], "extensions": {"code": "X"}}
    assert scenarios.comparable_answer({"data": None, "errors": [error]}) == {
        "data": None,
        "errors": [{"message": "id: bad", "code": "X"}],
    }


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


RAW_PROFILE = """\
run (/venv/site-packages/uvicorn/server.py);handle (/venv/site-packages/starlette/routing.py);\
execute (/venv/site-packages/graphql/execution/execute.py);\
resolve (/repo/personas/resolvers.py) 6
run (/venv/site-packages/uvicorn/server.py);\
parse_document (/venv/site-packages/strawberry/schema/x.py);\
parse (/venv/site-packages/graphql/language/parser.py) 3
run (/venv/site-packages/uvicorn/server.py) 1
"""


def test_profile_summary_sums_samples_by_layer_and_function(tmp_path: Path) -> None:
    raw = tmp_path / "profile.raw.txt"
    raw.write_text(RAW_PROFILE)
    profile = Profile.read(raw)

    assert profile.total == 10
    assert profile.own().most_common(1) == [(("resolve", "/repo/personas/resolvers.py"), 6)]
    assert profile.below()[("run", "/venv/site-packages/uvicorn/server.py")] == 10
    layers = profile.layers()
    assert layers["graphql-core: parsing"] == 3
    assert layers["GraphQL types and resolvers (schema.py, resolvers.py)"] == 6
    assert sum(layers.values()) == 10
    text = summary(profile, top=5)
    assert "| graphql-core: parsing |  30.0 % |" in text
    assert "| `execute` (graphql/execution/execute.py) |  60.0 % |" in text
    assert "| `resolve` (/repo/personas/resolvers.py) |  60.0 % |  60.0 % |" in text


CPROFILED = """\
import cProfile, importlib.util, sys, time

def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

load("work", sys.argv[1])
server = load("server", sys.argv[2])
profile = cProfile.Profile(time.process_time)
profile.runcall(server.run_asgi)
profile.dump_stats(sys.argv[3])
"""


def test_cprofile_summary_shares_the_requests_cpu(tmp_path: Path) -> None:
    """Functions below the requests' coroutine, as shares of its CPU (no timings checked)."""
    work = tmp_path / "personas" / "work.py"
    server = tmp_path / "uvicorn" / "protocols" / "http" / "server.py"
    for path in (work, server):
        path.parent.mkdir(parents=True)
    work.write_text("def persona_work():\n    return sum(range(200_000))\n")
    server.write_text(
        "from work import persona_work\n\n"
        "def run_asgi():\n    return persona_work() + sum(range(200_000))\n"
    )
    stats = tmp_path / "stats"
    subprocess.run(
        [sys.executable, "-c", CPROFILED, str(work), str(server), str(stats)],
        check=True,
        timeout=60,
    )

    text = cprofile_summary(stats, requests=1, top=10)
    assert "ms per request" in text
    assert f"| `persona_work` ({work}) |" in text  # below run_asgi, from a /personas/ file
    assert "| function (own time) | share | calls |" in text
