"""promtool accepts the configuration and rules, and the alert unit tests pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import find_tool

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "prometheus"

pytestmark = pytest.mark.needs("promtool")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = find_tool("promtool")
    assert promtool is not None
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_check_config() -> None:
    result = _promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 rule files found" in result.stdout


def test_check_rules() -> None:
    rule_files = sorted(str(p) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert len(rule_files) == 3
    result = _promtool("check", "rules", *rule_files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests() -> None:
    test_files = sorted(str(p) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert test_files
    result = _promtool("test", "rules", *test_files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(test_files)
