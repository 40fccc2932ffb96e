"""The USL fit recovers sigma and kappa from synthetic data generated with known values."""

from __future__ import annotations

import numpy as np
import pytest

from harness.capacity.usl import fit_usl, usl_throughput

N = np.array([1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64], dtype=float)


@pytest.mark.parametrize(
    ("lam", "sigma", "kappa"),
    [(100.0, 0.05, 0.001), (250.0, 0.02, 0.0002), (40.0, 0.15, 0.0)],
)
def test_exact_data_give_back_the_parameters(lam: float, sigma: float, kappa: float) -> None:
    fit = fit_usl(N, usl_throughput(N, lam, sigma, kappa))
    assert fit.lam == pytest.approx(lam, rel=1e-4)
    assert fit.sigma == pytest.approx(sigma, rel=1e-3, abs=1e-6)
    assert fit.kappa == pytest.approx(kappa, rel=1e-3, abs=1e-7)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noisy_data_recover_the_parameters_within_their_intervals(seed: int) -> None:
    lam, sigma, kappa = 100.0, 0.05, 0.001
    rng = np.random.default_rng(seed)
    observed = usl_throughput(N, lam, sigma, kappa) * (1 + 0.02 * rng.standard_normal(N.size))
    fit = fit_usl(N, observed)
    # 2 % noise on 11 points: the estimates land near the truth ...
    assert fit.sigma == pytest.approx(sigma, rel=0.2)
    assert fit.kappa == pytest.approx(kappa, rel=0.2)
    assert fit.lam == pytest.approx(lam, rel=0.05)
    # ... and the truth inside the reported 95 % intervals, which are not vacuous.
    assert fit.sigma_ci95[0] <= sigma <= fit.sigma_ci95[1]
    assert fit.kappa_ci95[0] <= kappa <= fit.kappa_ci95[1]
    assert fit.sigma_ci95[1] - fit.sigma_ci95[0] < sigma
    assert 0 < fit.sigma_se < sigma / 2
    assert fit.peak_concurrency == pytest.approx(np.sqrt((1 - sigma) / kappa), rel=0.2)


def test_a_pure_contention_curve_has_no_crosstalk() -> None:
    rng = np.random.default_rng(7)
    observed = usl_throughput(N, 80.0, 0.1, 0.0) * (1 + 0.01 * rng.standard_normal(N.size))
    fit = fit_usl(N, observed)
    assert fit.kappa < 5e-5
    assert fit.max_throughput == pytest.approx(80.0 / 0.1, rel=0.15)


def test_too_few_points_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        fit_usl(np.array([1.0, 2.0]), np.array([10.0, 19.0]))
