"""M/M/c formulas against textbook values and against a simulation of the queue."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from harness.capacity.queueing import (
    erlang_c,
    mean_response_s,
    response_quantile_s,
    response_survival,
)


def test_erlang_c_textbook_values() -> None:
    assert erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # (a^2/2)/(1-rho) / (1 + a + that)
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)
    assert erlang_c(4, 4.0) == 1.0


def test_mm1_closed_forms() -> None:
    s, lam = 0.010, 60.0
    assert mean_response_s(servers=1, service_s=s, arrival_rps=lam) == pytest.approx(
        s / (1 - lam * s)
    )
    # M/M/1 response time is exponential with rate mu - lambda.
    q95 = response_quantile_s(0.95, servers=1, service_s=s, arrival_rps=lam)
    assert q95 == pytest.approx(-math.log(0.05) / (1 / s - lam), rel=1e-6)
    assert mean_response_s(servers=1, service_s=s, arrival_rps=100.0) == math.inf


def _simulate(servers: int, service_s: float, lam: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    services = rng.exponential(service_s, n)
    free = [0.0] * servers
    out = np.empty(n)
    for i, (t, s) in enumerate(zip(arrivals, services, strict=True)):
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + s)
        out[i] = start + s - t
    return out[n // 10 :]


@pytest.mark.parametrize(("servers", "rho"), [(4, 0.5), (4, 0.8), (8, 0.75)])
def test_formulas_match_a_simulated_queue(servers: int, rho: float) -> None:
    s = 0.010
    lam = rho * servers / s
    t = _simulate(servers, s, lam, 200_000, seed=servers)
    assert t.mean() == pytest.approx(
        mean_response_s(servers=servers, service_s=s, arrival_rps=lam), rel=0.03
    )
    q = response_quantile_s(0.95, servers=servers, service_s=s, arrival_rps=lam)
    # the 95th percentile of 180,000 correlated waits is itself uncertain by a few per cent
    assert np.quantile(t, 0.95) == pytest.approx(q, rel=0.05)
    assert response_survival(q, servers=servers, service_s=s, arrival_rps=lam) == pytest.approx(
        0.05
    )
