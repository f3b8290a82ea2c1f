"""`python -m bench.profile`: where the server's CPU goes under load, sampled by py-spy.

It seeds the embedded database, starts `personas serve` the way `make bench` does, drives a
scenario's requests at it with wrk and records the server with `py-spy record --format raw`
(collapsed stacks, which speedscope and flamegraph.pl read). Then it sums the samples: by
function (own time and time below it), by the library the innermost frame belongs to, and by
the phases of a request (parse, validate, execute, serialize, ...). py-spy is not one of the
project's dependencies: `.venv/bin/pip install py-spy`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import data, scenarios
from bench.drivers import Request, WrkDriver
from bench.seed import seed_database
from bench.servers import ROOT, Server, start_subject, tree_cpu_seconds, wait_idle
from personas.embedded import EmbeddedDatabase

DB_NAME = "bench"
PROFILED = (
    scenarios.GRAPHQL_BY_ID,
    scenarios.GRAPHQL_LIST20,
    scenarios.GRAPHQL_LIST100,
    scenarios.REST_BY_ID,
    scenarios.REST_LIST20,
)
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")

LIBRARIES: tuple[tuple[str, str], ...] = (
    ("/graphql/language/", "graphql-core: parsing"),
    ("/graphql/validation/", "graphql-core: validation"),
    ("/graphql/execution/", "graphql-core: execution"),
    ("/graphql/", "graphql-core: other"),
    ("/strawberry/extensions/", "strawberry: extensions"),
    ("/strawberry/", "strawberry"),
    ("/pymongo/", "pymongo"),
    ("/bson/", "bson"),
    ("/uvicorn/", "uvicorn"),
    ("/starlette/", "starlette"),
    ("/personas/", "personas (this project)"),
    ("/logging/", "logging (stdlib)"),
    ("/pythonjsonlogger/", "logging (stdlib)"),
    ("/asyncio/", "asyncio (stdlib)"),
    ("/json/", "json (stdlib)"),
    ("/enum.py", "enum (stdlib)"),
    ("/typing.py", "typing (stdlib)"),
    ("/dataclasses.py", "dataclasses (stdlib)"),
    ("/inspect.py", "inspect (stdlib)"),
    ("/copy.py", "copy (stdlib)"),
)
"""The library a sample's innermost frame belongs to, by its file path (first match)."""


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    markers: tuple[tuple[str, str], ...]
    """(function name, file path part): a sample is in the phase when one is on its stack."""


PHASES: tuple[Phase, ...] = (
    Phase("HTTP: uvicorn + httptools (parsing, sending)", (("", "/uvicorn/protocols/"),)),
    Phase("middleware: access log", (("__call__", "/personas/app.py"),)),
    Phase("middleware: access log line (logging)", (("info", "/logging/__init__.py"),)),
    Phase("middleware: authentication", (("", "/personas/auth.py"),)),
    Phase("middleware: JSON bodies, body limit", (("", "/personas/http.py"),)),
    Phase("GraphQL: reading the request (strawberry http)", (("parse_http_body", ""),)),
    Phase("GraphQL: context (get_context)", (("get_context", ""),)),
    Phase(
        "GraphQL: parse (incl. the parser cache)",
        (("parse_document", ""), ("parse", "/graphql/language/parser.py")),
    ),
    Phase(
        "GraphQL: validate (incl. the validation cache)",
        (("validate_document", ""), ("_run_validation", ""), ("on_validate", "")),
    ),
    Phase("GraphQL: extension hooks (all)", (("", "/strawberry/extensions/"),)),
    Phase("GraphQL: execution (graphql-core execute)", (("", "/graphql/execution/execute.py"),)),
    Phase(
        "GraphQL: resolvers (resolvers.py, schema.py)",
        (("", "/personas/resolvers.py"), ("", "/personas/schema.py")),
    ),
    Phase(
        "store + domain (store.py, domain.py)",
        (("", "/personas/store.py"), ("", "/personas/domain.py")),
    ),
    Phase("pymongo + bson", (("", "/pymongo/"), ("", "/bson/"))),
    Phase(
        "GraphQL: result and errors (process_result, encode)",
        (("process_result", ""), ("encode_json", ""), ("create_response", "")),
    ),
    Phase("REST handlers (rest.py)", (("", "/personas/rest.py"),)),
)


