"""``portal-load run`` end to end: real mock, real Locust master and workers, on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# Short and light: these tests check the plumbing, not the throughput.
LIGHT = ["--users", "8", "--spawn-rate", "8", "--think-scale", "0.05", "--no-tty"]


@contextmanager
def _portal_load(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``portal-load ARGS`` as a child; whatever the test does, it is stopped at the end the
    way a user stops it (SIGTERM: the harness stops the mock and Locust it started, which a
    SIGKILL would leave running), and killed only if that does not end it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _run_dir(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _wait_for(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.timeout(300)
def test_default_command_writes_a_complete_results_folder(tmp_path: Path) -> None:
    with _portal_load(
        "run", "--duration", "8s", "--workers", "1", "--out", str(tmp_path), *LIGHT
    ) as proc:
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    run_dir = _run_dir(tmp_path)
    for name in ("campaign.toml", "provenance.json", "summary.json", "histograms.json",
                 "timeseries.csv", "failures.csv", "locust_stats.csv"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    summary = _summary(run_dir)
    assert summary["status"] == "complete"
    assert summary["total"]["count"] > 50
    assert summary["total"]["failures"] == 0, summary["total"]["failures_by_reason"]
    assert summary["checks"]["counts_agree"] is True, summary["checks"]
    names = {r["name"] for r in summary["requests"]}
    assert {"/oauth2/authorize", "/api/v1/me", "/api/v1/services/[code]"} <= names
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["packages"]["locust"]
    assert "results:" in output and str(run_dir) in output
    shown = subprocess.run([sys.executable, "-m", "harness.cli", "show", "latest", "--out",
                            str(tmp_path)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shown.returncode == 0
    assert "/api/v1/me" in shown.stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize("when", ["under load", "before the load starts"])
def test_sigterm_leaves_partial_results_that_parse(tmp_path: Path, when: str) -> None:
    with _portal_load(
        "run", "--duration", "60s", "--workers", "1", "--out", str(tmp_path), *LIGHT
    ) as proc:
        if when == "under load":
            _wait_for(lambda: any(tmp_path.glob("*/summary.json")), 60)
            _wait_for(lambda: _summary(_run_dir(tmp_path))["total"]["count"] > 0, 30)
        else:  # the run's folder exists; the mock and Locust are still starting
            _wait_for(lambda: any(tmp_path.glob("*/campaign.toml")), 60)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 3, output
    summary = _summary(_run_dir(tmp_path))
    assert summary["status"] == "partial"
    assert summary["duration_s"] < 60
    if when == "under load":
        assert summary["total"]["count"] > 0
    else:
        assert summary["total"]["count"] == 0


@pytest.mark.timeout(300)
def test_a_killed_worker_marks_the_run_degraded(tmp_path: Path) -> None:
    with _portal_load(
        "run", "--duration", "25s", "--workers", "2", "--out", str(tmp_path), *LIGHT
    ) as proc:
        _wait_for(lambda: any(tmp_path.glob("*/summary.json")), 60)
        _wait_for(lambda: _summary(_run_dir(tmp_path))["workers"]["reported"] >= 2, 30)
        workers = subprocess.run(["pgrep", "-f", f"locust.*--worker.*{_master_port(tmp_path)}"],
                                 capture_output=True, text=True).stdout.split()  # fmt: skip
        assert len(workers) == 2, workers
        os.kill(int(workers[0]), signal.SIGKILL)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 4, output
    summary = _summary(_run_dir(tmp_path))
    assert summary["status"] == "degraded"
    assert summary["degraded"]
    assert "lost" in output


def _master_port(out: Path) -> str:
    log = (_run_dir(out) / "logs").glob("locust-worker-0.log")
    del log
    ps = subprocess.run(["pgrep", "-af", "locust.*--master-bind-port"], capture_output=True,
                        text=True).stdout  # fmt: skip
    for line in ps.splitlines():
        if str(out) in line:
            args = line.split()
            return args[args.index("--master-bind-port") + 1]
    raise AssertionError("no master of this run")


@pytest.mark.timeout(300)
def test_open_model_run_counts_every_request(tmp_path: Path) -> None:
    args = ["--arrival-rate", "15", "--duration", "8s", "--workers", "2", "--arrival-poisson",
            "--open-pool-size", "200", "--open-connections", "8", "--think-scale", "0.05",
            "--no-tty", "--out", str(tmp_path)]  # fmt: skip
    with _portal_load("run", *args) as proc:
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    run_dir = _run_dir(tmp_path)
    summary = _summary(run_dir)
    assert summary["open_model"]["started"] > 0
    load = tomllib.loads((run_dir / "campaign.toml").read_text())["load"]
    assert (load["poisson"], load["pool_size"], load["connections"]) == (True, 200, 8)
    assert summary["checks"]["counts_agree"] is True, summary["checks"]
    checks = summary["checks"]
    assert abs(checks["loadgen_request_count"] - checks["mock_request_count"]) <= (
        summary["open_model"]["started"] - summary["open_model"]["completed"] + 10
    )
