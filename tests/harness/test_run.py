"""``portal-load run`` end to end: real mock, real Locust master and workers, on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ._runs import LIGHT, only_run, portal_load, wait_for
from ._runs import summary as read_summary

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_default_command_writes_a_complete_results_folder(tmp_path: Path) -> None:
    with portal_load(
        "run", "--duration", "8s", "--workers", "1", "--out", str(tmp_path), *LIGHT
    ) as proc:
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    run_dir = only_run(tmp_path)
    for name in ("campaign.toml", "provenance.json", "summary.json", "histograms.json",
                 "timeseries.csv", "failures.csv", "locust_stats.csv"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    summary = read_summary(run_dir)
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
    with portal_load(
        "run", "--duration", "60s", "--workers", "1", "--out", str(tmp_path), *LIGHT
    ) as proc:
        if when == "under load":
            wait_for(lambda: any(tmp_path.glob("*/summary.json")), 60)
            wait_for(lambda: read_summary(only_run(tmp_path))["total"]["count"] > 0, 30)
        else:  # the run's folder exists; the mock and Locust are still starting
            wait_for(lambda: any(tmp_path.glob("*/campaign.toml")), 60)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 3, output
    summary = read_summary(only_run(tmp_path))
    assert summary["status"] == "partial"
    assert summary["duration_s"] < 60
    if when == "under load":
        assert summary["total"]["count"] > 0
    else:
        assert summary["total"]["count"] == 0


@pytest.mark.timeout(300)
def test_a_killed_worker_marks_the_run_degraded(tmp_path: Path) -> None:
    with portal_load(
        "run", "--duration", "25s", "--workers", "2", "--out", str(tmp_path), *LIGHT
    ) as proc:
        wait_for(lambda: any(tmp_path.glob("*/summary.json")), 60)
        wait_for(lambda: read_summary(only_run(tmp_path))["workers"]["reported"] >= 2, 30)
        workers = subprocess.run(["pgrep", "-f", f"locust.*--worker.*{_master_port(tmp_path)}"],
                                 capture_output=True, text=True).stdout.split()  # fmt: skip
        assert len(workers) == 2, workers
        os.kill(int(workers[0]), signal.SIGKILL)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 4, output
    summary = read_summary(only_run(tmp_path))
    assert summary["status"] == "degraded"
    assert summary["degraded"]
    assert "lost" in output


def _master_port(out: Path) -> str:
    log = (only_run(out) / "logs").glob("locust-worker-0.log")
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
    with portal_load("run", *args) as proc:
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    run_dir = only_run(tmp_path)
    summary = read_summary(run_dir)
    assert summary["open_model"]["started"] > 0
    load = tomllib.loads((run_dir / "campaign.toml").read_text())["load"]
    assert (load["poisson"], load["pool_size"], load["connections"]) == (True, 200, 8)
    assert summary["checks"]["counts_agree"] is True, summary["checks"]
    checks = summary["checks"]
    assert abs(checks["loadgen_request_count"] - checks["mock_request_count"]) <= (
        summary["open_model"]["started"] - summary["open_model"]["completed"] + 10
    )
