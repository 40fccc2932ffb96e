"""A team's own locustfile through the harness: a stock ``FastHttpUser`` file that imports
nothing of this project gets the results, the report and the gate, with no edit to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._runs import portal_load_to_end

pytestmark = pytest.mark.slow

STOCK = """\
from locust import FastHttpUser, between, task


class Browser(FastHttpUser):
    wait_time = between(0.01, 0.05)

    @task(3)
    def catalog(self):
        self.client.get("/api/v1/services?per_page=10", name="catalog")

    @task
    def discovery(self):
        self.client.get("/.well-known/openid-configuration", name="discovery")


class Idle(FastHttpUser):
    wait_time = between(1, 2)

    @task
    def health(self):
        self.client.get("/healthz", name="health")
"""


@pytest.mark.timeout(400)
def test_a_stock_locustfile_runs_reports_and_gates(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(STOCK)
    common = ["--duration", "5s", "--users", "6", "--spawn-rate", "6", "--workers", "1",
              "--no-tty", "--name", "mine"]  # fmt: skip
    first = portal_load_to_end("run", "--locustfile", "mine.py", "Browser", *common, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    runs = sorted(p for p in (tmp_path / "results").iterdir() if p.is_dir())
    summary = json.loads((runs[0] / "summary.json").read_text())
    names = {row["name"] for row in summary["requests"]}
    assert names == {"catalog", "discovery"}  # only the class named on the command line
    assert summary["total"]["count"] > 20 and summary["total"]["failures"] == 0
    assert summary["checks"]["counts_agree"]  # the mock counted the same requests
    assert (runs[0] / "histograms.json").is_file() and (runs[0] / "report.html").is_file()
    campaign = (runs[0] / "campaign.toml").read_text()
    assert 'locustfile = "mine.py"' in campaign and 'user_classes = ["Browser"]' in campaign

    # The campaign as run, run again, gated against the first run: the same campaign.
    second = portal_load_to_end(
        "run", str(runs[0] / "campaign.toml"), "--gate", "--baseline", runs[0].name,
        "--no-tty", cwd=tmp_path,
    )  # fmt: skip
    assert second.returncode in (0, 1), second.stdout + second.stderr
    gated = sorted(p for p in (tmp_path / "results").iterdir() if p.is_dir())[-1]
    verdict = json.loads((gated / "gate" / "verdict.json").read_text())
    assert verdict["baseline"] == runs[0].name
    assert {c["key"] for c in verdict["comparisons"]} >= {"total", "GET catalog"}
    assert "Gate" in (gated / "report.html").read_text()


def test_a_missing_locustfile_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    done = portal_load_to_end("run", "--locustfile", "nope.py", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "UsageError: --locustfile: no such file: nope.py"
    assert not (tmp_path / "out").exists()
