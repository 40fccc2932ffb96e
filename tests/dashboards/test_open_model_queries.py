"""An open-model campaign scraped by a real Prometheus: the numbers the campaign board shows.

``portal-load run --arrival-rate R --prometheus`` runs a short open-model campaign against the
embedded mock; a fresh Prometheus then opens the run's TSDB and answers, at the end of the
load, what Grafana would have shown:

- ``job:loadgen_achieved_to_target:ratio`` is about 1: visits started per second over the
  visits per second aimed at (like units), while requests per second over that target is
  several times more (each visit makes several requests);
- the corrected series (coordinated omission removed) have data and are never faster than
  the service time;
- per API route, the generator's histograms carry the route template the portal labels its own
  with, and client minus server latency is recorded per route.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dashboards.queries import evaluate_all
from harness.observe.prometheus import PrometheusConfig, PrometheusServer, Sample
from scenarios.routes import API_ROUTES

pytestmark = [pytest.mark.slow, pytest.mark.needs("prometheus")]

DURATION_S = 16
RATE = 12.0  # visits per second, about 90 requests per second

CAMPAIGN = """
[campaign]
name = "open-model-board"
duration = "{duration}s"

[load]
arrival_rate = {rate}

[workers]
count = 1

[output]
dir = "{results}"
prometheus = true
"""


class At:
    """A query client pinned to one evaluation time."""

    def __init__(self, prom: PrometheusServer, at_s: float) -> None:
        self.prom = prom
        self.at_s = at_s

    def query(self, expr: str, *, at_s: float | None = None) -> list[Sample]:
        return self.prom.query(expr, at_s=self.at_s if at_s is None else at_s)


def _value(prom: Any, expr: str, at_s: float) -> float:
    samples = prom.query(expr, at_s=at_s)
    assert len(samples) == 1, (expr, samples)
    return samples[0].value


@pytest.mark.timeout(240)
def test_the_campaign_board_of_an_open_model_run(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.toml"
    campaign.write_text(
        CAMPAIGN.format(duration=DURATION_S, rate=RATE, results=tmp_path / "results")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(campaign), "--no-tty"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode in (0, 4), proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    end_s = summary["end_unix_s"]
    at = end_s - 1.0
    with PrometheusServer(
        PrometheusConfig(targets={}, data_dir=run_dir / "prometheus" / "data")
    ) as prom:
        ratio = _value(prom, "job:loadgen_achieved_to_target:ratio", at)
        target = _value(prom, "max(max_over_time(loadgen_target_rps[10s]))", at)
        requests = _value(prom, "sum(rate(loadgen_requests_total[1m]))", at)
        target_starts = _value(prom, "sum(rate(loadgen_target_starts_total[1m]))", at)
        assert target == pytest.approx(RATE)
        # The figure against the run's own record: visits started over visits asked for.
        om = summary["open_model"]
        assert om["target_starts"] == pytest.approx(RATE * summary["duration_s"], rel=0.2)
        assert ratio == pytest.approx(om["started"] / om["target_starts"], rel=0.15)
        assert 0.85 <= ratio <= 1.15, ratio
        # ... while requests over the same target, the old ratio, are several per visit.
        assert requests / target_starts > 3, (requests, target_starts)

        # Corrected latency: present, and never below the service time.
        for q in ("p50", "p99"):
            service = _value(prom, f"max(job:loadgen_response_time_seconds:{q}_1m)", at)
            corrected = _value(prom, f"max(job:loadgen_corrected_response_time_seconds:{q}_1m)", at)
            assert corrected >= service * 0.99, (q, service, corrected)

        # Client and server meet on the route template.
        by_route = prom.query("route_method:client_minus_server_latency_seconds:mean_1m", at_s=at)
        routes = {s.labels["route"] for s in by_route}
        assert "/api/v1/services/{code}" in routes and "/oauth2/token" in routes
        assert routes <= set(API_ROUTES)
        overhead = sorted(s.value for s in by_route)
        assert overhead[len(overhead) // 2] > 0  # the client adds time on the median route

        report = evaluate_all(At(prom, at))
        failed = {f.source for f in report.failures}
        open_model_panels = {
            e.source
            for e in report.evaluations
            if "corrected" in e.source
            or "Achieved / target" in e.source
            or "Arrivals" in e.source
            or "by route" in e.source
        }
        assert len(open_model_panels) >= 12
        assert open_model_panels & failed == set(), report.describe()
