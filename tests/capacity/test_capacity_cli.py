"""``portal-load capacity`` options: campaign file's [capacity] table, flags, and misuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.campaign import Override, load_campaign
from harness.errors import UsageError


def test_file_then_flags(tmp_path: Path) -> None:
    campaign = tmp_path / "c.toml"
    campaign.write_text(
        '[campaign]\nname = "cap"\n[capacity]\nslo = "p99<50ms"\nstart_rps = 10\n'
        'step_rps = 5\nsettle = "500ms"\nheadroom = 0.25\n'
    )
    flags = [Override("capacity.step_rps", "20", "--step"), Override("capacity.max_hold", "9s", "")]
    o = load_campaign(campaign, flags).capacity
    assert [t.text for t in o.slo] == ["p99<50ms"] and o.headroom == 0.25
    assert (o.plan.start_rps, o.plan.step_rps, o.plan.settle_s, o.plan.max_hold_s) == (
        10.0, 20.0, 0.5, 9.0,
    )  # fmt: skip
    assert o.plan.load(3) == 70.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("speed = 3", "unknown key"),
        ("headroom = 1.5", "headroom"),
        ('probe_path = "api"', "probe_path"),
        ('slo = "p95 under 3"', "capacity.slo"),
        ('slo = "rps > 3"', "capacity.slo: 'rps > 3': a capacity step is judged on an upper"),
        ('slo = ["p99.9 < 1s"]', "a step measures p50, p90, p95 and p99"),
        ("start_rps = -1", "capacity.start_rps"),
    ],
)
def test_misuse_is_a_usage_error(tmp_path: Path, table: str, message: str) -> None:
    campaign = tmp_path / "c.toml"
    campaign.write_text(f"[capacity]\n{table}\n")
    with pytest.raises(UsageError, match=message):
        load_campaign(campaign)


def test_bad_slo_flag_exits_2_before_starting_anything(tmp_path: Path, capsys) -> None:
    code = cli.main(["capacity", "--slo", "p95>1s", "--out", str(tmp_path)])
    assert code == 2
    assert "UsageError: --slo" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_capacity_slo_is_the_gate_s_threshold_language(tmp_path: Path) -> None:
    """``p95 < 300ms, error_rate < 1%``, the compact ``p95<300ms,errors<1%`` and a list all
    read the same."""
    seen = []
    for slo in ('"p95 < 300ms, error_rate < 1%"', '"p95<300ms,errors<1%"',
                '["p95 < 300ms", "error_rate < 1%"]'):  # fmt: skip
        campaign = tmp_path / "c.toml"
        campaign.write_text(f"[capacity]\nslo = {slo}\n")
        seen.append(
            [(t.metric, t.percentile, t.op, t.value) for t in load_campaign(campaign).capacity.slo]
        )
    assert (
        seen[0] == seen[1] == seen[2] == [("p", 95.0, "<", 300.0), ("error_rate", None, "<", 0.01)]
    )
