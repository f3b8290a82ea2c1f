"""`python -m bench`: seed, start the subject and the floor, drive load, report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import orjson

from bench import data, report, scenarios
from bench.drivers import Driver, DriverError, Measurement, PythonDriver, Request, WrkDriver, drive
from bench.scenarios import Expectation
from bench.seed import labelled, seed_database
from bench.servers import (
    APOLLO_DIR,
    ROOT,
    PeerUnavailable,
    Server,
    ServerError,
    apollo_versions,
    install_apollo,
    node_version,
    start_apollo,
    start_floor,
    start_subject,
    status_kib,
    tree_cpu_seconds,
)
from bench.servers import wait_idle as wait_processes_idle
from personas.embedded import EmbeddedDatabase, EmbeddedDatabaseError

DB_NAME = "bench"
IDLE_MAX_SECONDS = 60.0
CHECK_TIMEOUT = 120.0


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"bench [{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Options


def scenario_list(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    unknown = [name for name in names if name not in scenarios.ALL]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(scenarios.ALL)}"
        )
    return names


def positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def non_negative(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{raw} is not a number of seconds >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the Persona API (GraphQL and REST, production settings) against "
        "a floor: a minimal Starlette app making the same store calls. Load comes from wrk.",
        epilog=f"scenarios: {', '.join(scenarios.ALL)}",
    )
    parser.add_argument("--personas", type=positive_int, default=10_000, help="default 10000")
    parser.add_argument(
        "--rounds", type=positive_int, default=3, help="rounds per side, alternating (default 3)"
    )
    parser.add_argument(
        "--duration",
        type=non_negative,
        default=5.0,
        help="seconds per round and side (default 5; wrk takes whole seconds)",
    )
    parser.add_argument(
        "--warmup", type=non_negative, default=2.0, help="warm-up seconds per side (default 2)"
    )
    parser.add_argument(
        "--connections", type=positive_int, default=32, help="concurrent connections (default 32)"
    )
    parser.add_argument("--threads", type=positive_int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--timeout", type=non_negative, default=10.0, help="per-request timeout (default 10 s)"
    )
    parser.add_argument(
        "--scenarios",
        type=scenario_list,
        default=scenarios.ALL,
        metavar="NAME[,NAME...]",
        help="run only these (default: all)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "bench" / "results.json",
        help="where to write the results (default bench/results.json)",
    )
    parser.add_argument(
        "--apollo",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the GraphQL scenarios against the Apollo Server peer "
        "(bench/peers/apollo; needs Node.js; default: on)",
    )
    parser.add_argument(
        "--apollo-warmup",
        type=non_negative,
        default=10.0,
        help="warm-up seconds of the Apollo peer per scenario: Node compiles hot code as it "
        "runs, and its CPU per request settles after some seconds of load (default 10)",
    )
    parser.add_argument(
        "--anonymous",
        action="store_true",
        help="call the server without an API key, in anonymous loopback access (which asks "
        "the database on every request whether a key exists); default: with a key, "
        "PERSONAS_AUTH=required, as in production",
    )
    parser.add_argument(
        "--driver",
        choices=("wrk", "python"),
        default="wrk",
        help="load generator: wrk (default), or python for the harness's smoke test only",
    )
    parser.add_argument("--rss-requests", type=positive_int, default=20_000, help="default 20000")
    parser.add_argument(
        "--rss-queries", type=positive_int, default=5_000, help="distinct query texts (5000)"
    )
    parser.add_argument(
        "--rss-max-seconds",
        type=non_negative,
        default=300.0,
        help="stop the RSS scenario's requests after this long (default 300 s)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="keep the database and the servers' logs here (default: a temporary directory, "
        "removed after a successful run)",
    )
    return parser


@dataclass(frozen=True, slots=True)
class Options:
    personas: int
    rounds: int
    duration: float
    warmup: float
    connections: int
    timeout: float
    scenarios: tuple[str, ...]
    rss_requests: int
    rss_queries: int
    rss_max_seconds: float
    apollo: bool = True
    apollo_warmup: float = 10.0
    anonymous: bool = False

    def as_json(self, threads: int | None) -> dict[str, Any]:
        return {
            "anonymous": self.anonymous,
            "apollo": self.apollo,
            "apollo_warmup": self.apollo_warmup,
            "rounds": self.rounds,
            "duration": self.duration,
            "warmup": self.warmup,
            "connections": self.connections,
            "threads": threads,
            "timeout": self.timeout,
            "scenarios": list(self.scenarios),
            "rss_requests": self.rss_requests,
            "rss_queries": self.rss_queries,
            "rss_max_seconds": self.rss_max_seconds,
        }


# ---------------------------------------------------------------------------
# Scenarios with two sides


class Skipped(Exception):
    """The scenario cannot run here (e.g. its REST route does not exist yet)."""


class Failed(Exception):
    """The scenario's requests do not get right answers."""


