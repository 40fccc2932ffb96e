"""Real ``locust`` runs against a real mock portal, both child processes on loopback.

The mock is started once for the module with fast status clocks; each run uses its own slice
of the citizen pool (``--citizen-offset``) so charges paid in one run do not empty another's.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")
HTTP_TYPES = {"GET", "POST", "PUT", "PATCH", "DELETE"}
JOURNEYS = ("browse", "login", "status", "apply", "pay", "refresh", "logout")
MOCK_CONFIG = """\
review_after_s = 0.2
decide_after_s = 0.6
payment_settle_s = 0.2
"""

pytestmark = pytest.mark.slow


@contextmanager
def serve_mock(workdir: Path, config: str, *extra: str) -> Iterator[str]:
    """A mock portal child process on an ephemeral loopback port; yields its base URL."""
    with mock_process(workdir, config, *extra) as (url, _proc):
        yield url


@contextmanager
def mock_process(
    workdir: Path, config: str, *extra: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`serve_mock`, yielding the child process beside the URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "mock.toml").write_text(config)
    log_path = workdir / "mock.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mock_portal", "--host", "127.0.0.1", "--port", "0",
             "--config", str(workdir / "mock.toml"), "--data-dir", str(workdir / "data"), *extra],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            match = READY.search(log_path.read_text())
            url = match.group(1) if match else None
            time.sleep(0.05)
        assert url is not None, f"mock did not start: {log_path.read_text()[-2000:]}"
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_mock(tmp_path_factory.mktemp("mock"), MOCK_CONFIG) as url:
        yield url


@dataclass(frozen=True)
class Row:
    requests: int
    failures: int
    avg_ms: float


Stats = dict[tuple[str, str], Row]


def run_locust(
    url: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[Stats, Path]:
    """Run locust to the end; its final statistics (``--json-file``, written at exit: the CSV
    files are rewritten once a second and can miss the run's last second) and the path of its
    per-second history CSV."""
    prefix = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "locust", "-f", "locustfile.py", "--host", url,
        "--headless", "--only-summary", "--loglevel", "WARNING", "--csv", str(prefix),
        "--json-file", str(prefix), "--think-scale", "0", "--poll-interval", "0.1",
        "--results-dir", str(tmp_path / "results"), *args,
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=90, env={**os.environ, **(env or {})}
    )
    assert done.returncode == 0, done.stderr[-4000:]
    entries = json.loads(Path(f"{prefix}.json").read_text())
    stats = {
        (e["method"], e["name"]): Row(
            requests=e["num_requests"],
            failures=e["num_failures"],
            avg_ms=e["total_response_time"] / max(e["num_requests"], 1),
        )
        for e in entries
    }
    return stats, Path(f"{prefix}_stats_history.csv")


_SERVED = re.compile(
    r'^portal_http_requests_total\{.*route="/(?:api|oauth2)[^"]*".*\} (\S+)$', re.MULTILINE
)


def served(url: str) -> float:
    """Portal requests (API and single sign-on) the mock at ``url`` has answered so far."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/metrics", timeout=5) as resp:  # the test's own loopback mock
        return sum(float(v) for v in _SERVED.findall(resp.read().decode()))


def count(stats: Stats, kind: str, name: str) -> int:
    row = stats.get((kind, name))
    return row.requests if row is not None else 0


def funnel_steps(tmp_path: Path) -> dict[str, int]:
    """Funnel steps reached, from the run's results: they are not in Locust's statistics."""
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    return {r["name"]: r["count"] for r in summary["journeys"] if r["method"] == "FUNNEL"}


def assert_no_failures(stats: Stats) -> None:
    failed = {key: row.failures for key, row in stats.items() if row.failures}
    assert failed == {}


def test_closed_model_runs_every_journey_without_failures(mock_url: str, tmp_path: Path) -> None:
    stats, _ = run_locust(mock_url, tmp_path, "-u", "12", "-r", "12", "-t", "9s")
    assert_no_failures(stats)
    for journey in JOURNEYS:
        assert count(stats, "JOURNEY", journey) > 0, journey
    # the funnel: second factors, decided applications, settled payments with receipts; in
    # the run's results, and not in Locust's statistics
    funnel = funnel_steps(tmp_path)
    for step in ("login/2 second factor", "login/5 profile", "apply/3 decided",
                 "apply/4 rated", "pay/4 paid", "pay/6 receipt"):  # fmt: skip
        assert funnel.get(step, 0) > 0, step
    assert not [key for key in stats if key[0] == "FUNNEL"]
    # a step is never reached more often than the journey started
    assert funnel["login/5 profile"] <= count(stats, "JOURNEY", "login")
    # dynamic URLs are grouped: no ids in request names
    http_names = {name for kind, name in stats if kind in HTTP_TYPES}
    assert "/api/v1/applications/[id]" in http_names
    assert "/api/v1/payments/[id]/receipt" in http_names
    assert not [n for n in http_names if re.search(r"APP-|PAY-|/services/\d", n)]


