"""``portal-load init``: the starter project is written, refuses to clobber, and runs."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.campaign import load_campaign
from harness.campaign.schema import SECTIONS
from harness.gate.slo import load_slo_file
from tests.scenarios.test_locust_runs import serve_mock

RUN_SECTIONS = ("campaign", "load", "workers", "output")

FILES = (
    "campaign.toml",
    "locustfile.py",
    "slo.toml",
    "README.md",
    ".github/workflows/perf-gate.yml",
    ".gitignore",
)


def _portal_load(*args: str, cwd: Path, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def _keys(document: dict[str, Any]) -> set[str]:
    return {f"{section}.{key}" for section, table in document.items() for key in table}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    done = _portal_load("init", "perf", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "perf"


def test_init_writes_the_starter_project(project: Path) -> None:
    for name in FILES:
        assert (project / name).is_file(), name
        assert "@VERSION@" not in (project / name).read_text(), name
    workflow = (project / ".github/workflows/perf-gate.yml").read_text()
    version = importlib.metadata.version("portal-load")
    assert f'pip install "portal-load=={version}"' in workflow
    assert "pull_request:" in workflow
    readme = (project / "README.md").read_text()
    assert "portal-load run campaign.toml" in readme
    assert "portal-load gate latest --slo slo.toml" in readme
    assert load_slo_file(project / "slo.toml")


def test_init_refuses_to_overwrite_a_file_without_force(tmp_path: Path) -> None:
    project = tmp_path / "perf"
    project.mkdir()
    (project / "slo.toml").write_text("# ours\n")
    refused = _portal_load("init", str(project), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "slo.toml" in refused.stderr and "--force" in refused.stderr
    assert (project / "slo.toml").read_text() == "# ours\n"
    assert sorted(p.name for p in project.iterdir()) == ["slo.toml"]  # nothing else written

    forced = _portal_load("init", str(project), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert f"overwrote {project / 'slo.toml'}" in forced.stdout
    assert "[slo]" in (project / "slo.toml").read_text()


def test_the_campaign_sets_every_key_the_campaign_file_accepts(project: Path) -> None:
    campaign = load_campaign(project / "campaign.toml")
    assert campaign.embedded and not campaign.allow_remote
    # The template sets every key of the run's sections of the file format (the schema's
    # table), no fewer and no unknown ones.
    every = {f"{s}.{k}" for s in RUN_SECTIONS for k in SECTIONS[s]}
    template = tomllib.loads((project / "campaign.toml").read_text())
    assert _keys(template) == every


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_locustfile_runs_its_journey_against_the_mock(project: Path, tmp_path: Path) -> None:
    """Plain ``locust`` on the generated file, in the project's folder, with no path to this
    checkout: every request the SLOs name is made, and none fails."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with serve_mock(tmp_path / "mock", "") as url:
        done = subprocess.run(
            [sys.executable, "-m", "locust", "-f", "locustfile.py", "--host", url,
             "--headless", "-u", "5", "-r", "5", "-t", "3s", "--only-summary",
             "--loglevel", "WARNING", "--json-file", str(tmp_path / "stats")],
            cwd=project, env=env, capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    stats = {
        f"{row['method']} {row['name']}": row
        for row in json.loads((tmp_path / "stats.json").read_text())
    }
    targets = set(tomllib.loads((project / "slo.toml").read_text())["slo"]) - {"total"}
    assert targets == set(stats)
    for name, row in stats.items():
        assert row["num_requests"] > 0, name
        assert row["num_failures"] == 0, (name, row)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_campaign_runs_and_writes_results_in_the_project(project: Path) -> None:
    """``portal-load run campaign.toml`` from the project's folder: the run goes to
    ``./results`` there (children run in the user's folder, not the harness's source tree)."""
    done = _portal_load(
        "run", "campaign.toml", "--duration", "3s", "--users", "5", "--spawn-rate", "5",
        "--workers", "1", "--no-tty", cwd=project, timeout_s=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (project / "results").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["total"]["count"] > 0
    assert run_dir.name.endswith("-pr-gate")