@dataclass(frozen=True, slots=True)
class Side:
    server: Server
    requests: list[Request]
    expectation: Expectation


@dataclass(frozen=True, slots=True)
class Comparison:
    name: str
    subject: Side
    floor: Side
    rest: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    peer: Side | None = None
    """The Apollo peer's side, for the GraphQL scenarios it serves."""


@dataclass
class Bench:
    """Everything a scenario needs: the servers, the database, the seeded ids, the driver."""

    options: Options
    driver: Driver
    subject: Server
    floor: Server
    database_pid: int | None
    ids: list[str]
    tagged: int
    """How many seeded personas carry the listing scenarios' tag."""
    labelled: list[str] = field(default_factory=list)
    """The seeded personas carrying the release label."""
    released: int = 0
    """How many of them carry the listing scenarios' tag too."""
    apollo: Server | None = None
    """The Apollo peer, when it runs and answered its checks like the subject."""

    def idle(self) -> None:
        pids = [self.subject.pid, self.floor.pid]
        if self.apollo is not None:
            pids.append(self.apollo.pid)
        if self.database_pid is not None:
            pids.append(self.database_pid)
        waited = wait_processes_idle(pids, IDLE_MAX_SECONDS)
        if waited >= IDLE_MAX_SECONDS:
            log(f"servers still busy after {waited:.0f} s; measuring anyway")

    def database_cpu(self) -> float | None:
        return None if self.database_pid is None else tree_cpu_seconds(self.database_pid)

    def measure(self, side: Side, duration: float) -> Measurement:
        """One timed run, with the CPU the side's server (its process tree) and the
        database used from the start of the load to its end."""
        self.idle()
        side.server.check_alive()
        server_before, database_before = tree_cpu_seconds(side.server.pid), self.database_cpu()
        try:
            measured = self.driver.measure(
                side.server.base_url,
                side.server.requests(side.requests),
                duration,
                self.options.connections,
            )
        except DriverError as error:
            raise Failed(str(error)) from None
        server_after, database_after = tree_cpu_seconds(side.server.pid), self.database_cpu()
        database = (
            None
            if database_before is None or database_after is None
            else round(database_after - database_before, 3)
        )
        return dataclasses.replace(
            measured,
            cpu_seconds=round(server_after - server_before, 3),
            database_cpu_seconds=database,
        )

    def answer(self, server: Server, request: Request) -> tuple[int, Any]:
        """One request's status and decoded body (status 0: no answer, and why)."""
        [request] = server.requests([request])
        try:
            with httpx.Client(base_url=server.base_url, timeout=CHECK_TIMEOUT) as client:
                response = client.request(
                    request.method,
                    request.target,
                    content=request.body,
                    headers=dict(request.headers),
                )
        except httpx.HTTPError as error:
            return 0, f"no answer: {error!r}"
        try:
            return response.status_code, orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return response.status_code, response.text


def check(bench: Bench, comparison: Comparison) -> bool | None:
    """One request per side must get a right answer; True when both answered the same."""
    bench.idle()
    answers = []
    for role, side in (("subject", comparison.subject), ("floor", comparison.floor)):
        status, answer = bench.answer(side.server, side.requests[0])
        target = f"{side.requests[0].method} {side.requests[0].target}"
        if status != 200:
            message = f"{role} answered {target} with HTTP {status}: {str(answer)[:300]}"
            if comparison.rest and role == "subject" and status in (404, 405):
                raise Skipped(f"no such REST route yet? ({message})")
            raise Failed(message)
        try:
            side.expectation.check(answer)
        except (ValueError, KeyError, TypeError) as error:
            raise Failed(f"{role} answered {target} wrongly: {error}") from None
        answers.append(answer)
    if not comparison.subject.expectation.comparable:
        return None
    return bool(answers[0] == answers[1])


