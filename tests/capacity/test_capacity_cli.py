"""``portal-load capacity`` options: campaign file's [capacity] table, flags, and misuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.capacity.command import resolve_options
from harness.errors import UsageError

FLAGS_NONE = dict.fromkeys(
    ("slo", "start_rps", "step_rps", "max_rps", "max_steps", "settle", "window", "max_hold",
     "after_breach", "probe_path", "peak_rps", "headroom", "cores_per_instance"),
)  # fmt: skip


def test_file_then_flags(tmp_path: Path) -> None:
    campaign = tmp_path / "c.toml"
    campaign.write_text(
        '[campaign]\nname = "cap"\n[capacity]\nslo = "p99<50ms"\nstart_rps = 10\n'
        'step_rps = 5\nsettle = "500ms"\nheadroom = 0.25\n'
    )
    o = resolve_options(str(campaign), {**FLAGS_NONE, "step_rps": 20.0, "max_hold": "9s"})
    assert o.slo == "p99<50ms" and o.headroom == 0.25
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
        ('slo = "p95 under 3"', "--slo"),
        ("start_rps = -1", "capacity.start_rps"),
    ],
)
def test_misuse_is_a_usage_error(tmp_path: Path, table: str, message: str) -> None:
    campaign = tmp_path / "c.toml"
    campaign.write_text(f"[capacity]\n{table}\n")
    with pytest.raises(UsageError, match=message):
        resolve_options(str(campaign), FLAGS_NONE)


def test_bad_slo_flag_exits_2_before_starting_anything(tmp_path: Path, capsys) -> None:
    code = cli.main(["capacity", "--slo", "p95>1s", "--out", str(tmp_path)])
    assert code == 2
    assert "UsageError: --slo" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
