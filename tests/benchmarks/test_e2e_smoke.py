"""Smoke test of ``python -m benchmarks.e2e_run``: in its quick mode (two alternated rounds of
a short real ``portal-load run`` and a short stock Locust run) it prints every round, the
median ratio, the CPU per request of each process group and the per-core table, and writes
the same figures to its JSON file. Speed is not asserted here; the figures belong in
benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path("/proc/self/stat").exists(), reason="the benchmark reads CPU times from /proc"
    ),
]


@pytest.mark.timeout(300)
def test_e2e_run_alternates_rounds_and_prints_ratio_cpu_and_cores(tmp_path: Path) -> None:
    out_json = tmp_path / "e2e.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.e2e_run", "--quick", "--json", str(out_json)],
        cwd=ROOT, capture_output=True, text=True, timeout=270, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    report = json.loads(out_json.read_text())

    # Alternated: stock then ours in each round, every round printed with its ratio.
    labels = re.findall(r"^(stock|ours) (\d) ", out, re.M)
    assert labels == [("stock", "1"), ("ours", "1"), ("stock", "2"), ("ours", "2")], out
    assert len(report["rounds"]) == 2
    for r in report["rounds"]:
        assert r["ours"] > 0 and r["stock"] > 0
        assert r["ratio"] == pytest.approx(r["ours"] / r["stock"])
        assert r["cpu_ratio"] == pytest.approx(r["stock_cpu_us"] / r["ours_cpu_us"])
        assert re.search(rf"^round {r['round']}: ours \d+ req/s, stock \d+ req/s", out, re.M)
    assert report["ratio"] == pytest.approx(statistics.median(r["ratio"] for r in report["rounds"]))
    assert re.search(r"^ratio by CPU per request \(stock's / ours, all processes\): [\d.]+",
                     out, re.M), out  # fmt: skip
    ratio = re.search(r"^ratio ours/stock: ([\d.]+) \(median of 2 rounds", out, re.M)
    assert ratio and float(ratio.group(1)) == pytest.approx(report["ratio"], abs=0.01), out
    # The same rule on both sides.
    assert f"1 server process + {report['workers']} Locust workers + 1 master" in report["rule"]
    for ours, stock in zip(report["ours_steps"], report["stock_steps"], strict=True):
        assert ours["users"] == stock["users"] and ours["workers"] == stock["workers"]

    # CPU per request of every process group, from /proc: none measured nothing.
    for group in ("mock", "worker", "master", "harness"):
        assert report["cpu_us"][group] > 0, report["cpu_us"]
    assert re.search(r"^CPU per request, ours: mock \d+ us, worker \d+ us, master \d+ us, "
                     r"harness \d+ us", out, re.M), out  # fmt: skip
    assert report["stock_cpu_us"]["mock"] > 0 and report["stock_cpu_us"]["worker"] > 0

    # The per-core table: req/s per core = 1 / CPU-seconds per request; cores rounded up.
    table = report["per_core"]
    assert table["rps"] == pytest.approx(9100)
    for group in ("mock", "worker"):
        us = report["cpu_us"][group]
        assert table[f"{group}_rps_per_core"] == pytest.approx(1e6 / us)
        assert table[f"{group}_cores"] == math.ceil(9100 * us / 1e6)
    assert table["cores"] == table["mock_cores"] + table["worker_cores"]
    cores = re.search(
        r"^national peak 7000 req/s x 1.3 = 9100 req/s needs (\d+) mock cores \([\d.]+\) \+ "
        r"(\d+) worker cores \([\d.]+\) = (\d+) cores",
        out,
        re.M,
    )
    assert cores, out
    assert [int(g) for g in cores.groups()] == [
        table["mock_cores"], table["worker_cores"], table["cores"]
    ]  # fmt: skip
    assert re.search(r"^  mock +\d+ us/request -> +\d+ req/s per core", out, re.M), out
    assert re.search(r"^  worker +\d+ us/request -> +\d+ req/s per core", out, re.M), out
