"""Faults of a run, caused as they happen: the harness killed, the target killed, the Locust
master killed. Real processes on loopback; each test reproduces one fault of a run."""

from __future__ import annotations

import os
import re
import signal
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
    only_run,
    portal_load,
    require_tool,
    summary,
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


def _child(tree: dict[int, int], part: str) -> int:
    (pid,) = [pid for pid in tree if part in cmdline(pid)]
    return pid


@pytest.mark.timeout(240)
def test_a_target_killed_mid_run_marks_the_run_degraded_with_the_time(tmp_path: Path) -> None:
    with portal_load(
        "run", "--duration", "14s", "--workers", "1", "--out", str(tmp_path), *LIGHT
    ) as proc:
        wait_for(lambda: load_flows(tmp_path), 120, "load flowing")
        mock = _child(descendants(proc.pid), "mock_portal")
        os.kill(mock, signal.SIGKILL)
        killed_at = time.time()
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, output
    assert "the embedded mock exited (signal 9)" in output  # said when it happened
    result = summary(only_run(tmp_path))
    assert result["status"] == "degraded"
    (lost,) = [f for f in result["checks"]["faults"] if f["kind"] == "target_lost"]
    assert killed_at - 0.5 <= lost["at_unix_s"] <= killed_at + 5
    assert lost["at_s"] == pytest.approx(killed_at - result["start_unix_s"], abs=5)
    assert any("the embedded mock exited" in f and "s into the run" in f
               for f in result["checks"]["flags"])  # fmt: skip
    assert result["checks"]["counts_agree"] is None  # its count can no longer be read


@pytest.mark.timeout(240)
def test_a_host_that_goes_away_marks_the_run_degraded_with_the_time(tmp_path: Path) -> None:
    mock = subprocess.Popen(
        [sys.executable, "-m", "mock_portal", "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(tmp_path / "mock-data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert mock.stdout is not None
        ready = re.search(r"ready on (http://\S+) ", mock.stdout.readline())
        assert ready, "the mock did not start"
        out = tmp_path / "results"
        with portal_load(
            "run", "--host", ready.group(1), "--duration", "16s", "--workers", "1",
            "--out", str(out), *LIGHT,
        ) as proc:  # fmt: skip
            wait_for(lambda: load_flows(out), 120, "load flowing")
            mock.kill()
            killed_at = time.time()
            output, _ = proc.communicate(timeout=120)
    finally:
        mock.kill()
        mock.communicate()
    assert proc.returncode == 4, output
    assert f"the target stopped answering ({ready.group(1)})" in output
    result = summary(only_run(out))
    assert result["status"] == "degraded"
    (lost,) = [f for f in result["checks"]["faults"] if f["kind"] == "target_lost"]
    assert killed_at - 0.5 <= lost["at_unix_s"] <= killed_at + 3  # the first failed look
    assert "counts_agree" not in result["checks"]  # no mock of its own to ask


@pytest.mark.timeout(240)
def test_a_failure_ratio_above_the_campaign_s_limit_is_a_flag(tmp_path: Path) -> None:
    mock_config = tmp_path / "mock.toml"
    mock_config.write_text('[faults.routes."*"]\nerror = { status = 500, rate = 0.3 }\n')
    out = tmp_path / "results"
    with portal_load(
        "run", "--duration", "6s", "--workers", "1", "--mock-config", str(mock_config),
        "--max-failure-ratio", "10%", "--out", str(out), *LIGHT,
    ) as proc:  # fmt: skip
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, output
    checks = summary(only_run(out))["checks"]
    assert checks["max_failure_ratio"] == 0.1
    assert checks["failure_ratio"] > 0.1
    assert any("above max_failure_ratio (10.0%)" in f for f in checks["flags"]), checks


@pytest.mark.timeout(240)
def test_a_killed_master_leaves_results_that_say_what_they_cover(tmp_path: Path) -> None:
    with portal_load(
        "run", "--duration", "40s", "--workers", "1", "--out", str(tmp_path), *LIGHT
    ) as proc:
        wait_for(lambda: summary(only_run(tmp_path))["total"]["count"] > 0, 120, "load")
        time.sleep(5)  # a few intervals reported
        master = _child(descendants(proc.pid), "--master-bind-port")
        os.kill(master, signal.SIGKILL)
        killed_at = time.time()
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, output
    assert "the Locust master died (signal 9)" in output
    result = summary(only_run(tmp_path))
    assert result["status"] == "partial" and result["final"] is False
    covers = result["covers_until_unix_s"]
    # Written after every interval the worker reported: at most an interval (2 s) and a
    # tick (1 s) old, and no claim beyond what it holds.
    assert killed_at - 4.0 <= covers <= killed_at
    assert result["end_unix_s"] == covers
    assert result["duration_s"] == pytest.approx(covers - result["start_unix_s"], abs=0.01)
    (flag,) = [f for f in result["checks"]["flags"] if "master died" in f]
    assert f"cover its first {covers - result['start_unix_s']:.0f} s" in flag
