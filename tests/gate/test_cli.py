"""``portal-load gate`` and ``portal-load baseline save`` through the CLI's entry point, on
synthetic results folders: exit codes, the three outputs, refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from harness.campaign import load_campaign
from harness.cli import main

from ._runs import latency_ms, write_run

ROOT = Path(__file__).resolve().parents[2]
NAMES = [("/api/v1/services", "GET"), ("/api/v1/me", "GET"), ("/oauth2/token", "POST")]


# Enough requests per name that every comparison, p99 included, can detect its tolerance
# (10,000 cannot pin a p99 in this slow tail down: the verdict would be underpowered).
REQUESTS = 30_000


def _series(seed: int, scale: float = 1.0, slowed: str = "/api/v1/services"):
    rng = np.random.default_rng(seed)
    return {
        (n, m): latency_ms(rng, REQUESTS, scale=scale if n == slowed else 1.0) for n, m in NAMES
    }


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    write_run(root / "base", _series(1))
    write_run(root / "same", _series(2))
    write_run(root / "slower", _series(3, scale=1.4))
    return root


def _gate(results: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["gate", *args, "--out", str(results)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_a_passes_and_writes_three_outputs(results, capsys) -> None:
    code, out = _gate(results, "same", "--baseline", "base", capsys=capsys)
    assert code == 0, out
    assert "gate: PASS" in out
    gate = results / "same" / "gate"
    verdict = json.loads((gate / "verdict.json").read_text())
    assert verdict["passed"] is True and verdict["mode"] == "baseline"
    assert {c["key"] for c in verdict["comparisons"]} == {"total", *(f"{m} {n}" for n, m in NAMES)}
    suites = ET.parse(gate / "junit.xml").getroot()  # noqa: S314 - our own file
    assert suites.get("failures") == "0" and int(suites.get("tests")) == 16
    assert (gate / "summary.md").read_text().startswith("## Performance gate: PASS")


def test_a_regression_fails_with_exit_1_and_names_it(results, capsys, tmp_path) -> None:
    junit = tmp_path / "out" / "junit.xml"
    code, out = _gate(results, "slower", "--baseline", "base", "--junit", str(junit), capsys=capsys)
    assert code == 1, out
    assert "regression: GET /api/v1/services p50" in out
    assert "gate: FAIL" in out
    failures = [
        c
        for c in ET.parse(junit).getroot().iter("testcase")  # noqa: S314
        if c.find("failure") is not None
    ]
    assert {c.get("classname") for c in failures} >= {"baseline.GET /api/v1/services"}
    assert all("/api/v1/me" not in c.get("classname", "") for c in failures)
    md = (results / "slower" / "gate" / "summary.md").read_text()
    assert "## Performance gate: FAIL" in md and "**regression**" in md


def test_slo_breach_fails_and_slo_pass_passes(results, capsys, tmp_path) -> None:
    slo = tmp_path / "slo.toml"
    slo.write_text('[slo]\ntotal = ["p95 < 1s", "error_rate < 1%"]\n')
    assert _gate(results, "base", "--slo", str(slo), capsys=capsys)[0] == 0
    slo.write_text('[slo]\n"GET /api/v1/services" = ["p(95) < 20ms"]\n')
    code, out = _gate(results, "base", "--slo", str(slo), capsys=capsys)
    assert code == 1 and "SLO breached: GET /api/v1/services: p(95) < 20ms" in out


@pytest.mark.parametrize(
    ("slo_text", "says"),
    [
        ('total = ["p95 < soon"]', "malformed threshold 'p95 < soon'"),
        ('total = ["p95 < 5%"]', "a latency takes us, ms, s or m"),
        ("total = [", "not valid TOML"),
    ],
)
def test_usage_errors_exit_2_with_one_line(results, capsys, tmp_path, slo_text, says) -> None:
    slo = tmp_path / "slo.toml"
    slo.write_text(slo_text + "\n")
    code, out = _gate(results, "base", "--slo", str(slo), capsys=capsys)
    assert code == 2
    assert out.startswith("UsageError: ") and says in out
    assert out.count("\n") == 1


def test_missing_runs_and_nothing_to_gate_are_usage_errors(results, capsys) -> None:
    assert _gate(results, "nope", "--baseline", "base", capsys=capsys)[0] == 2
    assert _gate(results, "same", "--baseline", "nope", capsys=capsys)[0] == 2
    code, out = _gate(results, "same", capsys=capsys)
    assert code == 2 and "nothing to gate on" in out


def test_runs_of_different_campaigns_are_refused_unless_forced(results, capsys) -> None:
    write_run(results / "bigger", _series(4), users=50)
    code, out = _gate(results, "bigger", "--baseline", "base", capsys=capsys)
    assert code == 2 and "load.users: 10 != 50" in out and "--force" in out
    code, out = _gate(results, "bigger", "--baseline", "base", "--force", capsys=capsys)
    assert code == 0, out
    verdict = json.loads((results / "bigger" / "gate" / "verdict.json").read_text())
    assert any("different campaigns" in n for n in verdict["notes"])


def test_baseline_save_then_gate_against_it_by_name(results, capsys) -> None:
    assert main(["baseline", "save", "base", "main", "--out", str(results)]) == 0
    saved = results / "baselines" / "main" / "baseline.json"
    doc = json.loads(saved.read_text())
    assert doc["kind"] == "portal-load-baseline" and doc["saved_from"] == "base"
    assert len(doc["series"]) == len(NAMES)
    assert saved.stat().st_size < 64 * 1024
    capsys.readouterr()
    assert _gate(results, "same", "--baseline", "main", capsys=capsys)[0] == 0
    assert _gate(results, "slower", "--baseline", str(saved), capsys=capsys)[0] == 1
    assert _gate(results, "slower", "--baseline", str(saved.parent), capsys=capsys)[0] == 1


def test_baseline_save_refuses_a_partial_run_and_a_bad_name(results, capsys) -> None:
    write_run(results / "cut", _series(5), status="partial")
    assert main(["baseline", "save", "cut", "x", "--out", str(results)]) == 2
    assert main(["baseline", "save", "base", "../x", "--out", str(results)]) == 2
    assert "must come from a complete run" in capsys.readouterr().err


def test_a_degraded_run_is_no_baseline_unless_forced_and_the_gate_says_so(results, capsys) -> None:
    """A run whose figures are in doubt (a busy generator, counts that disagree) is
    ``degraded``: ``baseline save`` refuses it without --force, and the gate's verdict says."""
    write_run(results / "doubt", _series(5), status="degraded")
    assert main(["baseline", "save", "doubt", "d", "--out", str(results)]) == 2
    assert "doubt is degraded: a baseline must come from a complete run" in capsys.readouterr().err
    assert main(["baseline", "save", "doubt", "d", "--force", "--out", str(results)]) == 0
    _code, out = _gate(results, "doubt", "--baseline", "base", capsys=capsys)
    assert "degraded" in out
    verdict = json.loads((results / "doubt" / "gate" / "verdict.json").read_text())
    assert "the run is degraded: its figures may not be representative" in verdict["notes"]


