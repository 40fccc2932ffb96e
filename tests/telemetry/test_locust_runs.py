"""Real ``locust`` processes against a real mock portal, all on ephemeral loopback ports.

The tiny locustfile next to this module imports the telemetry; each test starts Locust as
subprocesses (single process, master + worker, ``--processes``), interrupts or kills them
where the test says so, and checks the results folder and ``/metrics`` as the harness and
Prometheus will read them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.observe import livestats
from scenarios.telemetry import results
from tests.conftest import forked_workers

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).with_name("locustfile_tiny.py")
LOCUST = Path(sys.executable).with_name("locust")
# Generous bounds for a loaded 2-core machine; runs end on their own well before them.
PROCESS_TIMEOUT_S = 40.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "PORTAL_"))}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("mock")
    log = work / "mock.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mock_portal", "--port", "0", "--data-dir", str(work / "data")],
            cwd=REPO,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> str | None:
            match = re.search(r"ready on (http://127\.0\.0\.1:\d+)", log.read_text())
            assert proc.poll() is None, f"mock exited:\n{log.read_text()}"
            return match.group(1) if match else None

        yield _wait_for(ready, "the mock portal to start")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Locust:
    """One locust subprocess, its output in a file (a pipe could fill and block it)."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.proc = subprocess.Popen(
            [str(LOCUST), "-f", str(LOCUSTFILE), *args],
            cwd=log.parent,
            env=_env(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=PROCESS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"locust did not exit:\n{self.output()}") from None
        finally:
            self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Locust]]:
    started: list[Locust] = []

    def start(*args: str, log: str = "locust.log") -> Locust:
        locust = Locust(list(args), tmp_path / log)
        started.append(locust)
        return locust

    yield start
    for locust in started:
        locust.stop()


def _headless(host: str, run_time: str, *extra: str) -> list[str]:
    return ["--headless", "-u", "4", "-r", "4", "-t", run_time, "--host", host,
            "--only-summary", "--stop-timeout", "0", *extra]  # fmt: skip


def _summary(run_dir: Path) -> dict[str, Any]:
    return results.read_summary(run_dir)


def _all_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return summary["requests"] + summary["journeys"] + summary["corrected"]


def _check_complete_folder(run_dir: Path, summary: dict[str, Any]) -> None:
    """Every file parses and agrees with the summary and with Locust's own statistics."""
    names = {(r["name"], r["method"]) for r in summary["requests"]}
    assert names == {
        ("/api/v1/services", "GET"),
        ("/api/v1/services/{code}", "GET"),
        ("/healthz", "GET"),
        ("/healthz (journey)", "GET"),
    }
    assert [(r["name"], r["method"]) for r in summary["journeys"]] == [("browse", "JOURNEY")]
    total = summary["total"]
    assert total["count"] == sum(r["count"] for r in summary["requests"]) > 0
    # the HDR path saw exactly what Locust's own statistics saw
    assert sum(r["count"] for r in _all_rows(summary)) == summary["locust_stats"]["requests"]
    assert total["failures"] == summary["locust_stats"]["failures"]
    missing = next(r for r in summary["requests"] if r["name"] == "/api/v1/services/{code}")
    assert missing["failures"] == missing["count"] > 0
    assert missing["failures_by_reason"] == {"HTTP 404 not-found (expected 200)": missing["count"]}
    assert 0 < total["p50_ms"] <= total["p95_ms"] <= total["p99_ms"] <= total["max_ms"]

    histograms = results.read_histograms(run_dir)
    for row in _all_rows(summary):
        assert histograms[(row["name"], row["method"])].get_total_count() == row["count"]
    series = results.read_csv(run_dir / results.TIMESERIES_CSV)
    assert sum(int(r["requests"]) for r in series) == total["count"]
    assert sum(int(r["failures"]) for r in series) == total["failures"]
    failures = results.read_csv(run_dir / results.FAILURES_CSV)
    assert sum(int(f["count"]) for f in failures) == total["failures"]
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_single_process_run_writes_a_complete_results_folder(
    mock_url: str, spawn: Callable[..., Locust], tmp_path: Path
) -> None:
    run_dir = tmp_path / "results" / "run-local"
    locust = spawn(*_headless(mock_url, "4s", "--results-dir", str(run_dir)))
    locust.wait()
    summary = _summary(run_dir)
    assert summary["status"] == "complete", locust.output()
    assert summary["final"] is True
    assert summary["interrupted"] is False
    assert summary["mode"] == "local"
    assert summary["run_id"] == "run-local"
    assert summary["users"]["max"] == 4
    assert summary["workers"]["count"] == 1
    assert summary["start_unix_s"] < summary["end_unix_s"]
    assert summary["duration_s"] > 0
    _check_complete_folder(run_dir, summary)


