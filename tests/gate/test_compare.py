"""The comparison's arithmetic: quantiles from histogram counts, intervals and verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from harness.gate.compare import (
    Dist,
    Policy,
    compare_error_rate,
    compare_quantile,
    decide,
    merge,
)
from scenarios.telemetry import hdr

from ._runs import latency_ms


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (0.15, 0.30, "regression"),
        (0.05, 0.15, "inconclusive"),
        (-0.30, 0.30, "inconclusive"),
        (None, None, "inconclusive"),
        (-0.30, -0.15, "improvement"),
        (-0.15, -0.05, "changed"),
        (0.01, 0.05, "changed"),
        (-0.05, 0.05, "unchanged"),
    ],
)
def test_decide(low, high, verdict) -> None:
    assert decide(low, high, 0.10) == verdict


def test_dist_quantiles_agree_with_the_hdr_library() -> None:
    rng = np.random.default_rng(3)
    h = hdr.new_histogram()
    for v in latency_ms(rng, 5000):
        hdr.record_ms(h, float(v))
    d = Dist.from_hdr(h)
    assert d.n == 5000
    for p in (50.0, 95.0, 99.0, 99.9):
        assert d.quantile(p / 100) == h.get_value_at_percentile(p)
    # Quantising raw samples gives the same buckets as recording them.
    samples = Dist.from_samples_us(np.rint(latency_ms(np.random.default_rng(3), 5000) * 1000))
    assert samples.quantile(0.95) == d.quantile(0.95)


def test_merge_is_the_union() -> None:
    rng = np.random.default_rng(4)
    a, b = latency_ms(rng, 1000) * 1000, latency_ms(rng, 3000, median_ms=80) * 1000
    merged = merge([Dist.from_samples_us(a), Dist.from_samples_us(b)])
    both = Dist.from_samples_us(np.concatenate([a, b]))
    assert merged.n == 4000
    np.testing.assert_array_equal(merged.values_us, both.values_us)
    np.testing.assert_array_equal(merged.counts, both.counts)


@pytest.mark.parametrize("method", ["analytic", "bootstrap"])
def test_verdicts_on_clear_cases(method) -> None:
    rng = np.random.default_rng(5)
    policy = Policy(method=method)
    base = Dist.from_samples_us(latency_ms(rng, 20_000) * 1000)
    same = Dist.from_samples_us(latency_ms(rng, 20_000) * 1000)
    slower = Dist.from_samples_us(latency_ms(rng, 20_000, scale=1.5) * 1000)
    faster = Dist.from_samples_us(latency_ms(rng, 20_000, scale=0.6) * 1000)
    for metric in ("p50", "p95"):
        assert compare_quantile(metric, base, same, policy).verdict in ("unchanged", "changed")
        regression = compare_quantile(metric, base, slower, policy)
        assert regression.verdict == "regression"
        assert regression.low is not None and regression.high is not None
        assert 0.3 < regression.low < regression.high < 0.7
        assert compare_quantile(metric, base, faster, policy).verdict == "improvement"


def test_too_few_samples_is_inconclusive_not_a_failure() -> None:
    rng = np.random.default_rng(6)
    base = Dist.from_samples_us(latency_ms(rng, 10) * 1000)
    slower = Dist.from_samples_us(latency_ms(rng, 10, scale=3) * 1000)
    change = compare_quantile("p95", base, slower, Policy())
    assert change.verdict == "inconclusive" and "too few" in change.note
    # p99 of 300 requests has only 3 beyond it: no interval can be bounded.
    base = Dist.from_samples_us(latency_ms(rng, 300) * 1000)
    slower = Dist.from_samples_us(latency_ms(rng, 300, scale=3) * 1000)
    assert compare_quantile("p99", base, slower, Policy()).verdict == "inconclusive"
    assert compare_quantile("p50", base, slower, Policy()).verdict == "regression"


def test_sub_millisecond_changes_need_the_minimum_effect() -> None:
    base = Dist.from_samples_us(np.linspace(400, 600, 5000))
    slower = Dist.from_samples_us(np.linspace(600, 900, 5000))  # +50 %, but +0.25 ms at p50
    assert compare_quantile("p50", base, slower, Policy()).verdict in ("changed", "inconclusive")
    strict = Policy(min_effect_ms=0.0)
    assert compare_quantile("p50", base, slower, strict).verdict == "regression"


def test_error_rate_difference() -> None:
    policy = Policy()
    assert compare_error_rate(10, 10_000, 300, 10_000, policy).verdict == "regression"
    assert compare_error_rate(10, 10_000, 12, 10_000, policy).verdict in ("unchanged", "changed")
    assert compare_error_rate(0, 50, 2, 50, policy).verdict == "inconclusive"
    change = compare_error_rate(0, 10_000, 0, 10_000, policy)
    assert change.verdict == "unchanged" and change.low is not None and change.low < 0


def test_rounds_that_disagree_widen_the_interval() -> None:
    rng = np.random.default_rng(8)
    effect = [1.0, 1.3, 0.95, 1.25]  # the candidate is not consistently slower
    rounds = [
        (
            Dist.from_samples_us(latency_ms(rng, 5000) * 1000),
            Dist.from_samples_us(latency_ms(rng, 5000, scale=e) * 1000),
        )
        for e in effect
    ]
    base = merge([b for b, _ in rounds])
    cand = merge([c for _, c in rounds])
    alone = compare_quantile("p50", base, cand, Policy())
    widened = compare_quantile("p50", base, cand, Policy(), rounds)
    assert alone.low is not None and widened.low is not None
    assert alone.high is not None and widened.high is not None
    assert widened.high - widened.low > alone.high - alone.low
