"""The package finds what it needs through importlib.resources, never the source tree."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import package
from harness.results.folder import provenance

ROOT = Path(__file__).resolve().parents[2]


def test_every_data_file_is_found_through_its_package() -> None:
    assert package.locustfile() == ROOT / "scenarios" / "locustfile.py"
    prometheus = package.prometheus_config_dir()
    assert (prometheus / "prometheus.yml").is_file()
    assert sorted(p.name for p in (prometheus / "rules").glob("*.yml")) == sorted(
        p.name for p in (ROOT / "dashboards" / "prometheus" / "rules").glob("*.yml")
    )
    dashboards = sorted(p.name for p in package.grafana_dir().glob("*.json"))
    assert dashboards == ["campaign.json", "capacity.json", "portal_red.json"]
    for name in dashboards:
        assert json.loads((package.grafana_dir() / name).read_text())["panels"]


def test_no_module_of_the_harness_finds_files_relative_to_itself() -> None:
    relative = re.compile(r"__file__|\.parents\[")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "harness").rglob("*.py")
        if "scaffold/project" not in path.as_posix() and relative.search(path.read_text())
    ]
    assert offenders == []


def test_the_top_level_locustfile_runs_the_packaged_one() -> None:
    """Plain ``locust`` in a checkout and ``portal-load run`` (the packaged file) see the same
    user classes, the same objects."""
    code = (
        "import json, runpy\n"
        "top = runpy.run_path('locustfile.py')\n"
        "import scenarios.locustfile as real\n"
        "print(json.dumps({'top': sorted(top['__all__']), 'real': sorted(real.__all__),"
        " 'same': all(top[name] is getattr(real, name) for name in real.__all__)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["top"] == seen["real"]
    assert {"CitizenUser", "AnonymousVisitor", "OpenModelVisits", "CapacityProbe"} <= set(
        seen["real"]
    )
    assert seen["same"] is True


def test_version_is_the_installed_distributions() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"portal-load {importlib.metadata.version('portal-load')}\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Perf", "-c", "user.email=perf@example.invalid", *args],
        cwd=repo, capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip


def test_provenance_records_the_revision_of_the_folder_a_run_starts_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "--quiet")
    (project / "campaign.toml").write_text("[campaign]\n")
    _git(project, "add", "campaign.toml")
    _git(project, "commit", "--quiet", "-m", "campaign")
    monkeypatch.chdir(project)
    git = provenance(seed=1)["git"]
    assert git == {"revision": _git(project, "rev-parse", "HEAD"), "dirty": False}
    (project / "campaign.toml").write_text("[campaign]\nname = 'changed'\n")
    assert provenance(seed=1)["git"]["dirty"] is True


def test_provenance_outside_a_repository_has_no_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    record = provenance(seed=1)
    assert record["git"] == {"revision": None, "dirty": None}
    assert record["packages"]["portal-load"] == package.version()
