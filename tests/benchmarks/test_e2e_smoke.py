"""Smoke test of ``python -m benchmarks.e2e_run``: in its tiny mode (one short step of the real
``portal-load run``, one short stock Locust run) it prints the peak, the side-by-side ratio, the
CPU per request and the per-core projection. Speed is not asserted here; the figures belong in
benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.needs("wrk", "taskset"),
    pytest.mark.skipif(
        not Path("/proc/self/stat").exists(), reason="the benchmark reads CPU times from /proc"
    ),
]


@pytest.mark.timeout(300)
def test_e2e_run_prints_peak_ratio_and_projection(tmp_path: Path) -> None:
    out_json = tmp_path / "e2e.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.e2e_run", "--tiny", "--json", str(out_json)],
        cwd=ROOT, capture_output=True, text=True, timeout=270, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    peak = re.search(r"^peak mixed journeys: (\d+) req/s at (\d+) users", out, re.M)
    stock = re.search(
        r"^stock locust \(--processes 2, FastHttpUser GET /\): (\d+) req/s", out, re.M
    )
    ratio = re.search(r"^ratio ours/stock: ([\d.]+)", out, re.M)
    cpu = re.search(r"^CPU per request: mock (\d+) us, generator (\d+) us", out, re.M)
    cores = re.search(
        r"^projection: 7000 req/s of mixed journeys needs (\d+) mock cores \+ (\d+) generator "
        r"cores = (\d+) cores",
        out,
        re.M,
    )
    assert peak and stock and ratio and cpu and cores, out
    assert int(peak.group(1)) > 0 and int(stock.group(1)) > 0
    assert int(cpu.group(1)) > 0 and int(cpu.group(2)) > 0, out
    assert int(cores.group(1)) + int(cores.group(2)) == int(cores.group(3))
    assert re.search(r"^target 5000 req/s on 2 cores: (met|NOT met)", out, re.M), out

    report = json.loads(out_json.read_text())
    first = report["rounds"][0]
    # The ratio is the two rates measured side by side, and the printed one is the file's.
    assert first["ours"] > 0 and first["stock"] > 0
    assert first["ratio"] == pytest.approx(first["ours"] / first["stock"])
    assert float(ratio.group(1)) == pytest.approx(report["ratio"], abs=0.01)
    # The sampler found every process kind of the run's tree.
    assert {"mock", "master", "worker"} <= set(report["peak"]["cpu_us"]), report["peak"]
