"""The gate on real runs of the embedded mock (issue 5): an A/A pair passes, an A/B pair with
latency injected into B fails, and ``run --gate`` stops a run early on a breached SLO.

The mock's injected latency plays a real backend (a lognormal with a 20 ms median on every
route), so that the runner's scheduling jitter is small beside it; B is 50 % slower.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

LIGHT = ["--duration", "8s", "--users", "16", "--think-scale", "0.02", "--workers", "1"]
BACKEND = '[faults.routes."*"]\nlatency = {{ kind = "lognormal", median_ms = {m}, p99_ms = {p} }}\n'


def _portal_load(*args: str, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _mock_config(tmp_path: Path, name: str, median_ms: int) -> str:
    path = tmp_path / name
    path.write_text(BACKEND.format(m=median_ms, p=median_ms * 3))
    return str(path)


def _job(out: Path) -> Path:
    (job,) = out.glob("ab-*")
    return job


def test_real_a_a_pair_passes_and_its_baseline_gates_b(tmp_path: Path) -> None:
    a = _mock_config(tmp_path, "a.toml", 20)
    out = tmp_path / "results"
    done = _portal_load("gate-ab", "--a", a, "--b", a, "--rounds", "1", "--out", str(out), *LIGHT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job = _job(out)
    verdict = json.loads((job / "gate" / "verdict.json").read_text())
    assert verdict["passed"] is True and verdict["mode"] == "ab"
    total = next(c for c in verdict["comparisons"] if c["key"] == "total")
    assert total["baseline_count"] > 300 and total["candidate_count"] > 300
    # The same pair through a committed-style baseline: save A, gate B against it by name.
    run_a, run_b = sorted(p for p in job.iterdir() if (p / "summary.json").is_file())
    saved = _portal_load("baseline", "save", str(run_a), "main", "--out", str(out))
    assert saved.returncode == 0, saved.stderr
    gated = _portal_load("gate", str(run_b), "--baseline", "main", "--out", str(out))
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert (run_b / "gate" / "junit.xml").is_file()


def test_real_a_b_pair_with_injected_latency_fails(tmp_path: Path) -> None:
    a = _mock_config(tmp_path, "a.toml", 20)
    b = _mock_config(tmp_path, "b.toml", 30)
    out = tmp_path / "results"
    done = _portal_load("gate-ab", "--a", a, "--b", b, "--rounds", "1", "--out", str(out), *LIGHT)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "regression: total p50" in done.stdout
    verdict = json.loads((_job(out) / "gate" / "verdict.json").read_text())
    total = next(c for c in verdict["comparisons"] if c["key"] == "total")
    p50 = next(ch for ch in total["changes"] if ch["metric"] == "p50")
    assert p50["verdict"] == "regression"
    assert 0.2 < p50["ci_low"] <= p50["change"] <= p50["ci_high"] < 0.9


def test_run_gate_aborts_early_on_a_breached_slo_and_still_writes_results(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.toml"
    campaign.write_text(
        f'[workers]\nmock_config = "{_mock_config(tmp_path, "a.toml", 20)}"\n\n'
        '[slo]\ntotal = [{ threshold = "p95 < 5ms", abort_on_fail = true, '
        'delay_abort_eval = "2s" }, "error_rate < 50%"]\n'
    )
    out = tmp_path / "results"
    done = _portal_load(
        "run",
        str(campaign),
        "--gate",
        "--duration",
        "60s",
        "--users",
        "16",
        "--think-scale",
        "0.02",
        "--workers",
        "1",
        "--no-tty",
        "--out",
        str(out),
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "aborting the run: total: p95 < 5ms breached" in done.stdout
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["duration_s"] < 40  # stopped long before its 60 s
    assert summary["total"]["count"] > 0
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    assert [r["passed"] for r in verdict["slo"]] == [False, True]
    assert "[slo]" in (run_dir / "campaign.toml").read_text()
