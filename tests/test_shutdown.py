"""The shutdown plan and its last resort."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from personas.shutdown import shutdown_plan


@pytest.mark.parametrize("bound", [1.0, 4.0, 10.0, 60.0])
def test_each_stage_ends_before_the_next_and_all_within_the_bound(bound: float) -> None:
    plan = shutdown_plan(bound)
    assert 0 < plan.drain < plan.database < plan.bound == bound
    assert plan.drain <= plan.graceful <= plan.drain + 1
    assert plan.drain >= bound * 0.6
    assert plan.graceful + plan.close <= plan.database or bound < 4
    assert plan.close > 0


def test_the_default_bound_leaves_requests_six_seconds() -> None:
    plan = shutdown_plan(10.0)
    assert (plan.drain, plan.graceful, plan.close, plan.database) == (6.0, 7, 1.0, 9.5)


WATCHED = """\
import time
from personas.shutdown import Watchdog
watchdog = Watchdog(0.3, lambda: print("killing what is left", flush=True))
watchdog.start()
time.sleep(30)
"""


def test_the_watchdog_ends_a_shutdown_that_hangs() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", WATCHED], capture_output=True, text=True, timeout=30, check=False
    )
    assert time.monotonic() - started < 0.3 + 10
    assert result.returncode == 1
    assert result.stdout == "killing what is left\n"
    assert "did not complete within 0.3 s" in result.stderr
