"""``portal-load capacity`` end to end against the embedded mock's simulated backend, whose
capacity and latency curve are known: M/M/c with c servers and exponential service times.

Kept short (three searches, about 130 s together on 2 cores) and at capacities the machine drives
with one Locust worker while it also runs the mock, so the generator is not the bottleneck
(each search fails with exit code 4 if a worker went above 90 % CPU or dropped arrivals).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.capacity.queueing import mean_response_s

pytestmark = [pytest.mark.slow, pytest.mark.timeout(250)]  # a search, and one retry
EXIT_GENERATOR_FLAGGED = 4
HERE = Path(__file__).parent
CAPACITY_TOLERANCE = 0.10  # measured maximum within 10 % of servers / mean service time
# Latency below the knee: the M/M/c mean plus a constant overhead (client, HTTP and event-loop
# time outside the simulated pool), estimated at the lightest step. The queue itself makes a
# short window's mean noisy: simulated M/M/4 (20 ms) means over 8 s windows vary by 6 % at
# utilisation 0.225 (the reference), 6 % at 0.45 and 9 % at 0.675 (one standard deviation), so
# a step's difference from the reference has a spread of ~2-3 ms; each step must agree within
# 25 % of the theory or 5 ms, whichever is larger (about 2.5 standard deviations), and the
# shared 2-core machine adds its own jitter.
MMC_REL_TOLERANCE = 0.25
MMC_ABS_TOLERANCE_MS = 5.0
BELOW_KNEE_UTILISATION = 0.8


def _search(out: Path, config: str, flags: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "capacity", "--mock-config", str(HERE / config),
         "--workers", "1", "--slo", "p95<300ms,errors<1%", "--settle", "1s", "--max-hold", "10s",
         "--out", str(out), *flags],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _capacity(tmp_path: Path, config: str, *flags: str) -> tuple[dict[str, Any], Path, str]:
    out = tmp_path / "results"
    proc = _search(out, config, flags)
    if proc.returncode == EXIT_GENERATOR_FLAGGED:
        # The machine is shared: when other work starves the load generator, the search says
        # so (exit 4) and its figures are not evidence either way. Measure once more.
        out = tmp_path / "results-again"
        proc = _search(out, config, flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return json.loads((run_dir / "capacity.json").read_text()), run_dir, proc.stdout


def test_capacity_and_latency_curve_match_mmc_theory(tmp_path: Path) -> None:
    cap, run_dir, output = _capacity(
        tmp_path, "pool-200.toml", "--start", "45", "--step", "45", "--window", "4"
    )
    theory = cap["theory"]
    assert theory["capacity_rps"] == 200.0 and theory["servers"] == 4
    assert abs(cap["max_rps"] / 200.0 - 1) <= CAPACITY_TOLERANCE, cap["steps"]
    assert cap["slo_rps"] is not None and cap["slo_rps"] <= cap["max_rps"]
    knee = cap["knee"]["throughput_rps"]
    assert knee is not None and 0.4 * 200 <= knee <= 200, cap["knee"]
    # Erlang C below the knee.
    below = [
        s for s in cap["steps"]
        if s["steady"] and s["throughput_rps"] * 0.020 / 4 <= BELOW_KNEE_UTILISATION
    ]  # fmt: skip
    assert len(below) >= 3, cap["steps"]

    def mmc_ms(step: dict[str, Any]) -> float:
        return 1000 * mean_response_s(
            servers=4, service_s=0.020, arrival_rps=step["throughput_rps"]
        )

    # The client's own time on top of the queue's. At the first step the window's mean is of a
    # few hundred exponential 20 ms service times: its standard error is about 1 ms, so the
    # measured mean may sit a little under theory; 3.5 ms is over three standard errors.
    overhead = below[0]["mean_ms"] - mmc_ms(below[0])
    assert -3.5 <= overhead <= 10.0, below[0]
    for step in below[1:]:
        expected = mmc_ms(step) + overhead
        allowed = max(MMC_REL_TOLERANCE * mmc_ms(step), MMC_ABS_TOLERANCE_MS)
        assert abs(step["mean_ms"] - expected) <= allowed, (step, expected)
    # What the search leaves behind.
    assert "maximum throughput" in output and str(run_dir / "report.html") in output
    assert "loadgen_capacity_max_rps{" in (run_dir / "capacity.prom").read_text()
    report = (run_dir / "report.html").read_text()
    assert 'data-chart="latency-vs-throughput"' in report and "M/M/c theory" in report
    assert (run_dir / "summary.json").is_file() and (run_dir / "timeseries.csv").is_file()
    assert cap["projection"]["instances"] >= 7000 / cap["slo_rps"]


def test_higher_capacity_is_found_within_ten_percent(tmp_path: Path) -> None:
    cap, _, _ = _capacity(
        tmp_path, "pool-500.toml", "--start", "125", "--step", "125", "--window", "2"
    )
    assert cap["theory"]["capacity_rps"] == 500.0
    assert abs(cap["max_rps"] / 500.0 - 1) <= CAPACITY_TOLERANCE, cap["steps"]
    assert cap["usl"] is not None and cap["usl"]["points"] >= 3
    assert cap["stop_reason"]


def test_user_steps_saturate_at_the_same_capacity(tmp_path: Path) -> None:
    # Closed model: 2, 6 and 10 request loops against 4 servers of 20 ms. Throughput grows
    # with users until the pool saturates; the USL is fitted with N = users.
    cap, _, output = _capacity(
        tmp_path, "pool-200.toml", "--mode", "users", "--start", "2", "--step", "4",
        "--window", "2", "--max-steps", "3",
    )  # fmt: skip
    assert cap["mode"] == "users"
    assert [s["users"] for s in cap["steps"]][:2] == [2.0, 6.0]
    assert abs(cap["max_rps"] / 200.0 - 1) <= CAPACITY_TOLERANCE, cap["steps"]
    first = cap["steps"][0]
    # Two users and four servers: nobody waits, so each user's loop runs at 1 / R.
    assert first["throughput_rps"] == pytest.approx(2000.0 / first["mean_ms"], rel=0.1)
    assert "users" in output
