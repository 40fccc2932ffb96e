"""Faults of a run, caused as they happen: the harness killed, the target killed, the Locust
master killed. Real processes on loopback; each test reproduces one fault of a run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness._runs import (
    LIGHT,
    cmdline,
    descendants,
    kill_all,
    load_flows,
    require_tool,
    survivors,
    wait_for,
)

pytestmark = pytest.mark.slow

# Within this many seconds of the harness's death every process it started is gone.
ORPHAN_DEADLINE_S = 10.0


@pytest.mark.timeout(240)
def test_a_killed_harness_leaves_no_process_behind(tmp_path: Path) -> None:
    require_tool("prometheus")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--duration", "60s", "--workers", "1",
         "--mock-workers", "2", "--prometheus", "--out", str(tmp_path), *LIGHT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    tree: dict[int, int] = {}
    try:
        wait_for(lambda: load_flows(tmp_path), 120, "load flowing")
        tree = descendants(proc.pid)
        lines = [cmdline(pid) for pid in tree]
        for part in ("mock_portal", "--master", "--worker", "prometheus"):
            assert any(part in line for line in lines), (part, lines)
        assert sum("mock_portal" in line or "multiprocessing" in line for line in lines) >= 3
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + ORPHAN_DEADLINE_S
        while survivors(tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert survivors(tree) == {}
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_all(tree)
