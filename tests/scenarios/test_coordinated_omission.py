"""A one-second stall of the mock shows in the corrected tail, not in the service time.

The open model runs with two shared connections (as wrk2 runs with a fixed set). The mock
process is frozen with SIGSTOP for one second mid-run: the two requests in flight take a
second, and every request that falls due meanwhile queues for a connection. Measured from
when they had a connection (service time), those requests are fast; measured from when they
were due (the ``+CO`` twins), they carry the stall. A harness that recorded only the service
time would report a healthy tail for a portal that froze.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from .test_locust_runs import HTTP_TYPES, MOCK_CONFIG, mock_process, run_locust, served

pytestmark = pytest.mark.slow

#: The request types of the corrected twins end in this (docs/scenarios.md; the test process
#: must not import Locust, which monkey-patches ssl).
CORRECTED_SUFFIX = "+CO"
STALL_S = 1.0
CONNECTIONS = 2  # as wrk2 runs: a fixed set, each holding one request at a time
#: Visits per second. About as many visits are mid-journey at any time, so some 2 x 80
#: requests fall due during the stall (a journey is sequential: its later requests wait for
#: its stalled one), out of some 3,000 in the run.
RATE_PER_S = 80
#: Portal requests the mock serves before it is frozen: the run is well under way by then.
STALL_AFTER_REQUESTS = 600


def _stall_once(url: str, pid: int, done: threading.Event, stalled: list[float]) -> None:
    """Freeze the mock for STALL_S once it has served STALL_AFTER_REQUESTS portal requests."""
    deadline = time.monotonic() + 30
    while not done.is_set() and time.monotonic() < deadline:
        if served(url) >= STALL_AFTER_REQUESTS:
            os.kill(pid, signal.SIGSTOP)
            try:
                start = time.monotonic()
                done.wait(STALL_S)
                stalled.append(time.monotonic() - start)
            finally:
                os.kill(pid, signal.SIGCONT)
            return
        time.sleep(0.05)


def _response_times(entries: list[dict], corrected: bool) -> Counter[int]:
    """Locust's response-time histogram (ms, rounded) over the HTTP types or their twins."""
    total: Counter[int] = Counter()
    for entry in entries:
        method = entry["method"]
        base = method.removesuffix(CORRECTED_SUFFIX)
        if base in HTTP_TYPES and method.endswith(CORRECTED_SUFFIX) == corrected:
            total.update({int(ms): n for ms, n in entry["response_times"].items()})
    return total


def _quantile(histogram: Counter[int], q: float) -> int:
    rank = q * sum(histogram.values())
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return ms
    raise AssertionError("empty histogram")


def test_a_stall_appears_in_the_corrected_tail_and_not_in_the_service_time(
    tmp_path: Path,
) -> None:
    with mock_process(tmp_path / "mock", MOCK_CONFIG) as (url, proc):
        done = threading.Event()
        stalled: list[float] = []
        staller = threading.Thread(target=_stall_once, args=(url, proc.pid, done, stalled))
        staller.start()
        try:
            stats, _ = run_locust(
                url, tmp_path, "-t", "40s",
                "--arrival-rate", str(RATE_PER_S), "--arrival-duration", "5",
                "--open-connections", str(CONNECTIONS),
            )  # fmt: skip
        finally:
            done.set()
            staller.join(timeout=10)
    assert stalled and stalled[0] >= STALL_S * 0.95, "the mock was frozen mid-run"
    entries = json.loads((tmp_path / "run.json").read_text())
    service = _response_times(entries, corrected=False)
    corrected = _response_times(entries, corrected=True)
    assert sum(service.values()) == sum(corrected.values()) > 1000
    for (kind, name), row in stats.items():
        assert row.failures == 0, (kind, name)

    def slower_than(histogram: Counter[int], ms: int) -> int:
        return sum(n for t, n in histogram.items() if t >= ms)

    print(
        f"\n{sum(service.values())} requests; >= 500 ms: service {slower_than(service, 500)}, "
        f"corrected {slower_than(corrected, 500)}; p99: service {_quantile(service, 0.99)} ms, "
        f"corrected {_quantile(corrected, 0.99)} ms"
    )
    # Only the requests in flight when the mock froze (CONNECTIONS of them) waited for it on
    # the server, while every request due during the stall was late by up to the whole second.
    # The comparisons are relative, so a loaded machine's own hiccups do not decide them.
    assert slower_than(corrected, 900) >= 1
    assert slower_than(corrected, 500) >= RATE_PER_S * STALL_S / 4
    assert slower_than(corrected, 500) >= 10 * max(1, slower_than(service, 500))
    assert _quantile(corrected, 0.99) >= 500
    assert _quantile(corrected, 0.99) >= 5 * _quantile(service, 0.99)
