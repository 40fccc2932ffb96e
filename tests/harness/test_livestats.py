"""The live view's figures: rates that follow the workers' reports, not the scrapes' pace."""

from __future__ import annotations

import itertools
import math

import pytest

from harness.observe.livestats import LiveRates, Sample, interval, parse

REPORT_S = 2.0
RATE = 500.0


def _reports_seen_at(at: float) -> Sample:
    """What the exporter shows at ``at`` when workers report RATE req/s every REPORT_S."""
    reports = math.floor(at / REPORT_S)
    reported_s = 1_000_000.0 + reports * REPORT_S
    return Sample(at=at, requests=RATE * REPORT_S * reports, reported_s=reported_s, users=10)


def test_scrapes_out_of_step_with_reports_still_show_the_true_rate() -> None:
    scrapes = [_reports_seen_at(1.0 + 2.5 * k) for k in range(12)]
    # Against the time between scrapes (an exporter without the report time) the rate
    # alternates between 0.8 and 1.6 times the truth...
    untimed = [Sample(at=s.at, requests=s.requests) for s in scrapes]
    naive = [interval(a, b).rps for a, b in itertools.pairwise(untimed)]
    assert min(naive) == pytest.approx(0.8 * RATE) and max(naive) == pytest.approx(1.6 * RATE)
    # ... against the time the reports cover it is the truth, at every scrape.
    rates = LiveRates()
    shown = [rates.update(s).rps for s in scrapes][1:]
    assert shown == [pytest.approx(RATE)] * len(shown)


def test_a_scrape_without_a_new_report_repeats_the_figures_with_current_gauges() -> None:
    rates = LiveRates()
    rates.update(_reports_seen_at(2.1))
    first = rates.update(_reports_seen_at(4.1))
    again = rates.update(Sample(**{**_reports_seen_at(5.9).__dict__, "users": 42}))
    assert again.rps == first.rps == pytest.approx(RATE)
    assert again.total.users == 42


def test_a_generator_that_stops_reporting_drops_to_zero() -> None:
    rates = LiveRates(stale_after_s=6.0)
    rates.update(_reports_seen_at(2.1))
    rates.update(_reports_seen_at(4.1))
    frozen = _reports_seen_at(4.1)
    later = Sample(at=11.0, requests=frozen.requests, reported_s=frozen.reported_s)
    assert rates.update(later).rps == 0.0


def test_the_first_scrape_has_percentiles_but_no_rate() -> None:
    cur = Sample(at=5.0, requests=100, buckets=((0.01, 50.0), (0.02, 100.0), (math.inf, 100.0)))
    iv = LiveRates().update(cur)
    assert iv.rps == 0.0 and iv.failures_per_s == 0.0
    assert iv.p50_s == pytest.approx(0.01)


def test_without_the_report_gauge_rates_use_the_scrape_times() -> None:
    a = Sample(at=10.0, requests=100)
    b = Sample(at=12.0, requests=300)
    assert interval(a, b).rps == pytest.approx(100.0)


def test_parse_reads_the_report_time() -> None:
    text = (
        "# TYPE loadgen_requests_total counter\n"
        'loadgen_requests_total{name="a",method="GET"} 7.0\n'
        "# TYPE loadgen_reported_until_timestamp_seconds gauge\n"
        "loadgen_reported_until_timestamp_seconds 1.7e+09\n"
    )
    sample = parse(text, at=3.0)
    assert sample.requests == 7.0
    assert sample.reported_s == 1.7e9
