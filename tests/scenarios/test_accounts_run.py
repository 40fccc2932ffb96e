"""``--accounts`` and ``--mfa-code`` through real ``locust`` runs against the mock.

The mock's second factor is configured to ``123456`` (not its default), so every login of a
citizen with a second factor fails unless the journeys answer with the code they are given.
The accounts are citizens of the mock's pool listed in a file; the recorder locustfile logs
which account each user signed in with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import forked_workers

from .test_locust_runs import MOCK_CONFIG, serve_mock

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).with_name("locustfile_recorded.py")
MFA_CONFIG = MOCK_CONFIG + 'mfa_code = "123456"\n'
# citizens 5, 10 and 15 have a second factor (n % 5 == 0); the others do not
CITIZENS = (5, 6, 7, 10, 11, 12, 15, 16)
# Long enough that every user has signed in once on a busy CI machine (Locust's start and six
# users' first logins took over 3 s there), short enough to stay a quick test.
RUN_TIME = "8s"

pytestmark = pytest.mark.slow


def accounts_file(tmp_path: Path, citizens: tuple[int, ...]) -> Path:
    path = tmp_path / "accounts.csv"
    rows = "".join(f"citizen-{n},Passw0rd-{n}\n" for n in citizens)
    path.write_text("login,password\n" + rows)
    return path


def run(
    url: str, tmp_path: Path, *args: str, run_time: str = RUN_TIME
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "record"
    out.mkdir(parents=True, exist_ok=True)
    prefix = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", url, "--headless",
        "--only-summary", "--loglevel", "WARNING", "--json-file", str(prefix), "-t", run_time,
        "--think-scale", "0.05", "--poll-interval", "0.1",
        "--results-dir", str(tmp_path / "results"), "RecordedCitizen", *args,
    ]  # fmt: skip
    env = {**os.environ, "PORTAL_RECORD_DIR": str(out)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    return done, out


def logins(out: Path) -> dict[tuple[int, str], list[str]]:
    """The accounts each (worker, user) signed in with, in order."""
    found: dict[tuple[int, str], list[str]] = defaultdict(list)
    for path in out.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            worker, owner, kind, value = json.loads(line)
            if kind == "login":
                found[(worker, owner)].append(value)
    return found


def stats(tmp_path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(count, failures) by (type, name): Locust's statistics, and the funnel steps from the
    run's results (they are not in Locust's)."""
    entries = json.loads((tmp_path / "run.json").read_text())
    found = {(e["method"], e["name"]): (e["num_requests"], e["num_failures"]) for e in entries}
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    for row in summary["journeys"]:
        if row["method"] == "FUNNEL":
            found[("FUNNEL", row["name"])] = (row["count"], row["failures"])
    return found


def test_accounts_from_a_file_with_the_configured_code_over_two_workers(tmp_path: Path) -> None:
    path = accounts_file(tmp_path, CITIZENS)
    with serve_mock(tmp_path / "mock", MFA_CONFIG) as url:
        done, out = run(
            url, tmp_path, *forked_workers(2), "-u", "6", "-r", "6",
            "--accounts", str(path), "--mfa-code", "123456",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = stats(tmp_path)
    assert {key: v for key, v in result.items() if v[1]} == {}  # no failure at all
    assert result[("FUNNEL", "login/2 second factor")][0] > 0
    assert result[("POST", "/oauth2/otp")][0] > 0
    held = logins(out)
    assert len(held) == 6
    # each user keeps one account for its life, no two users share one, and worker w signs
    # in only with its share of the file (rows w, w + 2, ...)
    assert all(len(set(v)) == 1 for v in held.values())
    accounts = [v[0] for v in held.values()]
    assert len(set(accounts)) == 6
    for (worker, _owner), (login, *_) in held.items():
        assert login in {f"citizen-{n}" for n in CITIZENS[worker::2]}


def test_without_the_configured_code_second_factor_logins_fail(tmp_path: Path) -> None:
    path = accounts_file(tmp_path, (10, 11))
    with serve_mock(tmp_path / "mock", MFA_CONFIG) as url:
        # Short: past five wrong codes for one login the mock throttles its logins (429)
        done, _ = run(url, tmp_path, "-u", "2", "-r", "2", "--accounts", str(path), run_time="3s")
    assert done.returncode == 1  # failures
    result = stats(tmp_path)
    assert result[("POST", "/oauth2/otp")][1] == result[("POST", "/oauth2/otp")][0] > 0
    assert result[("POST", "/oauth2/login")][1] == 0


def test_users_beyond_the_accounts_wait_instead_of_sharing(tmp_path: Path) -> None:
    path = accounts_file(tmp_path, (6, 7, 8))
    with serve_mock(tmp_path / "mock", MFA_CONFIG) as url:
        done, out = run(url, tmp_path, "-u", "5", "-r", "5", "--accounts", str(path))
    assert done.returncode == 0, done.stderr[-3000:]
    held = logins(out)
    assert sorted(v[0] for v in held.values()) == ["citizen-6", "citizen-7", "citizen-8"]
    assert "every one of the 3 test accounts of worker 0 is in use" in done.stderr


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("login,password\ncitizen-1,\n", "line 2, column 2: password is empty"),
        (
            "login,pasword\n",
            "line 1, column 2: unknown column 'pasword' (columns: login, password, totp_secret)",
        ),
    ],
)
def test_a_malformed_accounts_file_is_one_line_and_exit_2(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(text)
    done, out = run("http://127.0.0.1:9", tmp_path, "-u", "1", "--accounts", str(path))
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("locust: error:")]
    assert errors == [f"locust: error: --accounts: {path}, {where}"]
    assert logins(out) == {}


def test_open_model_visits_lease_an_account_each_or_fail_at_once(tmp_path: Path) -> None:
    path = accounts_file(tmp_path, (10, 11, 12))
    with serve_mock(tmp_path / "mock", MFA_CONFIG) as url:
        done, _ = run(
            url, tmp_path, "--exit-code-on-error", "0", "--accounts", str(path),
            "--mfa-code", "123456", "--arrival-rate", "40", "--arrival-duration", "2",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = stats(tmp_path)
    failed = {key for key, (_, failures) in result.items() if failures}
    # 80 visits against three accounts: those that found all three held failed at once,
    # without waiting; every other visit signed in and ran without a failure
    assert failed <= {("ACCOUNTS", "no free account")}
    assert result[("JOURNEY", "login")][0] > 0
    assert result[("FUNNEL", "login/2 second factor")][0] > 0
    visits = result[("SCHEDULE", "start lag")][0]
    no_account = result.get(("ACCOUNTS", "no free account"), (0, 0))[0]
    assert no_account < visits
