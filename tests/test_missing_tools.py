"""A test whose outside tool is missing is skipped on a developer's machine and fails in CI.

pytest runs, as a child process, the real promtool tests with a ``PATH`` that holds no tool
at all: without ``CI`` they are skipped, each with the line that installs promtool; with
``CI=true`` they fail with that line (tests/conftest.py, the ``needs`` marker).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TOOLS, find_tool, missing_tool

ROOT = Path(__file__).resolve().parents[1]
INSTALL_LINE = "promtool is not installed: apt-get install -y prometheus"


def _pytest_without_tools(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(PATH=str(empty), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider",
         "tests/dashboards/test_promtool.py"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_missing_tool_is_a_skip_that_says_what_to_install(tmp_path: Path) -> None:
    proc = _pytest_without_tools(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "3 skipped" in proc.stdout, proc.stdout[-3000:]
    assert INSTALL_LINE in proc.stdout


def test_under_ci_a_missing_tool_fails_with_what_to_install(tmp_path: Path) -> None:
    proc = _pytest_without_tools(tmp_path, CI="true")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "skipped" not in proc.stdout, proc.stdout[-3000:]
    assert f"CI=true: {INSTALL_LINE}" in proc.stdout, proc.stdout[-3000:]


def test_every_tool_names_its_package() -> None:
    assert {"prometheus", "promtool", "wrk", "chromium", "ip"} <= set(TOOLS)
    assert "apt-get install -y iproute2" in missing_tool("ip")
    with pytest.raises(ValueError, match="unknown tool"):
        find_tool("prometheos")
