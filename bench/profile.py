"""`python -m bench.profile`: where the server's CPU goes under load.

It seeds the embedded database, starts `personas serve` the way `make bench` does, drives a
scenario's requests at it with wrk and records the server with `py-spy record --format raw`
(collapsed stacks, which speedscope and flamegraph.pl read). Then it sums the samples: by
layer (the library or module of the innermost frame), and by function (its own time, and with
its callees). py-spy is not one of the project's dependencies: `.venv/bin/pip install py-spy`.
With `--cprofile` it runs the server under cProfile instead, timed by the process's CPU clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
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
    scenarios.GRAPHQL_RELEASE_BY_LABEL,
    scenarios.RELEASE_LIST20,
)
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")

LAYERS: tuple[tuple[str, str], ...] = (
    ("/pymongo/", "pymongo + bson (the driver)"),
    ("/bson/", "pymongo + bson (the driver)"),
    ("/logging/", "logging: the access log line"),
    ("/pythonjsonlogger/", "logging: the access log line"),
    ("/personas/logs.py", "logging: the access log line"),
    ("/personas/store.py", "store + domain (store.py, domain.py)"),
    ("/personas/domain.py", "store + domain (store.py, domain.py)"),
    ("/personas/schema.py", "GraphQL types and resolvers (schema.py, resolvers.py)"),
    ("/personas/resolvers.py", "GraphQL types and resolvers (schema.py, resolvers.py)"),
    ("/graphql/language/", "graphql-core: parsing"),
    ("/graphql/validation/", "graphql-core: validation"),
    ("/graphql/", "graphql-core: execution (executor, types, utilities)"),
    ("/strawberry/extensions/", "strawberry: schema extensions (hooks, caches, limiters)"),
    ("/strawberry/http/", "strawberry: HTTP view (request body, context, result)"),
    ("/strawberry/asgi/", "strawberry: HTTP view (request body, context, result)"),
    ("/strawberry/", "strawberry: execution (schema, arguments, types)"),
    ("/personas/rest.py", "REST handlers and the body limit (rest.py)"),
    ("/personas/", "middleware: authentication, JSON bodies, access log (app, auth, http)"),
    ("/starlette/", "starlette: routing, middleware stack, responses"),
    ("/uvicorn/", "uvicorn + httptools: HTTP, socket writes"),
    ("/asyncio/", "asyncio + uvloop: event loop and tasks (C code below Runner.run)"),
    ("/inspect.py", "inspect (stdlib; per-request checks in strawberry)"),
    ("/typing.py", "typing (stdlib; runtime Protocol checks)"),
    ("/json/", "json (stdlib)"),
)
"""Where a sample's time goes: to the innermost frame that belongs to one of these (by its
file path, first match), so that every sample counts once and the shares add up to 100 %."""
ENTRY_POINTS = ("/personas/", "/strawberry/", "/graphql/", "/pymongo/asynchronous/")
"""Whose functions are shown with their callees' time (a flattened call tree)."""