def check_peer(bench: Bench, comparison: Comparison, peer: Side) -> str | None:
    """The peer must answer the scenario's first request right, and as the subject does
    (modulo key order); the problem when it does not."""
    bench.idle()
    request = peer.requests[0]
    answers = []
    for server in (comparison.subject.server, peer.server):
        status, answer = bench.answer(server, request)
        if status != 200:
            return f"{server.name} answered with HTTP {status}: {str(answer)[:300]}"
        answers.append(answer)
    try:
        peer.expectation.check(answers[1])
    except (ValueError, KeyError, TypeError) as error:
        return f"the peer answered wrongly: {error}"
    difference = scenarios.first_difference(answers[0], answers[1])
    return None if difference is None else f"the subject and the peer differ at {difference}"


def describe_round(measured: dict[str, Measurement]) -> str:
    return "; ".join(
        f"{role} {measured[role].rps:,.1f} req/s p50 {measured[role].p50_ms:.1f} ms"
        + ("" if measured[role].cpu_ms is None else f" cpu {measured[role].cpu_ms:.2f} ms/req")
        + (f" errors {measured[role].errors}" if measured[role].errors else "")
        for role in ("subject", "floor", scenarios.APOLLO)
        if role in measured
    )


def compare(bench: Bench, comparison: Comparison) -> dict[str, Any]:
    options = bench.options
    row: dict[str, Any] = {"name": comparison.name, **comparison.details}
    same = check(bench, comparison)
    if same is not None:
        row["same_answer"] = same
        if not same:
            log(f"{comparison.name}: the subject and the floor answered differently")
    sides = {"floor": comparison.floor, "subject": comparison.subject}
    peer_problem = None
    if comparison.peer is not None:
        peer_problem = check_peer(bench, comparison, comparison.peer)
        if peer_problem is None:
            sides[scenarios.APOLLO] = comparison.peer
        else:
            log(f"{comparison.name}: the Apollo peer is not timed: {peer_problem}")
    for role, side in sides.items():
        warmup = options.apollo_warmup if role == scenarios.APOLLO else options.warmup
        if warmup > 0:
            bench.measure(side, warmup)
    roles = list(sides)
    rounds: list[dict[str, Measurement]] = []
    for index in range(options.rounds):
        shift = index % len(roles)  # every side goes first in turn
        measured: dict[str, Measurement] = {}
        for role in roles[shift:] + roles[:shift]:
            measured[role] = bench.measure(sides[role], options.duration)
        rounds.append(measured)
        log(f"{comparison.name} round {index + 1}/{options.rounds}: {describe_round(measured)}")
    summary = report.aggregate(rounds)
    row.update(summary)
    row["ratio"] = report.ratio(comparison.name, summary)
    row["cpu_ratio"] = report.quotient(summary["subject_cpu_ms"], summary["floor_cpu_ms"])
    if comparison.peer is not None:
        row[scenarios.APOLLO] = (
            report.peer_summary(rounds, summary)
            if peer_problem is None
            else {"status": "failed", "reason": peer_problem}
        )
    row["rounds"] = [
        {role: measurement.as_json() for role, measurement in measured.items()}
        for measured in rounds
    ]
    return row


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


def finish_row(
    row: dict[str, Any], status: str = "ok", reason: str | None = None
) -> dict[str, Any]:
    """The row with every reported key, its status, target and verdict."""
    name = row["name"]
    target = scenarios.TARGETS[name]
    for key in MEASURED:
        row.setdefault(key, None)
    errors = row.get("errors") or {}
    row.update(
        status=status,
        reason=reason,
        description=scenarios.DESCRIPTIONS[name],
        target=str(target),
        met=target.met(row["ratio"]) if status == "ok" else None,
        valid=status == "ok" and not any(errors.values()),
    )
    cpu_target = scenarios.CPU_TARGETS.get(name)
    if cpu_target is not None:
        versus = row.get(scenarios.APOLLO) if cpu_target.versus == scenarios.APOLLO else row
        value = None if not versus or status != "ok" else versus.get("cpu_ratio")
        row["cpu_target"] = {
            "versus": cpu_target.versus,
            "target": str(cpu_target.target),
            "ratio": value,
            "met": cpu_target.target.met(value),
        }
    return row


