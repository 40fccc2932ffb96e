"""Arrival schedules of the open model."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from scenarios.arrivals import RateProfile, ScheduleCounters, Stage, arrival_times


def test_constant_rate_is_evenly_spaced() -> None:
    times = list(arrival_times(RateProfile.constant(rate=4.0, duration_s=5.0)))
    assert len(times) == 20
    assert times[:3] == [0.0, 0.25, 0.5]
    assert all(b - a == pytest.approx(0.25) for a, b in itertools.pairwise(times))


def test_linear_ramp_places_arrivals_on_the_integral() -> None:
    ramp = RateProfile.ramp(start=0.0, end=10.0, ramp_s=10.0)
    times = list(arrival_times(ramp))
    # Lambda(t) = t^2 / 2: 50 arrivals in all, 12.5 expected in the first half
    assert len(times) == 50
    assert sum(1 for t in times if t < 5.0) == 13
    assert times[2] == pytest.approx(2.0)  # Lambda(2) = 2


def test_expected_arrivals_and_time_of_are_inverse() -> None:
    profile = RateProfile.parse("10s:0-100,20s:100,5s:100-20")
    assert profile.total_arrivals == pytest.approx(500 + 2000 + 300)
    for t in (0.5, 3.0, 10.0, 17.0, 31.0, 34.9):
        assert profile.time_of(profile.expected_arrivals(t)) == pytest.approx(t)
    assert profile.rate_at(5.0) == pytest.approx(50.0)
    assert profile.rate_at(32.5) == pytest.approx(60.0)
    assert profile.time_of(profile.total_arrivals + 1) is None


def test_poisson_arrivals_match_the_rate_on_average() -> None:
    profile = RateProfile.constant(rate=50.0, duration_s=200.0)
    times = list(arrival_times(profile, poisson=True, rng=random.Random(7)))
    # 10,000 expected; a Poisson count has sd = 100, so 5 sd is 500
    assert abs(len(times) - 10_000) < 500
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(0.02, rel=0.05)
    # exponential gaps: standard deviation equals the mean (evenly spaced would give 0)
    assert statistics.pstdev(gaps) == pytest.approx(0.02, rel=0.1)


def test_diurnal_rate_profile_averages_peak_over_ratio() -> None:
    day = RateProfile.diurnal(peak_rate=120.0, duration_s=240.0, par=2.0)
    assert day.total_arrivals / day.duration_s == pytest.approx(60.0)
    assert max(day.rate_at(t) for t in range(240)) == pytest.approx(120.0)


def test_bad_profiles_are_refused() -> None:
    with pytest.raises(ValueError, match="lasts"):
        Stage(duration_s=0, start=1, end=1)
    with pytest.raises(ValueError, match=">= 0"):
        Stage(duration_s=1, start=-1, end=1)
    with pytest.raises(ValueError, match="DURATION"):
        RateProfile.parse("10s")


def test_schedule_counters_merge_sums_and_keeps_the_worst_lag() -> None:
    a = ScheduleCounters(due=10, started=9, late=2, dropped=1, lag_ms_total=30.0, lag_ms_max=12.0)
    b = ScheduleCounters(due=5, started=5, late=0, dropped=0, lag_ms_total=5.0, lag_ms_max=3.0)
    total = ScheduleCounters.merge([a.snapshot(), b.snapshot()])
    assert (total.due, total.started, total.late, total.dropped) == (15, 14, 2, 1)
    assert total.lag_ms_total == pytest.approx(35.0)
    assert total.lag_ms_max == 12.0
    total.reset()
    assert total == ScheduleCounters()
