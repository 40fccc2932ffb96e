"""The open model keeps its arrival rate when the portal slows down (a closed model would not)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from .test_locust_runs import count, run_locust, serve_mock, served

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "open-model-test-admin-token"
RATE_PER_S = 30
DURATION_S = 10
RAISE_AFTER_S = 3.0
SLOW = {"routes": {"*": {"latency": {"kind": "fixed", "ms": 150}}}}


def _put_faults(url: str, doc: dict) -> None:
    request = urllib.request.Request(  # noqa: S310 - the test's own loopback mock
        f"{url}/admin/faults",
        data=json.dumps(doc).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as resp:
        assert resp.status == 200


def _raise_latency_mid_run(url: str, done: threading.Event, raised: list[float]) -> None:
    """Slow the mock down RAISE_AFTER_S after its first portal request (the schedule's start,
    however long Locust took to start), unless the run ended first."""
    deadline = time.monotonic() + 60
    while served(url) < 1:
        if done.wait(0.05) or time.monotonic() > deadline:
            return
    if not done.wait(RAISE_AFTER_S):
        _put_faults(url, SLOW)
        raised.append(time.monotonic())


def test_arrival_rate_holds_while_latency_is_raised_mid_run(tmp_path: Path) -> None:
    with serve_mock(tmp_path / "mock", "", "--admin-token", ADMIN_TOKEN) as url:
        done = threading.Event()
        raised: list[float] = []
        raiser = threading.Thread(target=_raise_latency_mid_run, args=(url, done, raised))
        raiser.start()
        try:
            stats, _ = run_locust(
                url, tmp_path, "-t", "30s", "--exit-code-on-error", "0",
                "--arrival-rate", str(RATE_PER_S), "--arrival-duration", str(DURATION_S),
            )  # fmt: skip
        finally:
            done.set()
            raiser.join(timeout=15)
    assert raised, "the latency was raised while the schedule ran"
    # Every scheduled visit started, none dropped, although each request became 150 ms
    # slower after 3 s: the arrival rate does not depend on the response times.
    assert count(stats, "SCHEDULE", "dropped start") == 0
    assert count(stats, "SCHEDULE", "start lag") == RATE_PER_S * DURATION_S
    # ... and started on time: an executor that waited for its visits would fall seconds
    # behind (each visit now takes over a second); a generous bound, not a timing benchmark.
    assert stats[("SCHEDULE", "start lag")].avg_ms < 1000
    slowest = max(row.avg_ms for (kind, _), row in stats.items() if kind in ("GET", "POST"))
    assert slowest >= 150 * (1 - RAISE_AFTER_S / DURATION_S), "the latency was raised"
