"""A real campaign scraped by a real Prometheus: every rule and panel query has data.

``portal-load run --prometheus`` runs a short campaign against the embedded mock (with
faults, a simulated backend and tiny store bounds, so that the fault, queue, eviction and
failure panels have something to show) while Prometheus scrapes the mock and the Locust
master's exporter every second. The run folder keeps Prometheus's configuration and TSDB;
the test opens that TSDB with a fresh Prometheus and evaluates every recording rule, alert
expression, template variable and panel query through the HTTP API at the end of the load,
as Grafana would have shown it then.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dashboards.queries import evaluate_all, rule_queries
from harness.observe.prometheus import PrometheusConfig, PrometheusServer, Sample

pytestmark = [
    pytest.mark.slow,
    pytest.mark.needs("prometheus"),
]

DURATION_S = 15

MOCK_CONFIG = """
max_revocations = 2
max_idempotency_keys = 2
max_applications = 2

[faults]
seed = 7
[faults.routes."/api/v1/services/{code}"]
error = { status = 500, rate = 0.1 }

[capacity.catalog]
servers = 64
service_time = { kind = "fixed", ms = 1 }
"""

CAMPAIGN = """
[campaign]
name = "observability"
duration = "{duration}s"

[load]
users = 40
spawn_rate = 40
think_scale = 0.02

[workers]
count = 1
mock_config = "{mock_config}"

[output]
dir = "{results}"
prometheus = true
"""

#: Queries that cannot have data after this campaign, each for a stated reason. Anything
#: else without data fails the test, and so does one of these that has data.
NO_OPEN_MODEL = (
    "a closed-model run has no corrected twins: loadgen_corrected_response_time_seconds is "
    "empty (tests/dashboards/test_open_model_queries.py runs the open model)"
)
NO_CAPACITY_RUN = (
    "no capacity run: loadgen_capacity_* come from portal-load capacity-exporter, "
    "a separate scrape job; the capacity board's $job is resolved from them"
)
EXPECTED_EMPTY = {
    **{
        f"rules/red.yml loadgen_red/job:loadgen_corrected_response_time_seconds:{q}_1m{rec}": (
            NO_OPEN_MODEL
        )
        for q in ("p50", "p95", "p99")
        for rec in ("", " (recorded)")
    },
    "campaign.json panel 8 'p99 corrected (open model)' A": NO_OPEN_MODEL,
    **{
        f"campaign.json panel 17 'Service time vs corrected (open model)' {ref}": NO_OPEN_MODEL
        for ref in "BDF"  # A, C, E: the service time's p50, p95, p99
    },
    "capacity.json $job": NO_CAPACITY_RUN,
    **{
        f"capacity.json panel {panel} A": NO_CAPACITY_RUN
        for panel in (
            "3 'Capacity within SLO'",
            "4 'Maximum throughput'",
            "6 'Headroom to SLO capacity'",
            "7 'Capacity / national peak'",
            "8 'Load / capacity within SLO'",
            "9 'Deployments for the national peak'",
        )
    },
    **{
        f"capacity.json panel 11 'Load vs capacity vs national peak' {ref}": NO_CAPACITY_RUN
        for ref in "CD"  # B, the generator's target, is the loadgen job's own series
    },
}


class At:
    """A query client pinned to one evaluation time (the last second of the load)."""

    def __init__(self, prom: PrometheusServer, at_s: float) -> None:
        self.prom = prom
        self.at_s = at_s

    def query(self, expr: str, *, at_s: float | None = None) -> list[Sample]:
        return self.prom.query(expr, at_s=self.at_s if at_s is None else at_s)


def _run_campaign(tmp_path: Path) -> tuple[Path, str]:
    mock_config = tmp_path / "mock.toml"
    mock_config.write_text(MOCK_CONFIG)
    campaign = tmp_path / "campaign.toml"
    campaign.write_text(
        CAMPAIGN.format(duration=DURATION_S, mock_config=mock_config, results=tmp_path / "results")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(campaign), "--no-tty"],
        capture_output=True,
        text=True,
        timeout=150,
    )
    # 4 (degraded) is the harness's cross-check of the generator's count against the mock's;
    # it is asserted in tests/harness, and the comparison that matters here is Prometheus's.
    assert proc.returncode in (0, 4), proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0], proc.stdout


@pytest.mark.timeout(240)
def test_every_rule_and_panel_query_has_data_after_a_real_campaign(tmp_path: Path) -> None:
    run_dir, output = _run_campaign(tmp_path)
    assert re.search(r"Prometheus at http://127\.0\.0\.1:\d+ ", output), output[:2000]
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete"
    kept = run_dir / "prometheus"
    assert "scrape_interval: 1000ms" in (kept / "prometheus.yml").read_text()
    assert (kept / "rules" / "red.yml").is_file()

    end_s = summary["end_unix_s"]
    config = PrometheusConfig(targets={}, data_dir=kept / "data")
    with PrometheusServer(config) as prom:
        # Every scrape of both targets succeeded while the load ran.
        for job in ("mock_portal", "loadgen"):
            ups = prom.query(f'min_over_time(up{{job="{job}"}}[{DURATION_S - 3}s])', at_s=end_s)
            assert [s.value for s in ups] == [1.0], (job, ups)

        report = evaluate_all(At(prom, end_s - 1.0))
        failed = {f.source for f in report.failures}
        assert failed - set(EXPECTED_EMPTY) == set(), report.describe()
        assert set(EXPECTED_EMPTY) - failed == set(), "these have data now: update the test"
        recorded = [e for e in report.evaluations if e.source.endswith("(recorded)")]
        assert len(recorded) == sum(1 for q in rule_queries() if q.kind == "record")

        # The master kept /metrics up until Prometheus read the final values: what
        # Prometheus holds last is what summary.json says, per request name.
        window = f"[{DURATION_S + 30}s:1s]"
        last = prom.query(
            f"max_over_time(sum by (name, method) (loadgen_requests_total){window})",
            at_s=end_s + 10,
        )
        scraped = {(s.labels["name"], s.labels["method"]): s.value for s in last}
        expected = {(r["name"], r["method"]): r["count"] for r in summary["requests"]}
        assert scraped == expected
        # ...so the mean request rate Prometheus reports over the run is the summary's.
        total = prom.query(f"max_over_time(sum(loadgen_requests_total){window})", at_s=end_s + 10)
        rate = total[0].value / summary["duration_s"]
        assert rate == pytest.approx(summary["total"]["rps"], rel=0.02)
