"""A results folder with every file a report reads, built from known numbers."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest

from harness.campaign.loader import capacity_slo
from harness.capacity import analysis as cm
from scenarios.telemetry import hdr
from tests.capacity.test_capacity_model import mmc_steps

RUN_ID = "20260101T000000Z-synthetic"
TIMESERIES_COLUMNS = (
    *("interval_start_unix_s", "duration_s", "requests", "failures", "rps", "failures_per_s"),
    *("p50_ms", "p95_ms", "p99_ms", "users", "workers"),
)


def _row(name: str, method: str, count: int, failures: int, p50: float) -> dict[str, object]:
    return {
        "name": name, "method": method, "count": count, "failures": failures,
        "failure_ratio": failures / count if count else 0.0, "rps": count / 60.0,
        "min_ms": p50 / 4, "mean_ms": p50 * 1.2, "max_ms": p50 * 20, "p50_ms": p50,
        "p90_ms": p50 * 2, "p95_ms": p50 * 3, "p99_ms": p50 * 6, "p999_ms": p50 * 12,
        "failures_by_reason": {"HTTPStatusError: 503": failures} if failures else {},
    }  # fmt: skip


@pytest.fixture
def synthetic_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "results" / RUN_ID
    run_dir.mkdir(parents=True)
    (run_dir / "campaign.toml").write_text('[campaign]\nname = "synthetic"\n')
    (run_dir / "provenance.json").write_text(
        json.dumps(
            {
                "git": {"revision": "0" * 40, "dirty": False},
                "host": "ci",
                "cores": 2,
                "python": "3.11",
                "seed": 1,
                "packages": {"locust": "2"},
            }
        )
    )
    requests = [
        _row("/api/v1/services", "GET", 6000, 3, 8.0),
        _row("/api/v1/me", "GET", 2500, 0, 5.0),
        _row("/oauth2/login", "POST", 900, 12, 25.0),
    ]
    journeys = [
        _row("pay", "JOURNEY", 400, 20, 900.0),
        _row("pay/1 charges", "FUNNEL", 390, 0, 200.0),
        _row("pay/2 paid", "FUNNEL", 310, 0, 600.0),
        _row("pay/3 receipt", "FUNNEL", 300, 0, 800.0),
        _row("login", "JOURNEY", 900, 12, 300.0),
        _row("login/1 challenge", "FUNNEL", 900, 0, 50.0),
        _row("login/2 token", "FUNNEL", 888, 0, 250.0),
    ]
    summary = {
        "schema": 1, "run_id": RUN_ID, "status": "complete", "final": True,
        "start_time": "2026-01-01T00:00:00+00:00", "start_unix_s": 1_767_225_600.0,
        "duration_s": 60.0, "interval_s": 2.0, "requests": requests,
        "total": {**_row("total", "ALL", 9400, 15, 7.0)}, "journeys": journeys,
        "corrected": [], "flags": [], "open_model": None,
    }  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary))
    rng = random.Random(1)
    h = hdr.new_histogram()
    for _ in range(9400):
        hdr.record_ms(h, rng.lognormvariate(math.log(7.0), 0.8))
    (run_dir / "histograms.json").write_text(json.dumps({"schema": 1, "total": hdr.encode(h)}))
    with open(run_dir / "timeseries.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TIMESERIES_COLUMNS)
        for i in range(30):
            rps = 40 + 5 * i
            w.writerow([1_767_225_600 + 2 * i, 2.0, 2 * rps, i % 3, rps, (i % 3) / 2,
                        6 + i * 0.1, 15 + i * 0.5, 30 + i, 10 + i, 2])  # fmt: skip
    steps = mmc_steps([80, 160, 240, 320, 360, 440])
    analysis = cm.analyse(
        steps,
        slo=capacity_slo("p95<100ms,errors<1%", "slo"),
        pool={
            "service": "catalog",
            "servers": 4,
            "service_time_kind": "exponential",
            "service_time_ms": 10.0,
            "capacity_rps": 400.0,
            "processes": 1,
        },
    )
    capacity = {"schema": 1, "run_id": RUN_ID, "kind": "capacity", "steps": steps,
                "stop_reason": "throughput stopped growing", "plan": {}, **analysis}  # fmt: skip
    (run_dir / "capacity.json").write_text(json.dumps(capacity, allow_nan=False))
    return run_dir
