"""Micro-benchmarks of the harness's hot paths: histogram merge, quantiles and confidence
intervals, the gate's renderings and the load generator's exporter. Reported by
``make bench`` (pytest-benchmark); never asserted as wall time."""

from __future__ import annotations

import numpy as np
import pytest

from harness.gate.compare import Dist, Policy, compare_quantile, merge
from harness.gate.verdict import Comparison, Verdict, render_junit, render_markdown
from scenarios.telemetry import hdr

REQUESTS = 20_000


def _histogram(seed: int, median_ms: float = 40.0):
    rng = np.random.default_rng(seed)
    h = hdr.new_histogram()
    for v in rng.lognormal(np.log(median_ms), 0.5, REQUESTS):
        hdr.record_ms(h, float(v))
    return h


@pytest.fixture(scope="module")
def histograms():
    return [_histogram(seed) for seed in range(8)]


def test_bench_hdr_merge_of_eight_workers(benchmark, histograms) -> None:
    encoded = [hdr.encode(h) for h in histograms]

    def merge_all():
        total = hdr.new_histogram()
        for text in encoded:
            hdr.merge_encoded(total, text)
        return total

    assert benchmark(merge_all).get_total_count() == 8 * REQUESTS


def test_bench_dist_from_hdr_and_merge(benchmark, histograms) -> None:
    result = benchmark(lambda: merge([Dist.from_hdr(h) for h in histograms]))
    assert result.n == 8 * REQUESTS


def test_bench_percentiles(benchmark, histograms) -> None:
    summary = benchmark(hdr.summarise, histograms[0])
    assert summary.count == REQUESTS


@pytest.mark.parametrize("method", ["analytic", "bootstrap"])
def test_bench_quantile_interval(benchmark, histograms, method) -> None:
    base, cand = Dist.from_hdr(histograms[0]), Dist.from_hdr(histograms[1])
    policy = Policy(method=method)
    change = benchmark(compare_quantile, "p95", base, cand, policy)
    assert change.low is not None


def test_bench_render_junit_and_markdown(benchmark, histograms) -> None:
    policy = Policy()
    base, cand = Dist.from_hdr(histograms[0]), Dist.from_hdr(histograms[1])
    changes = tuple(compare_quantile(m, base, cand, policy) for m in ("p50", "p95", "p99"))
    verdict = Verdict(
        mode="baseline", run="r", baseline="b", policy=policy,
        comparisons=tuple(Comparison(key=f"GET /api/v1/x{i}", baseline_count=REQUESTS,
                                     candidate_count=REQUESTS, changes=changes)
                          for i in range(40)),
    )  # fmt: skip
    out = benchmark(lambda: (render_junit(verdict), render_markdown(verdict)))
    assert "testsuites" in out[0]


def test_bench_exporter_rendering(benchmark) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from scenarios.telemetry.aggregate import RunAggregator
    from scenarios.telemetry.exporter import LiveGauges, LoadgenCollector

    agg = RunAggregator(interval_s=2.0, mode="local")
    agg.start(0.0)
    for i in range(40):
        agg.histograms[(f"/api/v1/x{i}", "GET")] = _histogram(i, median_ms=5.0 + i)
    registry = CollectorRegistry()
    registry.register(LoadgenCollector(lambda: agg, lambda: LiveGauges(users=40, workers=1)))
    text = benchmark(generate_latest, registry)
    assert b"loadgen_response_time_seconds_bucket" in text
