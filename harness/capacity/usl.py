"""The Universal Scalability Law (Gunther) and its least-squares fit, with uncertainty.

Throughput at concurrency ``N``::

    X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1))

``lambda`` is the throughput of one unit of concurrency without contention, ``sigma`` the
share of work that is serialised (contention: the curve flattens towards ``lambda / sigma``),
``kappa`` the cost of keeping shared state coherent (crosstalk: past
``N* = sqrt((1 - sigma) / kappa)`` throughput falls). In an open-model test ``N`` is not set
but measured: Little's law gives the mean concurrency of a step as ``N = X R`` (throughput
times mean response time).

:func:`fit_usl` minimises the squared relative residuals ``(X_obs - X(N)) / X_obs`` (errors of
a rate grow with the rate) by Levenberg-Marquardt with the analytic Jacobian, keeping
``sigma, kappa >= 0`` and ``lambda > 0`` by fitting their square roots/logs. Uncertainty: the
covariance ``s^2 (J^T J)^-1`` of the linearised problem at the optimum (standard errors), and
a residual bootstrap (:data:`BOOTSTRAP` refits on resampled residuals) whose 2.5-97.5 %
percentiles are the 95 % intervals reported: they stay honest near the ``>= 0`` bounds.

    >>> import numpy as np
    >>> n = np.arange(1.0, 33.0)
    >>> fit = fit_usl(n, usl_throughput(n, 100.0, 0.05, 0.002))
    >>> round(fit.sigma, 4), round(fit.kappa, 5)
    (0.05, 0.002)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

BOOTSTRAP = 200  # refits for the intervals: the 2.5 % tail then rests on ~5 draws
MAX_ITER = 200
_SEED = 20_240_607  # fixed: the same data give the same intervals


def usl_throughput(n: Array | float, lam: float, sigma: float, kappa: float) -> Array:
    n = np.asarray(n, dtype=float)
    return np.asarray(lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)))


@dataclass(frozen=True, kw_only=True)
class USLFit:
    lam: float
    sigma: float
    kappa: float
    lam_se: float
    sigma_se: float
    kappa_se: float
    lam_ci95: tuple[float, float]
    sigma_ci95: tuple[float, float]
    kappa_ci95: tuple[float, float]
    r2: float
    rmse_rel: float
    points: int

    @property
    def peak_concurrency(self) -> float:
        """``N*``, where throughput peaks (``inf`` without crosstalk)."""
        if self.kappa <= 0:
            return math.inf
        return math.sqrt(max(0.0, 1.0 - self.sigma) / self.kappa)

    @property
    def max_throughput(self) -> float:
        """``X(N*)``, or the asymptote ``lambda / sigma`` without crosstalk."""
        n_star = self.peak_concurrency
        if math.isinf(n_star):
            return self.lam / self.sigma if self.sigma > 0 else math.inf
        return float(usl_throughput(n_star, self.lam, self.sigma, self.kappa))

    def to_json(self) -> dict[str, object]:
        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "lambda_rps": self.lam,
            "sigma": self.sigma,
            "kappa": self.kappa,
            "lambda_se": num(self.lam_se),
            "sigma_se": num(self.sigma_se),
            "kappa_se": num(self.kappa_se),
            "lambda_ci95": [num(v) for v in self.lam_ci95],
            "sigma_ci95": [num(v) for v in self.sigma_ci95],
            "kappa_ci95": [num(v) for v in self.kappa_ci95],
            "r2": num(self.r2),
            "rmse_relative": num(self.rmse_rel),
            "points": self.points,
            "peak_concurrency": num(self.peak_concurrency),
            "max_throughput_rps": num(self.max_throughput),
        }


def _model(p: Array, n: Array) -> tuple[Array, Array]:
    """Predictions and their Jacobian for ``p = (log lambda, sqrt sigma, sqrt kappa)``."""
    lam, s, k = math.exp(p[0]), p[1] ** 2, p[2] ** 2
    d = 1.0 + s * (n - 1.0) + k * n * (n - 1.0)
    x = lam * n / d
    jac = np.empty((n.size, 3))
    jac[:, 0] = x
    jac[:, 1] = -x * (n - 1.0) / d * 2.0 * p[1]
    jac[:, 2] = -x * n * (n - 1.0) / d * 2.0 * p[2]
    return x, jac


def _lm(n: Array, x_obs: Array, p0: Array) -> Array:
    """Levenberg-Marquardt on the relative residuals."""
    p = p0.copy()
    w = 1.0 / x_obs
    damping = 1e-3
    pred, jac = _model(p, n)
    cost = float(np.sum(((x_obs - pred) * w) ** 2))
    for _ in range(MAX_ITER):
        r = (x_obs - pred) * w
        jw = jac * w[:, None]
        a = jw.T @ jw
        g = jw.T @ r
        improved = False
        for _ in range(20):
            try:
                step = np.linalg.solve(a + damping * np.diag(np.diag(a) + 1e-12), g)
            except np.linalg.LinAlgError:
                damping *= 10
                continue
            trial = p + step
            t_pred, t_jac = _model(trial, n)
            t_cost = float(np.sum(((x_obs - t_pred) * w) ** 2))
            if t_cost < cost:
                done = cost - t_cost < 1e-15 * max(cost, 1e-300)
                p, pred, jac, cost = trial, t_pred, t_jac, t_cost
                damping = max(damping / 10, 1e-12)
                improved = True
                break
            damping *= 10
        if not improved or done:
            break
    return p


def _starts(n: Array, x_obs: Array) -> list[Array]:
    lam0 = float(np.max(x_obs / n))
    return [
        np.array([math.log(lam0), math.sqrt(s0), math.sqrt(k0)])
        for s0 in (0.01, 0.1, 0.5)
        for k0 in (1e-6, 1e-4, 1e-2)
    ]


def _best(n: Array, x_obs: Array) -> Array:
    best, best_cost = None, math.inf
    for p0 in _starts(n, x_obs):
        p = _lm(n, x_obs, p0)
        pred, _ = _model(p, n)
        cost = float(np.sum(((x_obs - pred) / x_obs) ** 2))
        if cost < best_cost:
            best, best_cost = p, cost
    assert best is not None
    return best


def fit_usl(concurrency: Array, throughput: Array, *, bootstrap: int = BOOTSTRAP) -> USLFit:
    """Fit the USL to measured ``(N, X)`` points; needs at least 3 with ``N, X > 0``."""
    n = np.asarray(concurrency, dtype=float)
    x = np.asarray(throughput, dtype=float)
    keep = (n > 0) & (x > 0) & np.isfinite(n) & np.isfinite(x)
    n, x = n[keep], x[keep]
    if n.size < 3:
        raise ValueError(f"the USL has 3 parameters: need at least 3 points, got {n.size}")
    p = _best(n, x)
    pred, jac = _model(p, n)
    rel = (x - pred) / x
    dof = max(1, n.size - 3)
    s2 = float(np.sum(rel**2)) / dof
    # Covariance in the natural parameters: J_natural = J_p / (d natural / d p).
    lam, s, k = math.exp(p[0]), float(p[1] ** 2), float(p[2] ** 2)
    jw = jac / x[:, None]
    scale = np.array([lam, 2.0 * p[1], 2.0 * p[2]])
    try:
        cov_p = s2 * np.linalg.pinv(jw.T @ jw)
        se = np.sqrt(np.abs(np.diag(cov_p))) * np.abs(scale)
    except np.linalg.LinAlgError:  # pragma: no cover - pinv does not raise on finite input
        se = np.full(3, math.nan)
    ss_tot = float(np.sum((x - x.mean()) ** 2))
    r2 = 1.0 - float(np.sum((x - pred) ** 2)) / ss_tot if ss_tot > 0 else math.nan

    boots = np.empty((0, 3))
    if bootstrap > 0 and n.size > 3:
        rng = np.random.default_rng(_SEED)
        draws = []
        for _ in range(bootstrap):
            resampled = pred * (1.0 + rng.choice(rel, size=rel.size, replace=True))
            resampled = np.maximum(resampled, 1e-9)
            q = _lm(n, resampled, p)
            draws.append([math.exp(q[0]), q[1] ** 2, q[2] ** 2])
        boots = np.asarray(draws)

    def ci(i: int, value: float) -> tuple[float, float]:
        if boots.shape[0]:
            lo, hi = np.percentile(boots[:, i], [2.5, 97.5])
            return float(lo), float(hi)
        half = 1.96 * float(se[i])
        return value - half, value + half

    return USLFit(
        lam=lam,
        sigma=s,
        kappa=k,
        lam_se=float(se[0]),
        sigma_se=float(se[1]),
        kappa_se=float(se[2]),
        lam_ci95=ci(0, lam),
        sigma_ci95=ci(1, s),
        kappa_ci95=ci(2, k),
        r2=r2,
        rmse_rel=math.sqrt(float(np.mean(rel**2))),
        points=int(n.size),
    )
