"""From a built wheel, in a fresh virtual environment, from an empty folder outside the
checkout: ``portal-load`` runs a campaign, gates it, reports it and runs the stack.

The wheel is built (``python -m build --wheel``) from a copy of the checkout's files (tracked,
and untracked but not ignored), so nothing left over in the checkout's ``build/`` can reach it.
pip installs the dependencies at the versions of ``constraints.txt``, from the wheels it
cached when the checkout's environment was made.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Read before tests/conftest.py gives every test a home of its own: the cache of the
# developer's (or the CI runner's) pip, so that the wheels it holds are not downloaded again.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
STEP_TIMEOUT_S = 240

pytestmark = pytest.mark.slow


def _require(ok: bool, what: str) -> None:
    """Skip without ``what`` on a developer's machine; fail in CI, where it must be there."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


def _sh(argv: list[str | Path], *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=STEP_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{' '.join(map(str, argv))} exited {done.returncode}\n"
        f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout


def _source_copy(dest: Path) -> Path:
    """The checkout's files as git sees them (no build/, no .venv/, no results/)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, timeout=60, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet staged is still listed
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.mark.timeout(900)
def test_the_wheel_runs_gates_reports_and_serves_the_stack_from_an_empty_folder(
    tmp_path: Path,
) -> None:
    _require(importlib.util.find_spec("build") is not None, "the 'build' package (dev extras)")
    _require(shutil.which("git") is not None, "git")
    _require((ROOT / ".git").exists(), "a git checkout")
    _require(shutil.which("prometheus") is not None, "Debian's prometheus")
    assert not tmp_path.is_relative_to(ROOT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_CACHE_DIR"] = PIP_CACHE
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    source = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    _sh([sys.executable, "-m", "build", "--wheel", "--outdir", dist, source], cwd=tmp_path, env=env)
    (wheel,) = dist.glob("portal_load-*.whl")

    venv = tmp_path / "venv"
    _sh([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env)
    python, portal_load = venv / "bin" / "python", venv / "bin" / "portal-load"
    _sh([python, "-m", "pip", "install", "--quiet", "-c", ROOT / "constraints.txt", wheel],
        cwd=tmp_path, env=env)  # fmt: skip

    work = tmp_path / "empty"
    work.mkdir()
    where = json.loads(_sh([python, "-c", (
        "import json, harness, scenarios, mock_portal, dashboards\n"
        "from harness import package\n"
        "print(json.dumps({'modules': [m.__file__ for m in (harness, scenarios, mock_portal,"
        " dashboards)], 'locustfile': str(package.locustfile()),"
        " 'dashboards': sorted(p.name for p in package.grafana_dir().glob('*.json'))}))"
    )], cwd=work, env=env))  # fmt: skip
    site = venv / "lib"
    for path in [*where["modules"], where["locustfile"]]:
        assert Path(path).is_relative_to(site), path
    assert where["dashboards"] == sorted(
        p.name for p in (ROOT / "dashboards" / "grafana").glob("*.json")
    )

    version = _sh([portal_load, "--version"], cwd=work, env=env)
    assert version.strip().startswith("portal-load ") and "unknown" not in version

    _sh([portal_load, "run", "--duration", "10s", "--no-tty", "--users", "20",
         "--spawn-rate", "20", "--workers", "1"], cwd=work, env=env)  # fmt: skip
    (run_dir,) = (work / "results").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete", summary["status"]
    assert summary["total"]["count"] > 0
    assert summary["total"]["failures"] == 0, summary["total"]
    record = json.loads((run_dir / "provenance.json").read_text())
    assert record["git"]["revision"] is None  # the empty folder is no repository
    assert record["packages"]["portal-load"] == version.split()[-1]

    (work / "slo.toml").write_text('[slo]\ntotal = ["error_rate < 5%", "count > 10"]\n')
    gate = _sh([portal_load, "gate", "latest", "--slo", "slo.toml"], cwd=work, env=env)
    assert "PASS" in gate
    assert (run_dir / "gate" / "junit.xml").is_file()

    _sh([portal_load, "report", "latest"], cwd=work, env=env)
    assert "<svg" in (run_dir / "report.html").read_text()

    _sh([portal_load, "stack", "up", "--mock", ""], cwd=work, env=env)
    try:
        state = json.loads((work / "var" / "stack" / "state.json").read_text())
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            f"{state['url']}/api/v1/rules", timeout=10
        ) as resp:
            groups = json.load(resp)["data"]["groups"]
        loaded = sorted({Path(group["file"]).name for group in groups})
        assert loaded == sorted(
            p.name for p in (ROOT / "dashboards" / "prometheus" / "rules").glob("*.yml")
        )
    finally:
        _sh([portal_load, "stack", "down"], cwd=work, env=env)
    stopped = subprocess.run(
        [portal_load, "stack", "status"], cwd=work, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert stopped.returncode == 3, stopped.stdout

    _sh([portal_load, "init", "starter"], cwd=work, env=env)
    assert (work / "starter" / ".github" / "workflows" / "perf-gate.yml").is_file()
    assert (work / "starter" / "locustfile.py").read_text().count("PortalUser") >= 1

    # The README's "Use it in your own repository", word for word, from a folder of its own.
    own = tmp_path / "own"
    shutil.copytree(dist, own / "dist")
    cwd = own
    binaries = {"pip": venv / "bin" / "pip", "portal-load": portal_load}
    for line in readme_commands("own-repository"):
        argv = shlex.split(line)
        if argv[0] == "cd":
            cwd = cwd / argv[1]
            continue
        _sh([binaries[argv[0]], *argv[1:]], cwd=cwd, env=env)
    project = own / "perf"
    (run_dir,) = [p for p in (project / "results").iterdir() if p.name != "baselines"]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"
    assert (project / "results" / "baselines" / "main" / "baseline.json").is_file()


def readme_commands(marker: str) -> list[str]:
    """The lines of the README's shell block that follows ``<!-- marker: ... -->``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker}:[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert found, f"README.md has no block marked {marker}"
    return [line for line in found.group(1).splitlines() if line.strip()]
