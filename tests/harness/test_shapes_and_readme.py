"""Named shapes through ``portal-load run``, and the README's campaign file as written.

Each shape runs for the campaign's duration with its parameters from the campaign, ends
``complete`` with exit 0, and its user curve is in ``timeseries.csv`` and the report.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from harness.campaign import load_campaign

from ._runs import only_run, portal_load_to_end

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--workers", "1", "--no-tty", "--think-scale", "0.05"]


def _users_curve(run_dir: Path) -> list[int]:
    with open(run_dir / "timeseries.csv", newline="", encoding="utf-8") as f:
        return [int(float(row["users"])) for row in csv.DictReader(f) if row["users"]]


def readme_campaign() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- campaign-file:[^>]*-->\s*```toml\n(.*?)```", text, re.S)
    assert found, "README.md has no campaign file block"
    return found.group(1)


@pytest.mark.slow
@pytest.mark.timeout(200)
@pytest.mark.parametrize(
    ("shape", "params"),
    [("ramp", "ramp = 0.5"), ("step", "steps = 3"), ("spike", "at = 0.3"), ("soak", ""),
     ("diurnal", "par = 2.0")],
)  # fmt: skip
def test_every_shape_runs_for_the_campaign_s_duration(
    tmp_path: Path, shape: str, params: str
) -> None:
    (tmp_path / "c.toml").write_text(
        f'[campaign]\nduration = "6s"\n[load]\nusers = 6\nspawn_rate = 6\nshape = "{shape}"\n'
        f"[load.shape_params]\n{params}\n"
    )
    done = portal_load_to_end("run", "c.toml", *SHORT, "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    run_dir = only_run(tmp_path / "out")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert 4 <= summary["duration_s"] <= 12  # the shape's duration, not Locust's own default
    curve = _users_curve(run_dir)
    assert max(curve) <= 6 and max(curve) >= 1
    assert "users" in (run_dir / "report.html").read_text()


def test_a_wrong_shape_parameter_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        '[load]\nshape = "ramp"\n[load.shape_params]\npeak_users = 4\n'
    )
    done = portal_load_to_end("run", "c.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "UsageError: c.toml: load.shape_params.peak_users: ramp has no parameter 'peak_users' "
        "(its parameters: ramp)"
    )
    assert not (tmp_path / "out").exists()


def test_the_readme_campaign_file_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "campaign.toml"
    path.write_text(readme_campaign())
    c = load_campaign(path)
    assert (c.name, c.shape, c.users, c.duration_s) == ("peak-hour", "ramp", 400, 300.0)
    assert c.shape_params == {"ramp": 0.25} and c.embedded


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_the_readme_campaign_file_runs(tmp_path: Path) -> None:
    """As written, shortened by flags (a 5-minute ramp to 400 users is a real campaign)."""
    (tmp_path / "campaign.toml").write_text(readme_campaign())
    done = portal_load_to_end(
        "run", "campaign.toml", "--duration", "6s", "--users", "8", "--spawn-rate", "8", *SHORT,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    run_dir = only_run(tmp_path / "results")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"
    curve = _users_curve(run_dir)
    assert curve[0] < max(curve) == 8  # the ramp, then the hold


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_the_second_factor_code_comes_from_the_campaign(tmp_path: Path) -> None:
    """A mock whose fixed code is 123456: the campaign's mfa_code signs every citizen in."""
    (tmp_path / "mock.toml").write_text('mfa_code = "123456"\n')
    (tmp_path / "c.toml").write_text(
        '[campaign]\nduration = "6s"\n[load]\nusers = 10\nspawn_rate = 10\n'
        'user_classes = ["CitizenUser"]\nmfa_code = "123456"\n'
        '[workers]\nmock_config = "mock.toml"\n'
    )
    done = portal_load_to_end("run", "c.toml", *SHORT, "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    summary = json.loads((only_run(tmp_path / "out") / "summary.json").read_text())
    otp = [r for r in summary["requests"] if r["name"] == "/oauth2/otp"]
    assert otp and otp[0]["count"] > 0 and otp[0]["failures"] == 0


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_test_accounts_with_totp_secrets_sign_in_end_to_end(tmp_path: Path) -> None:
    """``[load] accounts`` with a TOTP secret per account, against a mock that knows the same
    secrets: every second factor passes, and each account is used by one user at a time."""
    secrets_ = {f"citizen-{n}": s for n, s in ((1, "JBSWY3DPEHPK3PXP"), (2, "KRSXG5CTMVRXEZLU"))}
    rows = ["login,password,totp_secret"]
    rows += [f"citizen-{n},Passw0rd-{n},{secrets_.get(f'citizen-{n}', '')}" for n in range(1, 9)]
    (tmp_path / "accounts.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "mock.toml").write_text(
        "[totp_secrets]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in secrets_.items())
    )
    (tmp_path / "c.toml").write_text(
        '[campaign]\nduration = "6s"\n[load]\nusers = 6\nspawn_rate = 6\n'
        'user_classes = ["CitizenUser"]\naccounts = "accounts.csv"\n'
        '[workers]\nmock_config = "mock.toml"\n'
    )
    done = portal_load_to_end("run", "c.toml", *SHORT, "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    summary = json.loads((only_run(tmp_path / "out") / "summary.json").read_text())
    rows_by_name = {r["name"]: r for r in summary["requests"]}
    assert rows_by_name["/oauth2/otp"]["count"] > 0
    assert rows_by_name["/oauth2/otp"]["failures"] == 0
    assert summary["total"]["failures"] == 0


def test_a_malformed_accounts_file_is_one_line_with_its_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text("login,password\ncitizen-1\n")
    done = portal_load_to_end("run", "--accounts", "accounts.csv", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("UsageError: --accounts: accounts.csv, line 2")
    assert len(done.stderr.splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_an_arrival_profile_runs_from_the_campaign(tmp_path: Path) -> None:
    """The open model's ramping arrival rate: from 20 % of the peak to the peak over half the
    run, then held; the arrivals per interval rise."""
    (tmp_path / "c.toml").write_text(
        '[campaign]\nduration = "8s"\n[load]\narrival_rate = 30.0\narrival_shape = "ramp"\n'
        "[load.arrival_params]\nbase = 0.2\nramp = 0.5\n"
    )
    done = portal_load_to_end("run", "c.toml", *SHORT, "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    run_dir = only_run(tmp_path / "out")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["open_model"]["started"] > 0
    campaign = (run_dir / "campaign.toml").read_text()
    assert 'arrival_shape = "ramp"' in campaign and "[load.arrival_params]" in campaign
