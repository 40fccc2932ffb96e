"""Latency corrected for coordinated omission wherever latency is shown, beside service time.

One short open-model run through ``portal-load run CAMPAIGN --gate``: the live lines, the
terminal summary, ``timeseries.csv``, the report and the gate's SLOs (``p99+co``) all carry the
corrected figure next to the service time; gating the run against itself compares the
corrected series too (``GET+CO name``, ``total+CO``). The Grafana board's corrected panels are
checked against a real Prometheus in tests/dashboards/test_open_model_queries.py.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CAMPAIGN = """
[campaign]
name = "corrected"
duration = "6s"

[load]
arrival_rate = 10.0

[workers]
count = 1

[slo]
total = ["p99 < 60s", "p99+co < 60s", "p50+co < 1us"]
"GET /api/v1/services" = ["p95+co < 60s"]
"""


def _portal_load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True, text=True, timeout=200, check=False,
    )  # fmt: skip


def test_an_open_model_run_shows_corrected_latency_beside_service_time(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.toml"
    campaign.write_text(CAMPAIGN)
    out = tmp_path / "results"
    done = _portal_load("run", str(campaign), "--gate", "--no-tty", "--out", str(out))
    # "p50+co < 1us" cannot hold: the gate fails on the corrected series (exit 1).
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-3000:]
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    service, corrected = summary["total"], summary["corrected_total"]
    assert corrected["count"] == service["count"] > 100
    assert corrected["p99_ms"] >= service["p99_ms"]

    # The live lines and the terminal summary.
    assert re.search(r"p99=[\d.]+ms p50\+co=[\d.]+ms p99\+co=[\d.]+ms", done.stdout), done.stdout
    assert "Latency: service time | corrected for coordinated omission (+CO), ms" in done.stdout
    header = next(line for line in done.stdout.splitlines() if "p99 +CO" in line)
    assert header.index("p99") < header.index("p99 +CO")
    assert "SLO breached: total: p50+co < 1us" in done.stdout

    # timeseries.csv, and the report.
    with (run_dir / "timeseries.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["p99_co_ms"]]
    assert rows and all(float(r["p99_co_ms"]) >= float(r["p99_ms"]) * 0.99 for r in rows)
    report = (run_dir / "report.html").read_text()
    assert "Service time and corrected time" in report
    assert "p99 +CO" in report and "corrected (+CO)" in report

    # The gate read the corrected series: its observed values are the summary's.
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    observed = {(r["target"], r["threshold"]): r for r in verdict["slo"]}
    assert observed["total", "p99 < 60s"]["observed"] == pytest.approx(service["p99_ms"], rel=1e-3)
    assert observed["total", "p99+co < 60s"]["observed"] == pytest.approx(
        corrected["p99_ms"], rel=1e-3
    )
    assert observed["total", "p50+co < 1us"]["passed"] is False
    twin = next(
        r for r in summary["corrected"]
        if r["name"] == "/api/v1/services" and r["method"] == "GET+CO"
    )  # fmt: skip
    assert observed["GET /api/v1/services", "p95+co < 60s"]["observed"] == pytest.approx(
        twin["p95_ms"], rel=1e-3
    )

    # Against itself, the comparisons include the corrected series, each beside its request.
    gated = _portal_load("gate", str(run_dir), "--baseline", str(run_dir), "--out", str(out))
    assert gated.returncode in (0, 1), gated.stdout + gated.stderr
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    keys = [c["key"] for c in verdict["comparisons"]]
    assert keys[:2] == ["total", "total+CO"]
    assert "GET+CO /api/v1/services" in keys
    markdown = (run_dir / "gate" / "summary.md").read_text()
    rows_md = [line for line in markdown.splitlines() if "/api/v1/services` |" in line]
    assert rows_md[0].startswith("| `GET /api/v1/services`")
    assert rows_md[1].startswith("| `GET+CO /api/v1/services`")
