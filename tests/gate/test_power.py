"""A gate never passes for lack of data: the minimum detectable effect of every comparison,
the ``underpowered`` outcome, and ``--require-power`` (exit 5).

Synthetic results folders through the CLI's entry point, a check that the minimum detectable
effect means what it says (a true slowdown of that size fails about half the time), and the
case that passed before: a short interleaved A/B pair of real runs, one route 40 % slower.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.errors import ExitCode
from harness.gate.compare import Dist, Policy, compare_quantile, with_power

from ._runs import latency_ms, write_run

NAMES = [("/api/v1/services", "GET"), ("/api/v1/me", "GET"), ("/oauth2/token", "POST")]


def _series(seed: int, n: int) -> dict:
    rng = np.random.default_rng(seed)
    return {key: latency_ms(rng, n) for key in NAMES}


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """An A/A pair of 400 requests per name: a p99 of 400 requests cannot be bounded."""
    root = tmp_path / "results"
    write_run(root / "base", _series(1, 400))
    write_run(root / "cand", _series(2, 400))
    return root


def _gate(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["gate", "cand", "--baseline", "base", "--out", str(root), *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_small_run_is_underpowered_not_a_pass(small: Path, capsys) -> None:
    code, out = _gate(small, capsys)
    assert code == ExitCode.OK, out
    assert "gate: UNDERPOWERED (exit 0; --require-power fails it)" in out
    assert "gate: PASS" not in out
    assert "Smallest regression this run could detect on the total (95% confidence" in out
    verdict = json.loads((small / "cand" / "gate" / "verdict.json").read_text())
    assert verdict["outcome"] == "underpowered"
    assert "total p99" in verdict["power"]["underpowered"]
    total = next(c for c in verdict["comparisons"] if c["key"] == "total")
    by_metric = {ch["metric"]: ch for ch in total["changes"]}
    # 1,200 requests bound the p50 (not underpowered: its MDE is within twice the tolerance)
    p50 = by_metric["p50"]
    assert p50["underpowered"] is False
    assert p50["tolerance"] < p50["mde"] < (1 + p50["tolerance"]) ** 2 - 1
    assert by_metric["p99"]["underpowered"] is True


def test_require_power_fails_an_underpowered_gate_with_exit_5(small: Path, capsys) -> None:
    code, out = _gate(small, capsys, "--require-power")
    assert code == ExitCode.UNDERPOWERED == 5, out
    assert "gate: UNDERPOWERED (exit 5: --require-power)" in out
    gate = small / "cand" / "gate"
    assert json.loads((gate / "verdict.json").read_text())["passed"] is False
    suites = ET.parse(gate / "junit.xml").getroot()  # noqa: S314 - our own file
    kinds = {f.get("type") for f in suites.iter("failure")}
    assert kinds == {"Underpowered"}


def test_the_markdown_summary_leads_with_the_minimum_detectable_effect(small: Path, capsys):
    _gate(small, capsys)
    lines = (small / "cand" / "gate" / "summary.md").read_text().splitlines()
    assert lines[0] == "## Performance gate: UNDERPOWERED"
    assert lines[2].startswith("**Smallest regression this run could detect on the total")
    assert lines[3].startswith("**Underpowered**:")
    table = [line for line in lines if line.startswith("| `GET /api/v1/me` | 400 / 400 |")]
    assert len(table) == 1 and "**" in table[0]  # its p99 is underpowered, in bold


def test_a_powered_a_a_run_passes(tmp_path: Path, capsys) -> None:
    root = tmp_path / "results"
    write_run(root / "base", _series(1, 30_000))
    write_run(root / "cand", _series(2, 30_000))
    code, out = _gate(root, capsys, "--require-power")
    assert code == ExitCode.OK, out
    assert "gate: PASS" in out


def test_a_met_p99_slo_on_too_few_requests_is_underpowered(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(root / "short", {NAMES[0]: latency_ms(np.random.default_rng(3), 300)})
    slo = tmp_path / "slo.toml"
    slo.write_text('total = ["p50 < 10s", "p99 < 10s"]\n')
    code = main(["gate", "short", "--slo", str(slo), "--out", str(root)])
    assert code == ExitCode.OK
    verdict = json.loads((root / "short" / "gate" / "verdict.json").read_text())
    assert verdict["outcome"] == "underpowered"
    assert [r["underpowered"] for r in verdict["slo"]] == [False, True]
    assert "too few beyond p99" in verdict["slo"][1]["message"]
    markdown = (root / "short" / "gate" / "summary.md").read_text()
    assert markdown.startswith("## Performance gate: UNDERPOWERED\n\n**Underpowered SLO**")
    code = main(["gate", "short", "--slo", str(slo), "--require-power", "--out", str(root)])
    assert code == ExitCode.UNDERPOWERED


def test_a_corrected_slo_on_a_closed_model_run_says_why_it_has_no_data(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(root / "closed", _series(1, 500))
    slo = tmp_path / "slo.toml"
    slo.write_text('total = ["p99 < 10s", "p99+co < 10s"]\n')
    code = main(["gate", "closed", "--slo", str(slo), "--out", str(root)])
    assert code == ExitCode.GATE_FAILED
    verdict = json.loads((root / "closed" / "gate" / "verdict.json").read_text())
    assert [r["passed"] for r in verdict["slo"]] == [True, False]
    assert "only an open-model run (--arrival-rate) has them" in verdict["slo"][1]["message"]


def test_the_minimum_detectable_effect_fails_the_gate_about_half_the_time() -> None:
    """A/A pairs give the p50's MDE; B slowed by exactly that fails ~50 % of the time."""
    rng = np.random.default_rng(7)
    policy = Policy()
    n = 2000

    def pair(scale: float) -> tuple[Dist, Dist]:
        a = Dist.from_samples_us(latency_ms(rng, n, slow_share=0.0) * 1000)
        b = Dist.from_samples_us(latency_ms(rng, n, slow_share=0.0, scale=scale) * 1000)
        return a, b

    mdes = []
    for _ in range(20):
        a, b = pair(1.0)
        (change,) = with_power([compare_quantile("p50", a, b, policy)], policy.confidence)
        mdes.append(change.mde)
    mde = float(np.median(mdes))
    assert 0.10 < mde < 0.25  # tolerance 10 % plus the noise of 2,000 requests
    failed = sum(
        compare_quantile("p50", *pair(1 + mde), policy).verdict == "regression" for _ in range(200)
    )
    assert 0.35 < failed / 200 < 0.65, failed
    # twice the tolerance's margin beyond it is caught nearly always
    caught = sum(
        compare_quantile("p50", *pair(1 + 2 * mde), policy).verdict == "regression"
        for _ in range(50)
    )
    assert caught >= 48


