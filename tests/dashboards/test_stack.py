"""``portal-load stack up|status|down`` with the real Prometheus binary, through the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from harness.observe.prometheus import PrometheusClient, process_exited
from harness.observe.stack import read_state, stack_down

pytestmark = [
    pytest.mark.slow,
    pytest.mark.needs("prometheus"),
]


def _portal_load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "stack", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "stack"
    yield directory
    stack_down(directory)  # whatever the test did, no Prometheus outlives it


@pytest.fixture
def exporter() -> Iterator[str]:
    """A stand-in for the mock's /metrics on an ephemeral loopback port."""
    registry = CollectorRegistry()
    Gauge("portal_http_in_flight", "", registry=registry).set(3)
    httpd, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.mark.timeout(90)
def test_up_status_down(state_dir: Path, exporter: str) -> None:
    up = _portal_load(
        "up",
        "--state-dir",
        str(state_dir),
        "--mock",
        f"http://{exporter}",
        "--scrape-interval",
        "1s",
    )
    assert up.returncode == 0, up.stderr
    state = read_state(state_dir)
    assert state is not None
    assert state.url.startswith("http://127.0.0.1:")
    assert f"Prometheus started: {state.url}" in up.stdout
    assert (state_dir / "prometheus" / "rules" / "red.yml").is_file()

    # The command has exited; Prometheus still runs, scrapes the target and has the rules.
    prom = PrometheusClient(state.url)
    assert not process_exited(state.pid)
    prom.wait_for_targets_up(timeout_s=20, jobs=["mock_portal"])
    assert [s.value for s in prom.wait_for_data("portal_http_in_flight", timeout_s=20)] == [3.0]
    assert any(r.name == "job:portal_http_requests:rate1m" for r in prom.rules())

    status = _portal_load("status", "--state-dir", str(state_dir))
    assert status.returncode == 0, status.stderr
    assert f"running at {state.url}" in status.stdout
    assert f"mock_portal: http://{exporter}/metrics up" in status.stdout
    assert "loadgen: no targets" in status.stdout

    # A second `up` retargets the running server instead of starting another.
    again = _portal_load(
        "up",
        "--state-dir",
        str(state_dir),
        "--mock",
        f"http://{exporter}",
        "--loadgen",
        "127.0.0.1:9",
    )
    assert again.returncode == 0, again.stderr
    assert "already running, targets updated" in again.stdout
    again_state = read_state(state_dir)
    assert again_state is not None and again_state.pid == state.pid
    prom.wait_until(
        lambda: any(t.job == "loadgen" for t in prom.targets()), timeout_s=20, what="loadgen"
    )

    down = _portal_load("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert "Prometheus stopped" in down.stdout
    assert process_exited(state.pid)
    assert not prom.ready()
    assert read_state(state_dir) is None
    assert (state_dir / "prometheus" / "data").is_dir()  # the TSDB is kept

    status = _portal_load("status", "--state-dir", str(state_dir))
    assert status.returncode == 3
    assert "not running" in status.stdout


@pytest.mark.timeout(60)
def test_a_stale_state_file_does_not_stop_another_process(state_dir: Path) -> None:
    # A recorded pid that is now someone else's (here: a sleeping child) is left alone.
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        state_dir.mkdir(parents=True)
        (state_dir / "state.json").write_text(
            f'{{"pid": {sleeper.pid}, "url": "http://127.0.0.1:1", '
            f'"work_dir": "{state_dir / "prometheus"}"}}'
        )
        status = _portal_load("status", "--state-dir", str(state_dir))
        assert status.returncode == 3, status.stdout
        down = _portal_load("down", "--state-dir", str(state_dir))
        assert down.returncode == 0
        assert "not running" in down.stdout
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--loadgen", "localhost"), ("--loadgen", "127.0.0.1:99999"), ("--mock", "ftp://x:1")],
)
def test_bad_targets_are_usage_errors(state_dir: Path, flag: str, value: str) -> None:
    result = _portal_load("up", "--state-dir", str(state_dir), flag, value)
    assert result.returncode == 2
    assert result.stderr.startswith("UsageError: ")
    assert read_state(state_dir) is None


def test_down_without_a_stack(state_dir: Path) -> None:
    result = _portal_load("down", "--state-dir", str(state_dir))
    assert result.returncode == 0
    assert result.stdout.strip() == "Prometheus: not running"
