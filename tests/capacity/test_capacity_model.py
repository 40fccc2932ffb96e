"""The capacity analysis on steps whose truth is known: SLO terms, fits, knee, projection."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.campaign.loader import capacity_slo
from harness.capacity import analysis as cm
from harness.capacity.queueing import mean_response_s, response_quantile_s
from harness.errors import UsageError

SERVERS, SERVICE_S = 4, 0.010  # 400 req/s


def mmc_steps(rates: list[float], overhead_ms: float = 2.0) -> list[dict[str, object]]:
    """Steps as the runner records them, from M/M/c theory (overload above capacity)."""
    steps: list[dict[str, object]] = []
    for offered in rates:
        cap = SERVERS / SERVICE_S
        served = min(offered, cap * 0.99)
        steady = offered < cap
        if steady:
            mean = mean_response_s(servers=SERVERS, service_s=SERVICE_S, arrival_rps=served) * 1e3
            p95 = (
                response_quantile_s(0.95, servers=SERVERS, service_s=SERVICE_S, arrival_rps=served)
                * 1e3
            )
        else:
            mean, p95 = 2000.0, 3000.0
        step = {
            "offered_rps": offered, "throughput_rps": served, "steady": steady,
            "mean_ms": mean + overhead_ms, "p50_ms": mean, "p90_ms": p95,
            "p95_ms": p95 + overhead_ms, "p99_ms": p95 * 1.5, "error_ratio": 0.0,
        }  # fmt: skip
        step["within_slo"] = steady and cm.within(capacity_slo("p95<100ms,errors<1%", "slo"), step)
        steps.append(step)
    return steps


def test_slo_terms() -> None:
    terms = capacity_slo("p95<300ms, errors<1%, mean<0.05s", "slo")
    assert [(t.metric, t.percentile, t.value) for t in terms] == [
        ("p", 95.0, 300.0),
        ("error_rate", None, 0.01),
        ("avg", None, 50.0),
    ]
    assert cm.within(terms, {"p95_ms": 299.0, "error_ratio": 0.009, "mean_ms": 49.0})
    assert not cm.within(terms, {"p95_ms": 301.0, "error_ratio": 0.0, "mean_ms": 1.0})
    assert not cm.within(terms, {"p95_ms": 10.0, "error_ratio": 0.02, "mean_ms": 1.0})
    assert not cm.within(terms, {"p95_ms": math.nan, "error_ratio": 0.0, "mean_ms": 1.0})
    for bad in ("p95>300ms", "p42<1ms", "errors<5ms", "p95<5%", "", "p95<0ms", "p95<1..5ms",
                "p95<.ms"):  # fmt: skip
        with pytest.raises(UsageError):
            capacity_slo(bad, "slo")


def test_every_slo_metric_is_measured_by_a_step() -> None:
    """A term on a figure the step measurement lacks could never hold (NaN)."""
    from harness.capacity.search import window_figures
    from harness.observe.livestats import Sample

    buckets = ((0.01, 50.0), (0.1, 100.0), (math.inf, 100.0))
    first = Sample(at=0.0)
    last = Sample(at=10.0, requests=100, latency_sum_s=2.0, buckets=buckets)
    step = window_figures(first, last)
    terms = capacity_slo("p50<1s, p90<1s, p95<1s, p99<1s, mean<1s, errors<1%", "slo")
    assert all(math.isfinite(cm.step_value(t, step)) for t in terms)
    assert cm.within(terms, step)


def test_latency_fit_follows_an_mmc_curve() -> None:
    x = np.linspace(40, 380, 9)
    y = [mean_response_s(servers=SERVERS, service_s=SERVICE_S, arrival_rps=v) * 1e3 for v in x]
    fit = cm.fit_latency(list(x), y)
    assert fit is not None
    assert fit["r2"] > 0.995
    assert fit["saturation_rps"] == pytest.approx(400, rel=0.1)
    predicted = cm.latency_curve([200.0], fit)[0]
    assert predicted == pytest.approx(y[4], rel=0.1)
    assert cm.fit_latency([1.0, 2.0], [3.0, 4.0]) is None


def test_kneedle_finds_the_bend() -> None:
    x = np.linspace(0, 1, 101)
    y = np.where(x < 0.6, 0.1 * x, 0.06 + 5 * (x - 0.6))  # bends at 0.6
    assert x[cm.kneedle(x, y)] == pytest.approx(0.6, abs=0.02)
    assert cm.kneedle([0, 1, 2], [1, 1, 1]) is None


def test_projection_arithmetic() -> None:
    p = cm.project(
        slo_rps=400, max_rps=500, peak_rps=7000, headroom=0.3, cores_per_instance=2, fit=None
    )
    assert p["usable_rps_per_instance"] == pytest.approx(280)
    assert p["instances"] == 25  # 7000 / 280
    assert p["cores"] == 50
    assert p["utilisation_at_peak"] == pytest.approx(280 / 500)
    p = cm.project(
        slo_rps=401, max_rps=500, peak_rps=7000, headroom=0.3, cores_per_instance=1, fit=None
    )
    assert p["instances"] == 25
    assert cm.project(slo_rps=None, max_rps=5, peak_rps=7000, headroom=0.3,
                      cores_per_instance=1, fit=None)["instances"] is None  # fmt: skip


def test_analysis_of_an_mmc_search(tmp_path: Path) -> None:
    config = tmp_path / "mock.toml"
    config.write_text(
        '[capacity.catalog]\nservers = 4\nservice_time = { kind = "exponential", ms = 10 }\n'
    )
    pool = cm.mock_pool(str(config), "/api/v1/services", 1)
    assert pool is not None and pool["capacity_rps"] == pytest.approx(400)
    assert cm.mock_pool(str(config), "/api/v1/payments", 1) is None
    steps = mmc_steps([80, 160, 240, 320, 360, 440])
    result = cm.analyse(steps, slo=capacity_slo("p95<100ms,errors<1%", "slo"), pool=pool)
    assert result["max_rps"] == pytest.approx(396)
    # p95 of M/M/4 at 360 req/s is ~60 ms + 2 ms overhead: within the SLO.
    assert result["slo_rps"] == 360
    assert 200 < result["knee"]["throughput_rps"] < 380
    assert result["usl"]["points"] == 5
    preds = result["theory"]["predictions"]
    assert preds[0]["mean_ms"] == pytest.approx(float(steps[0]["mean_ms"]) - 2.0)
    assert result["projection"]["instances"] == math.ceil(7000 / (360 * 0.7))


def test_a_uniform_service_time_of_several_mock_processes_gets_its_theory(tmp_path: Path) -> None:
    """The mock's schema says min_ms/max_ms; the theory reads the file with the mock's parser."""
    config = tmp_path / "mock.toml"
    config.write_text(
        "[faults.capacity.payments]\n"
        'servers = 8\nservice_time = { kind = "uniform", min_ms = 2, max_ms = 6 }\n'
    )
    pool = cm.mock_pool(str(config), "/api/v1/payments/{id}", 3)
    assert pool is not None, "a uniform service time got no theory line"
    assert pool["service"] == "payments"
    assert pool["service_time_kind"] == "uniform"
    assert pool["service_time_ms"] == pytest.approx(4.0)
    assert pool["processes"] == 3
    assert pool["capacity_rps"] == pytest.approx(3 * 8 / 0.004)  # 6,000 req/s for the mock
    theory = cm.analyse(
        mmc_steps([500, 1000, 1500]), slo=capacity_slo("p95<100ms", "slo"), pool=pool
    )["theory"]
    assert theory["capacity_rps"] == pytest.approx(6000)
    # A lognormal service time has a mean too: its capacity line is drawn as well.
    config.write_text(
        "[capacity.catalog]\n"
        'servers = 2\nservice_time = { kind = "lognormal", median_ms = 10, p99_ms = 50 }\n'
    )
    lognormal = cm.mock_pool(str(config), "/api/v1/services", 1)
    assert lognormal is not None and lognormal["capacity_rps"] < 2 / 0.010