MOCK = '[faults.routes."/api/v1/services/{{code}}"]\nlatency = {{ kind = "lognormal", median_ms = {m}, p99_ms = {p} }}\n'  # noqa: E501


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_short_real_pair_with_one_route_40_percent_slower_never_passes(tmp_path: Path) -> None:
    """The case that passed before (69 of 80 comparisons inconclusive, the slowed route's p50
    +40 % [+17 %, +69 %]): a short interleaved pair is underpowered, or fails; never a pass."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(MOCK.format(m=20, p=60))
    b.write_text(MOCK.format(m=28, p=84))
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "gate-ab", "--a", str(a), "--b", str(b),
         "--rounds", "1", "--duration", "8s", "--users", "24", "--think-scale", "0.02",
         "--workers", "1", "--require-power", "--out", str(out)],
        capture_output=True, text=True, timeout=220,
    )  # fmt: skip
    assert done.returncode in (ExitCode.GATE_FAILED, ExitCode.UNDERPOWERED), (
        done.stdout[-3000:] + done.stderr[-3000:]
    )
    (job,) = out.glob("ab-*")
    verdict = json.loads((job / "gate" / "verdict.json").read_text())
    assert verdict["outcome"] in ("fail", "underpowered")
    route = next(c for c in verdict["comparisons"] if c["key"] == "GET /api/v1/services/[code]")
    p50 = next(ch for ch in route["changes"] if ch["metric"] == "p50")
    assert p50["mde"] is not None and p50["mde"] > p50["tolerance"]
    assert "Smallest regression this run could detect" in done.stdout