def run_comparison(bench: Bench, comparison: Comparison) -> dict[str, Any]:
    log(f"{comparison.name}: {scenarios.DESCRIPTIONS[comparison.name]}")
    try:
        return finish_row(compare(bench, comparison))
    except (Skipped, Failed) as problem:
        status = "skipped" if isinstance(problem, Skipped) else "failed"
        log(f"{comparison.name}: {status}: {problem}")
        row = {"name": comparison.name, **comparison.details}
        if comparison.peer is not None:
            row[scenarios.APOLLO] = {"status": status, "reason": str(problem)}
        return finish_row(row, status, str(problem))


# ---------------------------------------------------------------------------
# Building the scenarios


def walk_pages(bench: Bench, pages: int) -> tuple[int, str | None]:
    """Follow the listing's cursors on the subject: the page reached and its `after` cursor."""
    bench.idle()
    page, after = 1, None
    while page < pages:
        request = scenarios.graphql_listing("/graphql", scenarios.PAGE_SIZE, after)
        status, answer = bench.answer(bench.subject, request)
        if status != 200:
            raise Failed(f"walking the listing's pages: HTTP {status}: {str(answer)[:300]}")
        try:
            info = scenarios.graphql_data(answer, "personas")["pageInfo"]
        except (ValueError, KeyError, TypeError) as error:
            raise Failed(f"walking the listing's pages: {error}") from None
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
        page += 1
    return page, after


def comparisons(bench: Bench, names: Sequence[str]) -> Iterator[Comparison]:
    subject, floor = bench.subject, bench.floor
    ids = scenarios.sample(bench.ids)

    def page_size(first: int, page: int = 1) -> int:
        return max(0, min(first, bench.tagged - (page - 1) * first))

    def peer(name: str, side: Side) -> Side | None:
        """The Apollo peer takes the subject's very requests."""
        if bench.apollo is None or name not in scenarios.APOLLO_SCENARIOS:
            return None
        return Side(bench.apollo, side.requests, side.expectation)

    if scenarios.GRAPHQL_BY_ID in names:
        by_id = Side(
            subject,
            [scenarios.graphql_by_id("/graphql", item) for item in ids],
            scenarios.expect_graphql_persona(ids[0]),
        )
        yield Comparison(
            scenarios.GRAPHQL_BY_ID,
            by_id,
            Side(
                floor,
                [scenarios.graphql_by_id("/graphql/persona", item) for item in ids],
                scenarios.expect_graphql_persona(ids[0]),
            ),
            details={"distinct_ids": len(ids)},
            peer=peer(scenarios.GRAPHQL_BY_ID, by_id),
        )
    if scenarios.REST_BY_ID in names:
        requests = [scenarios.rest_by_id(item) for item in ids]
        expectation = scenarios.expect_rest_persona(ids[0])
        yield Comparison(
            scenarios.REST_BY_ID,
            Side(subject, requests, expectation),
            Side(floor, requests, expectation),
            rest=True,
            details={"distinct_ids": len(ids)},
        )
    for name, first in ((scenarios.GRAPHQL_LIST20, 20), (scenarios.GRAPHQL_LIST100, 100)):
        if name in names:
            expectation = scenarios.expect_graphql_listing(page_size(first))
            listing = Side(subject, [scenarios.graphql_listing("/graphql", first)], expectation)
            yield Comparison(
                name,
                listing,
                Side(floor, [scenarios.graphql_listing("/graphql/personas", first)], expectation),
                peer=peer(name, listing),
            )
    if scenarios.REST_LIST20 in names:
        requests = [scenarios.rest_listing(20)]
        expectation = scenarios.expect_rest_listing(page_size(20))
        yield Comparison(
            scenarios.REST_LIST20,
            Side(subject, requests, expectation),
            Side(floor, requests, expectation),
            rest=True,
        )
    if scenarios.GRAPHQL_RELEASE_BY_LABEL in names:
        labelled = scenarios.sample(bench.labelled)
        expectation = scenarios.expect_graphql_release(labelled[0])
        yield Comparison(
            scenarios.GRAPHQL_RELEASE_BY_LABEL,
            Side(
                subject,
                [scenarios.graphql_release("/graphql", item) for item in labelled],
                expectation,
            ),
            Side(
                floor,
                [scenarios.graphql_release("/graphql/personaRevision", item) for item in labelled],
                expectation,
            ),
            details={"distinct_ids": len(labelled)},
        )
    if scenarios.RELEASE_LIST20 in names:
        expectation = scenarios.expect_graphql_releases(min(20, bench.released))
        yield Comparison(
            scenarios.RELEASE_LIST20,
            Side(subject, [scenarios.graphql_releases("/graphql", 20)], expectation),
            Side(floor, [scenarios.graphql_releases("/graphql/personaReleases", 20)], expectation),
            details={"released": bench.released},
        )
    if scenarios.PAGE50_VS_PAGE1 in names:
        page, after = walk_pages(bench, scenarios.DEEP_PAGE)
        size = scenarios.PAGE_SIZE
        first_page = scenarios.expect_graphql_listing(page_size(size))
        yield Comparison(
            scenarios.PAGE50_VS_PAGE1,
            Side(
                subject,
                [scenarios.graphql_listing("/graphql", size, after)],
                Expectation(scenarios.expect_graphql_listing(page_size(size, page)).check, False),
            ),
            Side(subject, [scenarios.graphql_listing("/graphql", size)], first_page),
            details={"page": page, "baseline": "page 1 of the same listing, on the subject"},
        )