def test_open_model_keeps_its_schedule_and_records_corrected_latency(
    mock_url: str, tmp_path: Path
) -> None:
    stats, _ = run_locust(
        mock_url, tmp_path, "-t", "30s", "--citizen-offset", "7",
        "--arrival-profile", "2s:0-30,5s:30", "--arrival-poisson",
    )  # fmt: skip
    assert_no_failures(stats)
    assert count(stats, "SCHEDULE", "start lag") > 0
    assert count(stats, "SCHEDULE", "dropped start") == 0
    assert count(stats, "JOURNEY", "login") > 0 and count(stats, "JOURNEY", "browse") > 0
    http = [key for key in stats if key[0] in HTTP_TYPES]
    assert http
    for kind, name in http:
        twin = stats[(f"{kind}+CO", name)]
        assert twin.requests == stats[(kind, name)].requests
        assert twin.avg_ms >= stats[(kind, name)].avg_ms


def test_open_model_drops_and_counts_starts_when_its_pool_is_full(
    mock_url: str, tmp_path: Path
) -> None:
    # 600 evenly spaced arrivals in 3 s against room for one visit at a time: most are dropped
    stats, _ = run_locust(
        mock_url, tmp_path, "-t", "30s", "--citizen-offset", "11", "--exit-code-on-error", "0",
        "--arrival-rate", "200", "--arrival-duration", "3", "--open-pool-size", "1",
    )  # fmt: skip
    started = count(stats, "SCHEDULE", "start lag")
    dropped = count(stats, "SCHEDULE", "dropped start")
    assert started + dropped == 600
    assert dropped > started > 0
    assert stats[("SCHEDULE", "dropped start")].failures == dropped
    assert count(stats, "JOURNEY", "login") + count(stats, "JOURNEY", "browse") >= started


def test_named_shape_drives_the_user_count_and_ends_the_run(mock_url: str, tmp_path: Path) -> None:
    # the shape, its duration and its peak (Locust's own -u) from the environment, its
    # parameter as a flag: both paths work, and the shape's duration ends the run before -t
    stats, history = run_locust(
        mock_url, tmp_path, "-t", "60s", "--citizen-offset", "13", "--shape-ramp", "0.4",
        env={"PORTAL_SHAPE": "ramp", "PORTAL_SHAPE_DURATION": "5", "LOCUST_USERS": "4"},
    )  # fmt: skip
    assert_no_failures(stats)
    with history.open(newline="") as f:
        users = [int(r["User Count"]) for r in csv.DictReader(f)]
    assert max(users) == 4
    assert count(stats, "JOURNEY", "login") > 0


def test_tokens_are_refreshed_before_they_expire(tmp_path: Path) -> None:
    # 6 s tokens against visits of about 10 s (human pauses at 0.3 of the model's): without
    # the refresh before each journey, the later requests of a visit would answer 401
    config = MOCK_CONFIG + "access_token_ttl_s = 6\n"
    with serve_mock(tmp_path / "mock", config) as url:
        stats, _ = run_locust(
            url, tmp_path, "CitizenUser", "-u", "8", "-r", "8", "-t", "10s",
            "--think-scale", "0.3",
        )  # fmt: skip
    assert_no_failures(stats)
    assert count(stats, "JOURNEY", "refresh") > 0


def test_payments_are_retried_with_their_key_and_never_paid_twice(tmp_path: Path) -> None:
    # Payment requests wait 0-1 s before the portal handles them, against a client that gives
    # up after 0.5 s, and 30 % of the rest answer 503: about two attempts in three fail and are
    # retried. (The mock drops a request whose client left, so the replay of a processed
    # payment is checked against a scripted server in test_payment_retries.py.)
    config = MOCK_CONFIG + (
        '[faults.routes."/api/v1/payments"]\n'
        'latency = { kind = "uniform", min_ms = 0, max_ms = 1000 }\n'
        "error = { status = 503, rate = 0.3 }\n"
    )
    admin = "admin-token-for-this-test-0123"
    with serve_mock(tmp_path / "mock", config, "--admin-token", admin) as url:
        stats, _ = run_locust(
            url, tmp_path, "CitizenUser", "-u", "12", "-r", "12", "-t", "8s",
            "--exit-code-on-error", "0", "--payment-timeout", "0.5",
        )  # fmt: skip
        ledger_request = urllib.request.Request(  # noqa: S310 (the mock's loopback URL)
            f"{url}/admin/ledger", headers={"Authorization": f"Bearer {admin}"}
        )
        with urllib.request.urlopen(ledger_request, timeout=10) as resp:  # noqa: S310
            ledger = json.loads(resp.read())
    failed = {key for key, row in stats.items() if row.failures}
    assert failed <= {
        ("POST", "/api/v1/payments"),
        ("POST", "/api/v1/payments [retry]"),
        ("JOURNEY", "pay"),
    }
    assert ("POST", "/api/v1/payments") in failed
    funnel = funnel_steps(tmp_path)
    assert funnel.get("pay/3 retry", 0) > 0
    retries = count(stats, "POST", "/api/v1/payments [retry]")
    # every retry step sent its request; at most one per user was in flight at the end
    assert retries <= funnel["pay/3 retry"] <= retries + 12
    paid = funnel.get("pay/4 paid", 0)
    assert paid > 0
    # a journey fails only when all of its attempts did: 0.4 ** 4 of them, give or take
    assert stats[("JOURNEY", "pay")].failures < paid
    # every payment a journey saw created exists; at most one per user more, created by a
    # request in flight when the run stopped
    assert paid <= ledger["payments"] <= paid + 12
    assert ledger["double_paid_charges"] == 0 and ledger["balanced"]
