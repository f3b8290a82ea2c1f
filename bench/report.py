"""Results: the machine they were measured on, results.json, and the printed table."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.drivers import Measurement
from bench.scenarios import APOLLO, PAGE50_VS_PAGE1, RSS_GROWTH, TARGETS

SOFTWARE = (
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "strawberry-graphql",
    "graphql-core",
    "pymongo",
    "SecantusDB",
    "orjson",
)


def _proc_value(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        return None
    return None


def machine(driver: str) -> dict[str, Any]:
    memory = _proc_value("/proc/meminfo", "MemTotal")
    versions: dict[str, str] = {}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu": _proc_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory_gib": None if memory is None else round(int(memory.split()[0]) / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "driver": driver,
        "software": versions,
    }


def median(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return None if not known else round(statistics.median(known), 3)


def side_median(rounds: Sequence[dict[str, Measurement]], role: str, value: str) -> float | None:
    """The median over the rounds of one side's `value` (a Measurement attribute)."""
    return median([getattr(measured[role], value) for measured in rounds if role in measured])


def aggregate(rounds: Sequence[dict[str, Measurement]]) -> dict[str, Any]:
    """Medians over the rounds of the subject's and the floor's req/s, p50, p99 and CPU
    milliseconds per request (their own, and the database's while they ran)."""

    def side(role: str, value: str) -> float | None:
        return side_median(rounds, role, value)

    return {
        "subject_rps": side("subject", "rps"),
        "floor_rps": side("floor", "rps"),
        "p50_ms": side("subject", "p50_ms"),
        "p99_ms": side("subject", "p99_ms"),
        "floor_p50_ms": side("floor", "p50_ms"),
        "floor_p99_ms": side("floor", "p99_ms"),
        "subject_cpu_ms": side("subject", "cpu_ms"),
        "floor_cpu_ms": side("floor", "cpu_ms"),
        "database_cpu_ms": {role: side(role, "database_cpu_ms") for role in ("subject", "floor")},
        "errors": {
            role: sum(measured[role].error_count for measured in rounds)
            for role in ("subject", "floor")
        },
    }


