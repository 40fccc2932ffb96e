"""The gate's quality targets (issue 5), measured on synthetic runs (see ``_quality``):
at most 5 % false alarms over at least 40 A/A comparisons, a +20 % slowdown of p95 caught in
at least 95 % of comparisons, a +5 % one never reported as an improvement, and intervals
that cover the true change about as often as they claim."""

from __future__ import annotations

import pytest

from ._quality import measure

COMPARISONS = 60


@pytest.mark.parametrize("method", ["analytic", "bootstrap"])
def test_a_a_comparisons_rarely_fail(method) -> None:
    o = measure(comparisons=COMPARISONS, method=method, seed=11)
    assert o.fail_rate <= 0.05, o
    # Each bound holds at 95 %: the two-sided interval should cover the truth ~90 % of the time.
    assert o.p95_covered / o.comparisons >= 0.80, o


@pytest.mark.parametrize("method", ["analytic", "bootstrap"])
def test_a_20_percent_slower_p95_is_caught(method) -> None:
    o = measure(comparisons=COMPARISONS, effect=1.2, method=method, seed=12)
    assert o.p95_caught >= 0.95, o
    assert o.any_improvement_on_target == 0


def test_a_5_percent_slowdown_is_never_an_improvement() -> None:
    o = measure(comparisons=COMPARISONS, effect=1.05, seed=13)
    assert o.any_improvement_on_target == 0, o
    assert set(o.target_p95) <= {"changed", "inconclusive", "unchanged", "regression"}


def test_interleaving_keeps_power_and_calm_under_runner_drift() -> None:
    calm = measure(comparisons=40, drift_sd=0.03, rounds=3, seed=14)
    assert calm.fail_rate <= 0.05, calm
    caught = measure(comparisons=40, effect=1.2, drift_sd=0.03, rounds=3, seed=15)
    assert caught.fail_rate >= 0.95, caught