def parse_frame(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"]


Frames = tuple[tuple[str, str], ...]


@dataclass
class Profile:
    """Collapsed stacks from `py-spy record --format raw` and their sample counts."""

    stacks: list[tuple[Frames, int]] = field(default_factory=list)

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

    def layers(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for frames, count in self.stacks:
            counts[layer(frames)] += count
        return counts


def layer(frames: Frames) -> str:
    """The layer of the innermost frame that belongs to a known one."""
    for _, file in reversed(frames):
        for part, name in LAYERS:
            if part in file:
                return name
    return "other: " + (frames[-1][1].rsplit("/", 1)[-1] or frames[-1][0])


def short(file: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    if "/lib/python3" in file:
        return file.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return file


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f} %" if whole else "-"


def summary(profile: Profile, top: int) -> str:
    """The profile as markdown tables: layers, functions with their callees, own time."""
    total = profile.total
    lines = [f"{total:,} samples of the server's busy thread.", ""]
    lines += ["| layer (innermost known frame; adds up to 100 %) | share |", "| --- | ---: |"]
    lines += [
        f"| {name} | {percent(count, total)} |" for name, count in profile.layers().most_common()
    ]
    own, below = profile.own(), profile.below()
    entries = Counter(
        {
            key: count
            for key, count in below.items()
            if any(part in key[1] for part in ENTRY_POINTS) and count < 0.99 * total
        }
    )
    lines += ["", "| function, with its callees | share |", "| --- | ---: |"]
    lines += [
        f"| `{function}` ({short(file)}) | {percent(count, total)} |"
        for (function, file), count in entries.most_common(top)
    ]
    lines += ["", "| function (own time) | own | with callees |", "| --- | ---: | ---: |"]
    for (function, file), count in own.most_common(top):
        lines.append(
            f"| `{function}` ({short(file)}) | {percent(count, total)} | "
            f"{percent(below[(function, file)], total)} |"
        )
    return "\n".join(lines)


REQUEST_ROOT = ("run_asgi", "/uvicorn/protocols/http/")
"""The coroutine every request runs in: its cumulative CPU is the requests' CPU."""


def cprofile_summary(path: Path, requests: int, top: int) -> str:
    """cProfile stats as markdown: functions with their callees and own time, as shares of
    the CPU the requests used (coroutine times add up over every resumption)."""
    # (file, line, function) -> (primitive calls, calls, own seconds, cumulative, callers)
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    stats = vars(pstats.Stats(str(path)))["stats"]
    roots = [
        value
        for key, value in stats.items()
        if key[2] == REQUEST_ROOT[0] and REQUEST_ROOT[1] in key[0]
    ]
    whole = sum(value[3] for value in roots) or 1.0

    def name(key: tuple[str, int, str]) -> str:
        return f"`{key[2]}` ({short(key[0])})"

    def share(seconds: float) -> str:
        return f"{100 * seconds / whole:5.1f} %"

    lines = [
        f"{whole:.2f} s of CPU in requests under cProfile "
        f"({whole * 1000 / max(requests, 1):.2f} ms per request: cProfile's own cost "
        "included, several times the real figure).",
        "",
        "| function, with its callees | share | calls |",
        "| --- | ---: | ---: |",
    ]
    known = [
        (key, value)
        for key, value in stats.items()
        if any(part in key[0] for part in ENTRY_POINTS) and value[3] < 0.99 * whole
    ]
    for key, value in sorted(known, key=lambda item: -item[1][3])[:top]:
        lines.append(f"| {name(key)} | {share(value[3])} | {value[1]:,} |")
    lines += ["", "| function (own time) | share | calls |", "| --- | ---: | ---: |"]
    for key, value in sorted(stats.items(), key=lambda item: -item[1][2])[:top]:
        lines.append(f"| {name(key)} | {share(value[2])} | {value[1]:,} |")
    return "\n".join(lines)


def requests_for(name: str, ids: Sequence[str], labelled: Sequence[str]) -> list[Request]:
    sample = scenarios.sample(ids)
    if name == scenarios.GRAPHQL_RELEASE_BY_LABEL:
        return [scenarios.graphql_release("/graphql", item) for item in scenarios.sample(labelled)]
    if name == scenarios.RELEASE_LIST20:
        return [scenarios.graphql_releases("/graphql", 20)]
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
    requests = server.requests(requests)
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
    if options.gil:
        command.append("--gil")
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
    parser.add_argument(
        "--gil",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="py-spy --gil: only samples holding the GIL, which leaves out the event loop "
        "waiting in epoll (default: on)",
    )
    parser.add_argument(
        "--cprofile",
        action="store_true",
        help="run the server under cProfile (CPU clock) instead of sampling it with py-spy",
    )
    parser.add_argument(
        "--anonymous",
        action="store_true",
        help="call the server without an API key (anonymous loopback access, which asks the "
        "database on every request whether a key exists) instead of with one",
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--scenarios",
        default=f"{scenarios.GRAPHQL_BY_ID},{scenarios.GRAPHQL_LIST20}",
        help=f"comma-separated, of {', '.join(PROFILED)}",
    )
    parser.add_argument(
        "--summarize",
        type=Path,
        nargs="+",
        metavar="RAW",
        help="only print the summary of raw profiles recorded before",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=ROOT / "bench" / "profiles",
        help="where the raw profiles and summaries go (default bench/profiles, not committed)",
    )
    return parser


def measure_cprofiled(
    uri: str,
    requests: list[Request],
    options: argparse.Namespace,
    work_dir: Path,
    stats: Path,
    token: str | None,
) -> tuple[int, float]:
    """A fresh server under cProfile, loaded for `options.duration` seconds, then stopped
    (which writes the stats); requests and the CPU seconds /proc saw."""
    subject = start_subject(uri, DB_NAME, work_dir, token, cprofile_output=stats)
    try:
        subject.wait_ready("/readyz")
        requests = subject.requests(requests)
        driver = WrkDriver(threads=2, timeout=10)
        if options.warmup > 0:
            driver.measure(subject.base_url, requests, options.warmup, options.connections)
        wait_idle([subject.pid], 30)
        before = tree_cpu_seconds(subject.pid)
        measured = driver.measure(subject.base_url, requests, options.duration, options.connections)
        used = tree_cpu_seconds(subject.pid) - before
        subject.process.send_signal(signal.SIGTERM)
        subject.process.wait(timeout=120)
    finally:
        subject.stop()
    if not stats.exists():
        raise RuntimeError(f"the server wrote no profile; see {subject.log_path}")
    return measured.requests, used


def main(argv: Iterable[str] | None = None) -> int:
    options = build_parser().parse_args(None if argv is None else list(argv))
    if options.summarize:
        for raw in options.summarize:
            print(f"## {raw.name}\n\n{summary(Profile.read(raw), options.top)}\n")
        return 0
    names = [name.strip() for name in options.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROFILED]
    if unknown:
        print(f"bench.profile: cannot profile {', '.join(unknown)}", file=sys.stderr)
        return 2
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None and not options.cprofile:
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
        personas = data.personas(options.personas)
        seeded = asyncio.run(seed_database(uri, DB_NAME, personas, key=not options.anonymous))
        token = seeded.token
        subject = None
        for name in names:
            requests = requests_for(name, seeded.ids, seeded.labelled)
            heading = (
                f"## {name}\n\n{scenarios.DESCRIPTIONS[name]}; {options.personas:,} personas, "
                f"{options.connections} connections, {options.duration:g} s"
            )
            if options.cprofile:
                stats = options.output_dir / f"{name}.cprofile"
                count, cpu = measure_cprofiled(uri, requests, options, work_dir, stats, token)
                body = cprofile_summary(stats, count, options.top)
                method = "cProfile (CPU clock)"
            else:
                assert py_spy is not None
                if subject is None:
                    subject = start_subject(uri, DB_NAME, work_dir, token)
                    stack.callback(subject.stop)
                    subject.wait_ready("/readyz")
                raw = options.output_dir / f"{name}.raw.txt"
                count, cpu = record(py_spy, subject, requests, options, raw)
                body = summary(Profile.read(raw), options.top)
                method = (
                    f"py-spy at {options.rate}/s{' --native' if options.native else ''}"
                    f"{' --gil' if options.gil else ''}"
                )
            text = (
                f"{heading}, {method}: {count:,} requests, {cpu * 1000 / max(count, 1):.2f} ms "
                f"of server CPU per request (/proc).\n\n{body}\n"
            )
            suffix = "cprofile" if options.cprofile else "py-spy"
            (options.output_dir / f"{name}.{suffix}.md").write_text(text)
            print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