def parse_frame(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"]


@dataclass
class Profile:
    """Collapsed stacks from `py-spy record --format raw` and their sample counts."""

    stacks: list[tuple[tuple[tuple[str, str], ...], int]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Profile:
        profile = cls()
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = tuple(parse_frame(frame) for frame in stack.split(";"))
            profile.stacks.append((frames, int(count)))
        return profile

    @property
    def total(self) -> int:
        return sum(count for _, count in self.stacks)

    def own(self) -> Counter[tuple[str, str]]:
        """Samples whose innermost frame is the function (its own time)."""
        counts: Counter[tuple[str, str]] = Counter()
        for frames, count in self.stacks:
            counts[frames[-1]] += count
        return counts

    def below(self) -> Counter[tuple[str, str]]:
        """Samples with the function anywhere on the stack (its time and its callees')."""
        counts: Counter[tuple[str, str]] = Counter()
        for frames, count in self.stacks:
            for frame in set(frames):
                counts[frame] += count
        return counts

    def libraries(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for frames, count in self.stacks:
            counts[library(frames)] += count
        return counts

    def share(self, matches: Callable[[tuple[tuple[str, str], ...]], bool]) -> int:
        return sum(count for frames, count in self.stacks if matches(frames))


def library(frames: Sequence[tuple[str, str]]) -> str:
    """The library of the innermost frame that belongs to a known one."""
    for _, file in reversed(frames):
        for part, name in LIBRARIES:
            if part in file:
                return name
    return "other: " + (frames[-1][1].rsplit("/", 1)[-1] or frames[-1][0])


def in_phase(phase: Phase) -> Callable[[tuple[tuple[str, str], ...]], bool]:
    def matches(frames: tuple[tuple[str, str], ...]) -> bool:
        return any(
            (not function or name == function) and part in file
            for name, file in frames
            for function, part in phase.markers
        )

    return matches


def short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in file:
            return file.split(marker, 1)[1].lstrip("/").removeprefix(".11/").removeprefix(".12/")
    return file


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f} %" if whole else "-"


def summary(profile: Profile, top: int) -> str:
    """The profile as markdown tables: phases, libraries, and the top functions."""
    total = profile.total
    lines = [f"{total:,} samples of the server's busy thread(s).", ""]
    lines += ["| phase of a request (on the stack) | share |", "| --- | ---: |"]
    lines += [
        f"| {phase.name} | {percent(profile.share(in_phase(phase)), total)} |" for phase in PHASES
    ]
    lines += ["", "| library of the innermost known frame (own time) | share |", "| --- | ---: |"]
    lines += [
        f"| {name} | {percent(count, total)} |"
        for name, count in profile.libraries().most_common(top)
    ]
    own, below = profile.own(), profile.below()
    lines += ["", "| function (own time) | own | with callees |", "| --- | ---: | ---: |"]
    for (function, file), count in own.most_common(top):
        lines.append(
            f"| `{function}` ({short(file)}) | {percent(count, total)} | "
            f"{percent(below[(function, file)], total)} |"
        )
    return "\n".join(lines)


def requests_for(name: str, ids: Sequence[str]) -> list[Request]:
    sample = scenarios.sample(ids)
    if name == scenarios.GRAPHQL_BY_ID:
        return [scenarios.graphql_by_id("/graphql", item) for item in sample]
    if name == scenarios.REST_BY_ID:
        return [scenarios.rest_by_id(item) for item in sample]
    if name == scenarios.GRAPHQL_LIST20:
        return [scenarios.graphql_listing("/graphql", 20)]
    if name == scenarios.GRAPHQL_LIST100:
        return [scenarios.graphql_listing("/graphql", 100)]
    return [scenarios.rest_listing(20)]


def record(
    py_spy: str, server: Server, requests: list[Request], options: argparse.Namespace, raw: Path
) -> tuple[int, float]:
    """Load for `options.duration` seconds while py-spy samples; requests and CPU seconds."""
    driver = WrkDriver(threads=2, timeout=10)
    if options.warmup > 0:
        driver.measure(server.base_url, requests, options.warmup, options.connections)
    wait_idle([server.pid], 30)
    command = [
        py_spy,
        "record",
        "--pid",
        str(server.pid),
        "--format",
        "raw",
        "--full-filenames",
        "--nolineno",
        "--rate",
        str(options.rate),
        "--duration",
        str(round(options.duration) + 2),
        "--output",
        str(raw),
    ]
    if options.native:
        command.append("--native")
    sampler = subprocess.Popen(  # noqa: S603 - fixed command, no shell
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.0)  # py-spy attaches
        before = tree_cpu_seconds(server.pid)
        measured = driver.measure(server.base_url, requests, options.duration, options.connections)
        used = tree_cpu_seconds(server.pid) - before
        _, errors = sampler.communicate(timeout=options.duration + 60)
    finally:
        if sampler.poll() is None:
            sampler.kill()
    if sampler.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed ({sampler.returncode}): {errors}")
    return measured.requests, used


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--personas", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds sampled (20)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--scenarios",
        default=f"{scenarios.GRAPHQL_BY_ID},{scenarios.GRAPHQL_LIST20}",
        help=f"comma-separated, of {', '.join(PROFILED)}",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=ROOT / "bench" / "profiles",
        help="where the raw profiles and summaries go (default bench/profiles, not committed)",
    )
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    options = build_parser().parse_args(None if argv is None else list(argv))
    names = [name.strip() for name in options.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROFILED]
    if unknown:
        print(f"bench.profile: cannot profile {', '.join(unknown)}", file=sys.stderr)
        return 2
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        print(
            "bench.profile: py-spy is not installed (.venv/bin/pip install py-spy)", file=sys.stderr
        )
        return 2
    options.output_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="personas-profile-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work_dir, ignore_errors=True)
        database = EmbeddedDatabase(work_dir / "database")
        uri = database.start()
        stack.callback(database.stop)
        seeded = asyncio.run(seed_database(uri, DB_NAME, data.personas(options.personas)))
        subject = start_subject(uri, DB_NAME, work_dir)
        stack.callback(subject.stop)
        subject.wait_ready("/readyz")
        for name in names:
            raw = options.output_dir / f"{name}.raw.txt"
            requests, cpu = record(py_spy, subject, requests_for(name, seeded.ids), options, raw)
            text = (
                f"## {name}\n\n{scenarios.DESCRIPTIONS[name]}; {options.personas:,} personas, "
                f"{options.connections} connections, {options.duration:g} s, py-spy at "
                f"{options.rate}/s{' --native' if options.native else ''}: {requests:,} requests, "
                f"{cpu * 1000 / max(requests, 1):.2f} ms of server CPU per request.\n\n"
                + summary(Profile.read(raw), options.top)
                + "\n"
            )
            (options.output_dir / f"{name}.md").write_text(text)
            print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
