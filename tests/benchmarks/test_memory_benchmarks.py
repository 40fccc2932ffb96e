"""Smoke tests of the memory benchmarks, driven for real with tiny arguments: the mock's soak
(``benchmarks.mock_soak``: RSS sampled under the mix, growth from half the soak to its end)
and a Locust worker's RSS per 1,000 users (``benchmarks.worker_rss``: real runs, a linear
fit). Memory is not asserted here beyond being measured; the figures belong in
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
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RSS is read from /proc"),
]


@pytest.mark.needs("wrk", "taskset")
@pytest.mark.timeout(180)
def test_mock_soak_samples_rss_under_the_mix_and_prints_the_growth(tmp_path: Path) -> None:
    out_json = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.mock_soak", "--minutes", "0.2",
            "--sample-seconds", "3", "--citizens", "8", "--json", str(out_json),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out_json.read_text())
    samples = report["samples"]
    assert [s["at_s"] for s in samples] == [3, 6, 9, 12]
    assert all(s["rss_mib"] > 0 and s["requests"] > 0 for s in samples), samples
    assert report["half"] == samples[1] and report["last"] == samples[-1]
    half, last = report["half"]["rss_mib"], report["last"]["rss_mib"]
    assert report["growth"] == pytest.approx((last - half) / half)
    assert report["met"] == (report["growth"] <= 0.10)
    out = done.stdout
    assert re.search(rf"^mock RSS at 0.1 min: {half:.1f} MiB$", out, re.M), out
    assert re.search(rf"^mock RSS at 0.2 min: {last:.1f} MiB$", out, re.M), out
    assert re.search(r"^growth: [+-][\d.]+ % \(target <= 10 %: (met|NOT met)\)", out, re.M), out
    assert report["non_2xx"] <= 0.01 * report["requests"]


@pytest.mark.timeout(300)
def test_worker_rss_measures_the_worker_at_each_user_count_and_fits_a_line(
    tmp_path: Path,
) -> None:
    out_json = tmp_path / "rss.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.worker_rss", "--users", "1,60",
            "--seconds", "6", "--json", str(out_json),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=270, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out_json.read_text())
    points = report["points"]
    assert [p["users"] for p in points] == [1, 60]
    for p in points:
        assert p["rss_mib"] > 10 and p["samples"] >= 3 and p["requests"] > 0, p
    (a, b), fit = points, report["fit"]
    assert fit["mib_per_1000_users"] == pytest.approx(
        1000 * (b["rss_mib"] - a["rss_mib"]) / (b["users"] - a["users"])
    )
    line = re.search(r"^worker RSS per 1,000 users: (-?[\d.]+) MiB", done.stdout, re.M)
    assert line and float(line.group(1)) == pytest.approx(fit["mib_per_1000_users"], abs=0.06)