def create_comparison(bench: Bench) -> Comparison:
    expectation = scenarios.expect_created()
    return Comparison(
        scenarios.GRAPHQL_CREATE,
        Side(bench.subject, [scenarios.graphql_create("/graphql")], expectation),
        Side(bench.floor, [scenarios.graphql_create("/graphql/createPersona")], expectation),
    )


# ---------------------------------------------------------------------------
# RSS growth


def run_rss(bench: Bench) -> dict[str, Any]:
    options = bench.options
    subject = bench.subject
    log(f"{scenarios.RSS_GROWTH}: {scenarios.DESCRIPTIONS[scenarios.RSS_GROWTH]}")
    texts = scenarios.query_variants(options.rss_queries)
    persona_id = bench.ids[0]
    requests = scenarios.variant_requests(texts, persona_id)
    result: dict[str, Any] = {
        "status": "ok",
        "reason": None,
        "target": str(scenarios.TARGETS[scenarios.RSS_GROWTH]),
        "requests": options.rss_requests,
        "distinct_queries": len(texts),
        "max_seconds": options.rss_max_seconds,
        "pid": subject.pid,
    }
    bench.idle()
    status, answer = bench.answer(subject, requests[-1])
    try:
        if status != 200:
            raise ValueError(f"HTTP {status}")
        scenarios.check_persona(
            scenarios.graphql_data(answer, f"p{len(texts) - 1}"),
            persona_id,
            scenarios.PERSONA_FIELDS,
        )
    except (ValueError, KeyError, TypeError) as error:
        result.update(status="failed", reason=f"a query variant was answered wrongly: {error}")
        return result
    warm = max(1, min(1000, options.rss_requests // 10))
    requests_sent = subject.requests(requests)
    asyncio.run(
        drive(
            subject.base_url,
            requests_sent[:1],
            options.connections,
            count=warm,
            duration=options.rss_max_seconds,
            request_timeout=options.timeout,
        )
    )
    bench.idle()
    before = status_kib(subject.pid, "VmRSS")
    sent = asyncio.run(
        drive(
            subject.base_url,
            requests_sent,
            options.connections,
            count=options.rss_requests,
            duration=options.rss_max_seconds,
            request_timeout=options.timeout,
        )
    )
    bench.idle()
    subject.check_alive()
    after = status_kib(subject.pid, "VmRSS")
    growth = round((after - before) / 1024, 2)
    result.update(
        before_mib=round(before / 1024, 2),
        after_mib=round(after / 1024, 2),
        peak_mib=round(status_kib(subject.pid, "VmHWM") / 1024, 2),
        growth_mib=growth,
        completed=sent.requests,
        errors=sent.errors,
        seconds=round(sent.seconds, 1),
        complete=sent.requests + sent.errors.get("timeout", 0) + sent.errors.get("read", 0)
        >= options.rss_requests,
        met=scenarios.TARGETS[scenarios.RSS_GROWTH].met(growth),
    )
    log(
        f"{scenarios.RSS_GROWTH}: {growth:.1f} MiB over {sent.requests:,} requests "
        f"({before / 1024:.1f} -> {after / 1024:.1f} MiB)"
    )
    return result


# ---------------------------------------------------------------------------
# The Apollo peer

APOLLO_READY_PATH = "/graphql?query=%7B__typename%7D"
APOLLO_READY_HEADERS = {"apollo-require-preflight": "true"}
"""A GET query needs a header that a browser's simple request cannot send (Apollo's CSRF
prevention)."""


def start_peer(
    options: Options, uri: str, work_dir: Path, stack: contextlib.ExitStack
) -> tuple[Server | None, dict[str, Any]]:
    """The Apollo peer, started and ready, and what to report about it; None when it
    does not run (turned off, no Node.js) or did not start."""
    info: dict[str, Any] = {"status": "ok", "reason": None, "directory": str(APOLLO_DIR)}
    if not options.apollo:
        info.update(status="skipped", reason="turned off (--no-apollo)")
        return None, info
    try:
        info["node"] = node_version()
        if install_apollo(work_dir):
            log(f"installed the Apollo peer's packages (npm ci in {APOLLO_DIR})")
        info["packages"] = apollo_versions()
        peer = start_apollo(uri, DB_NAME, work_dir)
        stack.callback(peer.stop)
        peer.wait_ready(APOLLO_READY_PATH, headers=APOLLO_READY_HEADERS)
    except PeerUnavailable as error:
        log(f"the Apollo peer does not run: {error}")
        info.update(status="skipped", reason=str(error))
        return None, info
    except (ServerError, subprocess.TimeoutExpired, OSError) as error:
        log(f"the Apollo peer did not start: {error}")
        info.update(status="failed", reason=str(error))
        return None, info
    info["pid"] = peer.pid
    log(f"apollo peer (node {info['node']}, {info['packages']}) pid {peer.pid} at {peer.base_url}")
    return peer, info


def check_apollo(bench: Bench, peer: Server) -> list[dict[str, Any]]:
    """Ask the subject and the peer the same questions (`scenarios.peer_checks`); each
    check's name and the first difference between the answers (None when they agree)."""
    bench.idle()
    status, answer = bench.answer(bench.subject, scenarios.graphql_listing("/graphql", 5))
    after = None
    if status == 200:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            after = scenarios.graphql_data(answer, "personas")["pageInfo"]["endCursor"]
    results = []
    for name, request in scenarios.peer_checks(bench.ids[len(bench.ids) // 2], after):
        answers = [bench.answer(server, request) for server in (bench.subject, peer)]
        ours, theirs = ([code, scenarios.comparable_answer(body)] for code, body in answers)
        difference = scenarios.first_difference(ours, theirs)
        results.append({"name": name, "same_answer": difference is None, "difference": difference})
    return results


# ---------------------------------------------------------------------------
# The run


def run(options: Options, driver: Driver, work_dir: Path) -> dict[str, Any]:
    started = time.monotonic()
    seeded_personas = data.personas(options.personas)
    tagged_at = [
        index
        for index, persona in enumerate(seeded_personas)
        if persona.metadata is not None and scenarios.TAG in persona.metadata["tags"]
    ]
    tagged = len(tagged_at)
    released = len(set(tagged_at) & set(labelled(len(seeded_personas))))
    with contextlib.ExitStack() as stack:
        database = EmbeddedDatabase(work_dir / "database")
        uri = database.start()
        stack.callback(database.stop)
        log(f"embedded database at {uri}; seeding {options.personas:,} personas")
        seeded = asyncio.run(
            seed_database(uri, DB_NAME, seeded_personas, key=not options.anonymous)
        )
        log(f"seeded in {seeded.seconds:.1f} s ({options.personas / seeded.seconds:,.0f}/s)")
        subject = start_subject(uri, DB_NAME, work_dir, seeded.token)
        stack.callback(subject.stop)
        floor = start_floor(uri, DB_NAME, work_dir)
        stack.callback(floor.stop)
        subject.wait_ready("/readyz")
        floor.wait_ready("/healthz")
        log(f"subject (personas serve) pid {subject.pid} at {subject.base_url}")
        log(f"floor (bench.floor) pid {floor.pid} at {floor.base_url}")
        apollo, apollo_info = start_peer(options, uri, work_dir, stack)
        bench = Bench(
            options,
            driver,
            subject,
            floor,
            database.pid,
            seeded.ids,
            tagged,
            labelled=seeded.labelled,
            released=released,
        )
        if apollo is not None:
            checks = check_apollo(bench, apollo)
            apollo_info["checks"] = checks
            wrong = [item for item in checks if not item["same_answer"]]
            if wrong:
                apollo_info.update(
                    status="failed",
                    reason="; ".join(f"{item['name']}: {item['difference']}" for item in wrong),
                )
                log(f"the Apollo peer answered differently: {apollo_info['reason']}")
            else:
                log(f"the Apollo peer answered {len(checks)} checks as the subject does")
                bench.apollo = apollo

        rows: dict[str, dict[str, Any]] = {}
        try:
            for comparison in comparisons(bench, options.scenarios):
                rows[comparison.name] = run_comparison(bench, comparison)
        except Failed as error:  # walking the listing's pages failed
            log(f"{scenarios.PAGE50_VS_PAGE1}: failed: {error}")
            row = {"name": scenarios.PAGE50_VS_PAGE1}
            rows[scenarios.PAGE50_VS_PAGE1] = finish_row(row, "failed", str(error))
        rss = run_rss(bench) if scenarios.RSS_GROWTH in options.scenarios else None
        # Last: creating personas grows the collection the other scenarios read.
        if scenarios.GRAPHQL_CREATE in options.scenarios:
            rows[scenarios.GRAPHQL_CREATE] = run_comparison(bench, create_comparison(bench))
        subject.check_alive()
        floor.check_alive()
        if bench.apollo is not None:
            bench.apollo.check_alive()

    elapsed = time.monotonic() - started
    return {
        "scenarios": [rows[name] for name in scenarios.COMPARISONS if name in rows],
        "apollo": apollo_info,
        "rss_growth_mib": None if rss is None else rss.get("growth_mib"),
        "rss": rss,
        "personas": options.personas,
        "tagged_personas": tagged,
        "labelled_personas": len(seeded.labelled),
        "released_tagged_personas": released,
        "seed_seconds": round(seeded.seconds, 1),
        "machine": report.machine(driver.describe()),
        "options": options.as_json(getattr(driver, "threads", None)),
        "started_at": (datetime.now(UTC) - timedelta(seconds=elapsed)).isoformat(
            timespec="seconds"
        ),
        "seconds": round(elapsed, 1),
    }


def make_driver(name: str, threads: int, timeout: float) -> Driver:
    if name == "python":
        return PythonDriver(timeout=timeout)
    return WrkDriver(threads=threads, timeout=timeout)


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (and SIGINT, even where a background start ignores it) stop the run cleanly."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, interrupt)
    try:
        driver = make_driver(arguments.driver, arguments.threads, arguments.timeout)
    except DriverError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    options = Options(
        personas=arguments.personas,
        rounds=arguments.rounds,
        duration=arguments.duration,
        warmup=arguments.warmup,
        connections=arguments.connections,
        timeout=arguments.timeout,
        scenarios=arguments.scenarios,
        rss_requests=arguments.rss_requests,
        rss_queries=arguments.rss_queries,
        rss_max_seconds=arguments.rss_max_seconds,
        apollo=arguments.apollo,
        apollo_warmup=arguments.apollo_warmup,
        anonymous=arguments.anonymous,
    )
    keep = arguments.work_dir is not None
    work_dir: Path = arguments.work_dir or Path(tempfile.mkdtemp(prefix="personas-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = run(options, driver, work_dir)
    except (EmbeddedDatabaseError, ServerError) as error:
        print(f"bench: {error}\nbench: logs kept in {work_dir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bench: interrupted; servers stopped, logs kept in {work_dir}", file=sys.stderr)
        return 130
    output: Path = arguments.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(report.table(results))
    print(f"\nresults written to {output}")
    failed = [row["name"] for row in results["scenarios"] if row["status"] == "failed"]
    if results["rss"] is not None and results["rss"]["status"] == "failed":
        failed.append(scenarios.RSS_GROWTH)
    failed += [
        f"{row['name']} ({scenarios.APOLLO})"
        for row in results["scenarios"]
        if (row.get(scenarios.APOLLO) or {}).get("status") == "failed" and row["status"] == "ok"
    ]
    if results["apollo"]["status"] == "failed":
        failed.append(scenarios.APOLLO)
    if failed:
        print(f"bench: failed: {', '.join(failed)}; logs kept in {work_dir}", file=sys.stderr)
        return 1
    if not keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0
