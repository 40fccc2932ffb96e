"""Smoke test of ``python -m benchmarks.mock_vs_hello``: the benchmark runs end to end in a
very short mode and reports both figures and their ratio. Speed is not asserted here; the
figures belong in benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_NON_2XX_SHARE = 0.01

pytestmark = [
    pytest.mark.slow,
    pytest.mark.needs("wrk", "taskset"),
]


@pytest.mark.timeout(180)
def test_mock_vs_hello_prints_both_figures_and_a_ratio(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.mock_vs_hello",
            "--duration", "2", "--rounds", "1", "--warmup", "0", "--soak-seconds", "0",
            "--citizens", "16", "--json", str(out_json),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    mock_rps = re.search(r"^mock req/s: (\d+)", out, re.M)
    hello_rps = re.search(r"^hello req/s: (\d+)", out, re.M)
    ratio = re.search(r"^ratio mock/hello: ([\d.]+)", out, re.M)
    assert mock_rps and hello_rps and ratio, out
    assert int(mock_rps.group(1)) > 0 and int(hello_rps.group(1)) > 0
    assert float(ratio.group(1)) == pytest.approx(
        int(mock_rps.group(1)) / int(hello_rps.group(1)), rel=0.01
    )
    assert re.search(r"^mock RSS: [\d.]+ MiB", out, re.M), out

    report = json.loads(out_json.read_text())
    assert report["mock_requests"] > 0
    assert report["mock_non_2xx"] <= MAX_NON_2XX_SHARE * report["mock_requests"], report["problems"]
    assert report["hello_non_2xx"] == 0
    # The mix really logged citizens in and paid charges, not only browsed the catalog.
    sent = report["sent"]
    for kind in ("authorize", "login", "token", "catalog_detail", "app_submit", "pay"):
        assert sent.get(kind, 0) > 0, sent


@pytest.mark.timeout(180)
def test_mock_workers_prints_the_rate_per_process_and_the_processes_for_the_peak(
    tmp_path: Path,
) -> None:
    out_json = tmp_path / "workers.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.mock_workers", "--workers", "1",
            "--duration", "2", "--rounds", "1", "--warmup", "0", "--citizens", "16",
            "--json", str(out_json),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = json.loads(out_json.read_text())["runs"]
    assert run["requests"] > 0 and run["non_2xx"] <= MAX_NON_2XX_SHARE * run["requests"]
    assert run["rps_per_process"] == pytest.approx(1e6 / run["cpu_us_per_request"], rel=0.01)
    assert run["processes_for_peak"] >= 1
    assert re.search(r"^--workers 1: [\d,]+ req/s measured", done.stdout, re.M), done.stdout


@pytest.mark.timeout(240)
def test_client_vs_fasthttp_prints_both_clients_and_the_steady_window() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.client_vs_fasthttp", "--users", "5",
         "--seconds", "6", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=200, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for side in ("StockCitizen", "OursCitizen"):
        row = re.search(
            rf"^round 1 {side} +(\d+) req/s +(\d+) req/CPU-s, steady +(\d+) req/CPU-s "
            r"\((\d+) requests, (\d+) failures\)",
            out,
            re.M,
        )
        assert row, out
        assert int(row.group(1)) > 0 and int(row.group(3)) > 0 and int(row.group(4)) > 0
        assert int(row.group(5)) == 0
    steady = re.search(r"^steady window: +([\d.]+) vs ([\d.]+) us CPU per request", out, re.M)
    assert steady and float(steady.group(1)) > 0 and float(steady.group(2)) > 0, out
    assert re.search(r"^median of rounds: +[\d.]+x req/s +[\d.]+x req/CPU-s", out, re.M), out
