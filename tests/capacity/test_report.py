"""``portal-load report``: one self-contained HTML file with every section and chart."""

from __future__ import annotations

import re
from pathlib import Path

from harness import cli
from harness.report.run_report import render_report

CHARTS = (
    "throughput-vs-load", "usl", "latency-vs-throughput", "rate", "users", "percentiles",
    "latency-spectrum", "latency-histogram", "funnel-pay", "funnel-login",
)  # fmt: skip


def test_report_has_every_section_and_chart(synthetic_run: Path) -> None:
    html = render_report(synthetic_run)
    for heading in ("Capacity", "Requests", "Over time", "Latency distribution", "Journeys"):
        assert f"<h2>{heading}</h2>" in html
    found = re.findall(r'<svg class="chart" data-chart="([^"]+)"', html)
    assert sorted(found) == sorted(CHARTS)
    assert "mean, M/M/c theory" in html and "USL fit" in html and "mean, fitted" in html
    # Funnel bars: started journeys first, then each step with its share of them.
    assert "310 (77.5 %)" in html
    assert "/oauth2/login" in html


def test_report_is_self_contained(synthetic_run: Path) -> None:
    html = render_report(synthetic_run)
    assert "<script" not in html
    # Nothing to fetch: no external or relative resource, and a policy that forbids any.
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#|data:)""", html)
    assert not re.search(r"url\((?!#)", html)
    assert "default-src 'none'" in html


def test_report_command_writes_report_html(synthetic_run: Path, capsys) -> None:
    out = synthetic_run.parent
    assert cli.main(["report", "latest", "--out", str(out)]) == 0
    path = synthetic_run / "report.html"
    assert path.is_file() and f"report: {path}" in capsys.readouterr().out
    assert cli.main(["report", "nope", "--out", str(out)]) == 1