def quotient(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(float(numerator) / float(denominator), 3)


def peer_summary(
    rounds: Sequence[dict[str, Measurement]], summary: dict[str, Any]
) -> dict[str, Any]:
    """The Apollo peer's medians, and the subject's CPU per request and req/s over its."""

    def side(value: str) -> float | None:
        return side_median(rounds, APOLLO, value)

    errors = sum(measured[APOLLO].error_count for measured in rounds if APOLLO in measured)
    cpu_ms, rps = side("cpu_ms"), side("rps")
    return {
        "status": "ok",
        "reason": None,
        "same_answer": True,
        "rps": rps,
        "p50_ms": side("p50_ms"),
        "p99_ms": side("p99_ms"),
        "cpu_ms": cpu_ms,
        "database_cpu_ms": side("database_cpu_ms"),
        "cpu_ratio": quotient(summary["subject_cpu_ms"], cpu_ms),
        "rps_ratio": quotient(summary["subject_rps"], rps),
        "errors": errors,
        "valid": errors == 0,
    }


def ratio(name: str, summary: dict[str, Any]) -> float | None:
    """subject/floor req/s; for page 50 vs page 1, page-50 p50 over page-1 p50 latency."""
    if name == PAGE50_VS_PAGE1:
        numerator, denominator = summary["p50_ms"], summary["floor_p50_ms"]
    else:
        numerator, denominator = summary["subject_rps"], summary["floor_rps"]
    return quotient(numerator, denominator)


# ---------------------------------------------------------------------------
# The table


def shorten(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _verdict(met: bool | None, status: str, valid: bool = True) -> str:
    if status != "ok":
        return status.upper()
    if not valid:
        return "ERRORS"
    return {True: "met", False: "NOT MET", None: "-"}[met]


HEADER = (
    f"{'scenario':<24} {'subject req/s':>13} {'floor req/s':>11} {'ratio':>6} {'target':>8} "
    f"{'verdict':>8} {'cpu ms':>7} {'floor cpu':>9} {'cpu ratio':>9} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'floor p50':>9} {'floor p99':>9} {'errors':>7}"
)
APOLLO_HEADER = (
    f"{'vs Apollo Server':<24} {'cpu ms':>7} {'apollo cpu':>10} {'cpu ratio':>9} "
    f"{'subject req/s':>13} {'apollo req/s':>12} {'ratio':>6} {'apollo p50':>10} "
    f"{'apollo p99':>10} {'errors':>7}"
)
CPU_HEADER = f"{'cpu target':<24} {'versus':>7} {'cpu ratio':>9} {'target':>8} {'verdict':>8}"


def apollo_table(results: dict[str, Any], notes: list[str]) -> list[str]:
    """The GraphQL scenarios against the Apollo peer, or why it did not run."""
    peer = results.get("apollo")
    if peer is None:
        return []
    if peer["status"] != "ok":
        return [f"Apollo Server peer: {peer['status']}: {shorten(peer['reason'] or '')}"]
    lines = [APOLLO_HEADER, "-" * len(APOLLO_HEADER)]
    for row in results["scenarios"]:
        side = row.get(APOLLO)
        if side is None:
            continue
        if side["status"] != "ok":
            lines.append(f"{row['name']:<24} {side['status'].upper():>7}")
            notes.append(f"{row['name']} (apollo): {side['status']}: {shorten(side['reason'])}")
            continue
        lines.append(
            f"{row['name']:<24} {_number(row['subject_cpu_ms'], 2):>7} "
            f"{_number(side['cpu_ms'], 2):>10} {_number(side['cpu_ratio'], 2):>9} "
            f"{_number(row['subject_rps']):>13} {_number(side['rps']):>12} "
            f"{_number(side['rps_ratio'], 2):>6} {_number(side['p50_ms']):>10} "
            f"{_number(side['p99_ms']):>10} {side['errors']:>7}"
        )
        if not side["valid"]:
            notes.append(
                f"{row['name']} (apollo): requests failed under load ({side['errors']}); "
                "see apollo.log (--work-dir keeps it)"
            )
    return lines


def cpu_targets(results: dict[str, Any]) -> list[str]:
    lines = [CPU_HEADER, "-" * len(CPU_HEADER)]
    for row in results["scenarios"]:
        target = row.get("cpu_target")
        if target is None:
            continue
        verdict = "-" if target["met"] is None else _verdict(target["met"], "ok")
        lines.append(
            f"{row['name']:<24} {target['versus']:>7} {_number(target['ratio'], 2):>9} "
            f"{target['target']:>8} {verdict:>8}"
        )
    return lines if len(lines) > 2 else []


def table(results: dict[str, Any]) -> str:
    lines = [HEADER, "-" * len(HEADER)]
    notes: list[str] = []
    for row in results["scenarios"]:
        name = row["name"]
        label = name + ("*" if name == PAGE50_VS_PAGE1 else "")
        errors = row.get("errors") or {}
        lines.append(
            f"{label:<24} {_number(row['subject_rps']):>13} {_number(row['floor_rps']):>11} "
            f"{_number(row['ratio'], 2):>6} {TARGETS[name]!s:>8} "
            f"{_verdict(row['met'], row['status'], row['valid']):>8} "
            f"{_number(row['subject_cpu_ms'], 2):>7} {_number(row['floor_cpu_ms'], 2):>9} "
            f"{_number(row['cpu_ratio'], 2):>9} "
            f"{_number(row['p50_ms']):>8} {_number(row['p99_ms']):>8} "
            f"{_number(row['floor_p50_ms']):>9} "
            f"{_number(row['floor_p99_ms']):>9} "
            f"{sum(errors.values()) if errors else '-':>7}"
        )
        if row["status"] != "ok":
            notes.append(f"{name}: {row['status']}: {shorten(row['reason'])}")
        elif not row["valid"]:
            notes.append(
                f"{name}: requests failed under load ({errors}); the numbers are not "
                "comparable: see the servers' logs (--work-dir keeps them)"
            )
        elif row.get("same_answer") is False:
            notes.append(f"{name}: the subject and the floor answered differently")
    rss = results.get("rss")
    if rss is not None:
        growth = results["rss_growth_mib"]
        verdict = _verdict(rss.get("met"), rss["status"], not rss.get("errors"))
        shown = "-" if growth is None else f"{growth:.1f} MiB"
        detail = ""
        if rss["status"] == "ok":
            detail = (
                f"  ({rss['completed']:,} requests over {rss['distinct_queries']:,} query texts, "
                f"RSS {rss['before_mib']:.1f} -> {rss['after_mib']:.1f} MiB)"
            )
        lines.append(
            f"{RSS_GROWTH:<24} {shown:>13} {'':>11} {'':>6} {TARGETS[RSS_GROWTH]!s:>8} "
            f"{verdict:>8}{detail}"
        )
        if rss["status"] != "ok":
            notes.append(f"{RSS_GROWTH}: {rss['status']}: {shorten(rss['reason'])}")
        if rss["status"] == "ok" and rss["errors"]:
            notes.append(f"{RSS_GROWTH}: requests failed ({rss['errors']}): see the server's log")
        if rss["status"] == "ok" and not rss["complete"]:
            notes.append(
                f"{RSS_GROWTH}: only {rss['completed']:,} of {rss['requests']:,} requests were "
                f"answered within {rss['max_seconds']:g} s (--rss-max-seconds)"
            )
    if any(row["name"] == PAGE50_VS_PAGE1 for row in results["scenarios"]):
        notes.insert(
            0,
            "* page50_vs_page1: 'subject' = page 50, 'floor' = page 1 of the same listing, "
            "both on the subject; ratio = p50 latency page 50 / page 1",
        )
    peer_lines = apollo_table(results, notes)
    target_lines = cpu_targets(results)
    options = results["options"]
    footer = (
        f"{results['personas']:,} personas; {options['rounds']} rounds x {options['duration']:g} s "
        f"per side, {options['connections']} connections; driver: {results['machine']['driver']}; "
        "medians over rounds; cpu ms: the server's user + system CPU (its process tree, "
        "/proc) over a timed run / the requests it completed; the server called "
        + ("anonymously" if options.get("anonymous") else "with an API key")
    )
    blocks = [lines]
    for block in (peer_lines, target_lines):
        if block:
            blocks.append(block)
    body = "\n\n".join("\n".join(block) for block in blocks)
    return "\n".join([body, "", *notes, footer])