def test_master_and_worker_processes_merge_into_one_folder(
    mock_url: str, spawn: Callable[..., Locust], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run-distributed"
    port = str(_free_port())
    master = spawn(
        *_headless(mock_url, "5s", "--results-dir", str(run_dir)),
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--expect-workers", "1",
        log="master.log",
    )  # fmt: skip
    worker = spawn(
        "--worker", "--master-host", "127.0.0.1", "--master-port", port, log="worker.log"
    )
    master.wait()
    worker.wait()
    summary = _summary(run_dir)
    assert summary["status"] == "complete", master.output()
    assert summary["mode"] == "distributed"
    assert summary["workers"]["count"] == 1
    (only,) = summary["workers"]["per_worker"]
    assert only["requests"] == summary["total"]["count"]
    assert only["reports"] >= 2
    _check_complete_folder(run_dir, summary)


def test_forked_worker_processes_merge_too(
    mock_url: str, spawn: Callable[..., Locust], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run-processes"
    locust = spawn(*_headless(mock_url, "4s", "--results-dir", str(run_dir), *forked_workers(2)))
    locust.wait()
    summary = _summary(run_dir)
    assert summary["status"] == "complete", locust.output()
    assert summary["workers"]["count"] == 2
    per_worker = summary["workers"]["per_worker"]
    assert len(per_worker) == 2
    assert sum(w["requests"] for w in per_worker) == summary["total"]["count"]
    _check_complete_folder(run_dir, summary)


def _metrics_text(run_dir: Path) -> str:
    port = int((run_dir / results.METRICS_PORT_FILE).read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _metrics(run_dir: Path) -> dict[str, list[Any]]:
    return {f.name: f.samples for f in text_string_to_metric_families(_metrics_text(run_dir))}


def _requests_seen(run_dir: Path) -> float:
    if not (run_dir / results.METRICS_PORT_FILE).exists():
        return 0.0
    try:
        samples = _metrics(run_dir).get("loadgen_requests", [])
    except OSError:
        return 0.0
    return sum(s.value for s in samples if s.name == "loadgen_requests_total")


def test_sigterm_to_the_master_leaves_partial_results_that_parse(
    mock_url: str, spawn: Callable[..., Locust], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run-interrupted"
    port = str(_free_port())
    master = spawn(
        *_headless(mock_url, "60s", "--results-dir", str(run_dir), "--metrics-port", "0"),
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--expect-workers", "1",
        log="master.log",
    )  # fmt: skip
    worker = spawn(
        "--worker", "--master-host", "127.0.0.1", "--master-port", port, log="worker.log"
    )
    _wait_for(lambda: _requests_seen(run_dir) > 0, "the master to merge a report")
    master.proc.send_signal(signal.SIGTERM)
    master.wait()
    worker.wait()
    summary = _summary(run_dir)
    assert summary["status"] == "partial", master.output()
    assert summary["interrupted"] is True
    assert summary["final"] is True
    assert summary["total"]["count"] > 0
    assert results.read_histograms(run_dir)
    assert results.read_csv(run_dir / results.TIMESERIES_CSV)
    results.read_csv(run_dir / results.FAILURES_CSV)
    json.loads((run_dir / results.HISTOGRAMS_JSON).read_text())


def test_a_killed_worker_marks_the_run_degraded(
    mock_url: str, spawn: Callable[..., Locust], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run-degraded"
    port = str(_free_port())
    master = spawn(
        *_headless(mock_url, "8s", "--results-dir", str(run_dir), "--metrics-port", "0"),
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--expect-workers", "1",
        log="master.log",
    )  # fmt: skip
    worker = spawn(
        "--worker", "--master-host", "127.0.0.1", "--master-port", port, log="worker.log"
    )
    _wait_for(lambda: _requests_seen(run_dir) > 0, "the master to merge a report")
    worker.proc.send_signal(signal.SIGKILL)
    worker.wait()
    master.wait()
    summary = _summary(run_dir)
    assert summary["status"] == "degraded", master.output()
    (event,) = summary["degraded"]
    (lost,) = summary["workers"]["per_worker"]
    assert event["worker"] == lost["id"]
    assert event["reason"] == "missing"
    assert event["at_unix_s"] >= lost["last_report_unix_s"]
    assert "worker_lost" in summary["flags"]
    assert summary["total"]["count"] > 0


def test_metrics_counters_equal_the_summary_at_the_end(
    mock_url: str, spawn: Callable[..., Locust], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run-metrics"
    locust = spawn(
        *_headless(mock_url, "4s", "--results-dir", str(run_dir)),
        "--metrics-port", "0", "--metrics-linger", "30",
    )  # fmt: skip

    def final_summary() -> dict[str, Any] | None:
        try:
            summary = _summary(run_dir)
        except (OSError, ValueError):
            return None
        return summary if summary["final"] else None

    summary = _wait_for(final_summary, "the final summary", timeout_s=PROCESS_TIMEOUT_S)
    port = int((run_dir / results.METRICS_PORT_FILE).read_text())
    live = livestats.scrape(f"http://127.0.0.1:{port}/live", clock=lambda: 0.0)
    text = _metrics_text(run_dir)  # the process lingers until this scrape
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    locust.wait()
    assert summary["status"] == "complete"
    # The live view's totals are the exposition's, summed by the master instead of the harness.
    full = livestats.parse(text, 0.0)
    assert live is not None and live.requests == summary["total"]["count"] > 0
    assert live.latency_sum_s == pytest.approx(full.latency_sum_s)
    assert replace(live, latency_sum_s=full.latency_sum_s) == full

    def by_labels(family: str, sample: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {
            tuple(s.labels[label] for label in labels): s.value
            for s in families[family]
            if s.name == sample
        }

    requests = by_labels("loadgen_requests", "loadgen_requests_total", "name", "method")
    assert requests == {(r["name"], r["method"]): r["count"] for r in summary["requests"]}
    failures = by_labels("loadgen_failures", "loadgen_failures_total", "name", "method", "reason")
    assert failures == {
        (r["name"], r["method"], reason): count
        for r in summary["requests"]
        for reason, count in r["failures_by_reason"].items()
    }
    counts = by_labels(
        "loadgen_response_time_seconds", "loadgen_response_time_seconds_count", "name", "method"
    )
    assert counts == requests
    journeys = by_labels("loadgen_journeys", "loadgen_journeys_total", "name", "kind")
    assert journeys == {(r["name"], r["method"]): r["count"] for r in summary["journeys"]}
    assert families["loadgen_workers"][0].value == 1
    assert {s.labels["worker"] for s in families["loadgen_worker_cpu_percent"]} == {"local"}