def test_committed_baselines_are_not_ignored_by_git() -> None:
    def ignored(path: str) -> bool:
        # --no-index: by the .gitignore rules alone (a tracked file is never reported
        # ignored otherwise); no global or system excludes of the machine.
        done = subprocess.run(
            ["git", "-c", "core.excludesFile=/dev/null", "check-ignore", "--no-index", "-q", path],
            cwd=ROOT,
            env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode in (0, 1), done.stderr
        return done.returncode == 0

    assert not ignored("results/baselines/main/baseline.json")
    assert ignored("results/20260101T000000Z-default/summary.json")


def test_campaign_slo_and_gate_tables_travel_with_the_run(tmp_path: Path, capsys) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[campaign]\nname = "ci"\n\n[slo]\ntotal = ["p95 < 300ms"]\n'
        '"GET /api/v1/me" = [{ threshold = "p99 < 1s", abort_on_fail = true }]\n\n'
        '[gate]\nbaseline = "main"\ntolerance = { p95 = "15%" }\n'
    )
    again = tmp_path / "again.toml"
    again.write_text(load_campaign(path).to_toml())
    assert load_campaign(again).gate == load_campaign(path).gate
    assert load_campaign(again).gate.objectives[1].threshold.abort_on_fail
    # The gate reads them from the run's campaign.toml.
    root = tmp_path / "results"
    write_run(
        root / "base",
        _series(1),
        name="ci",
        extra='\n[slo]\n"GET /api/v1/me" = ["p95 < 1ms"]\n[gate]\nbaseline = "base"\n',
    )
    code = main(["gate", "base", "--out", str(root)])
    assert code == 1
    verdict = json.loads((root / "base" / "gate" / "verdict.json").read_text())
    assert verdict["slo"][0]["passed"] is False and verdict["baseline"] == "base"


def test_gate_config_errors(results, capsys, tmp_path) -> None:
    write_run(results / "odd", _series(6), extra='\n[gate]\ntolerance = { p42 = "1%" }\n')
    code, out = _gate(results, "odd", "--baseline", "base", capsys=capsys)
    assert code == 2 and "gate.tolerance.p42: unknown metric" in out


def test_the_example_workflow_s_campaign_and_files_are_valid() -> None:
    campaign_path = ROOT / "tests" / "gate" / "ci" / "perf-campaign.toml"
    campaign = load_campaign(campaign_path)
    assert (ROOT / campaign.mock_config).is_file()
    config = campaign.gate
    assert len(config.objectives) == 4 and config.policy.tolerance["p95"] == 0.10
    workflow = (ROOT / ".github" / "workflows" / "perf-gate.yml").read_text()
    for path in ("tests/gate/ci/perf-campaign.toml", "tests/gate/ci/mock-backend.toml"):
        assert path in workflow and (ROOT / path).is_file()


@pytest.mark.parametrize(
    ("tolerance", "says"),
    [
        ("{ p95 = 10 }", "10 is 1000 %; write a fraction up to 1, or a percentage like '10%'"),
        ("{ error_rate = '150%' }", "an error rate cannot grow by more than 100 points"),
        ("{ p95 = -0.1 }", "-0.1 is out of range (at least 0)"),
        ("{ p42 = 0.1 }", "unknown metric"),
    ],
)
def test_gate_tolerances_that_could_never_fail_are_refused(tolerance: str, says: str) -> None:
    from harness.errors import UsageError

    with pytest.raises(UsageError, match=re.escape(says)):
        _campaign_with(f"[gate]\ntolerance = {tolerance}\n")
    assert (
        _campaign_with("[gate]\ntolerance = { p95 = '150%' }\n").gate.policy.tolerance["p95"] == 1.5
    )


def _campaign_with(text: str):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_text(text)
        return load_campaign(path)
