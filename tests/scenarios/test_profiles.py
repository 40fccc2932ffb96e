"""Load profiles (the arithmetic behind the Locust shapes)."""

from __future__ import annotations

import pytest

from scenarios.profiles import (
    NATIONAL_DAY_HOURLY,
    Diurnal,
    Ramp,
    Soak,
    Spike,
    Step,
    diurnal_curve,
    peak_to_average,
)


def test_ramp_climbs_linearly_then_holds_then_ends() -> None:
    ramp = Ramp(duration_s=15, users=100, ramp=10 / 15)
    assert [ramp.users_at(t) for t in (0, 2.5, 5, 9.99, 10, 14.9)] == [1, 25, 50, 100, 100, 100]
    assert ramp.users_at(15) is None
    assert ramp.spawn_rate == pytest.approx(10)


def test_step_climbs_equal_stairs_to_the_peak() -> None:
    step = Step(duration_s=90, users=60, steps=3, rise_s=2)
    assert [step.users_at(t) for t in (0, 29.9, 30, 60, 89.9)] == [20, 20, 40, 60, 60]
    assert step.users_at(90) is None
    assert step.spawn_rate == 10


def test_spike_is_at_rest_around_the_spike() -> None:
    spike = Spike(duration_s=25, users=50, base=0.1, at=0.4, length=0.2, rise_s=1)
    assert [spike.users_at(t) for t in (0, 9.9, 10, 14.9, 15, 24.9)] == [5, 5, 50, 50, 5, 5]
    assert spike.users_at(25) is None
    assert spike.spawn_rate == 45


def test_soak_holds_for_its_duration() -> None:
    soak = Soak(duration_s=104, users=40, ramp=4 / 104)
    assert soak.users_at(2) == 20
    assert soak.users_at(103.9) == 40
    assert soak.users_at(104) is None


def test_base_day_has_the_documented_peak_to_average() -> None:
    assert peak_to_average(NATIONAL_DAY_HOURLY) == pytest.approx(1.816, abs=0.001)


@pytest.mark.parametrize("par", [1.2, 1.5, 2.5, 4.0])
def test_diurnal_curve_hits_the_requested_peak_to_average(par: float) -> None:
    curve = diurnal_curve(NATIONAL_DAY_HOURLY, par)
    assert max(curve) == pytest.approx(1.0)
    assert peak_to_average(curve) == pytest.approx(par, rel=1e-6)
    assert curve.index(1.0) == NATIONAL_DAY_HOURLY.index(max(NATIONAL_DAY_HOURLY))


def test_diurnal_curve_of_ratio_one_is_flat() -> None:
    assert min(diurnal_curve(NATIONAL_DAY_HOURLY, 1.0)) == pytest.approx(1.0)


def test_diurnal_curve_refuses_an_impossible_ratio() -> None:
    with pytest.raises(ValueError, match="peak-to-average"):
        diurnal_curve(NATIONAL_DAY_HOURLY, 30.0)


def test_diurnal_profile_compresses_the_day() -> None:
    day = Diurnal(users=1000, duration_s=240, par=2.0, start_hour=0)
    # one compressed hour lasts 10 s; the busiest hour (11:00) reaches the peak
    assert day.users_at(110) == 1000
    samples = [day.users_at(t) for t in range(240)]
    assert max(samples) == 1000  # type: ignore[type-var]
    mean = sum(samples) / len(samples)  # type: ignore[arg-type]
    assert 1000 / mean == pytest.approx(2.0, rel=0.02)
    assert day.users_at(240) is None


def test_profiles_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="users"):
        Ramp(duration_s=10, users=0, ramp=0.5)
    with pytest.raises(ValueError, match="duration_s"):
        Step(duration_s=0, users=10, steps=2, rise_s=1)
    with pytest.raises(ValueError, match="ramp"):
        Soak(duration_s=10, users=10, ramp=1.5)
    with pytest.raises(ValueError, match="at \\+ length"):
        Spike(duration_s=10, users=10, base=0.1, at=0.8, length=0.3, rise_s=1)
