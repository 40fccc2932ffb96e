"""Baseline comparison: the change of a latency quantile or an error rate, with a confidence
interval, and a verdict that fails only when a regression beyond tolerance is established.

A run's latencies arrive as HDR histograms; here a histogram is a :class:`Dist`: its distinct
values (µs, HdrHistogram's highest-equivalent value of each non-empty bucket) and their counts.
Every interval is computed from those counts with numpy, in one of two ways:

- ``analytic`` (default): the distribution-free order-statistic interval of each quantile
  (ranks ``n p ± z sqrt(n p (1 - p))``), turned into a standard error on the log scale, and the
  two runs' errors combined for the log of the ratio ``candidate / baseline``;
- ``bootstrap``: ``B`` bootstrap resamples of each histogram (drawn exactly, one beta variate
  per resample), and the standard error of the resampled log ratio (a sample quantile's
  bootstrap distribution is lumpy: its spread is steadier than its percentiles). Seeded, so a
  verdict is reproducible.

Verdicts, for a change ``c`` with interval ``[lo, hi]`` and tolerance ``t`` (on the log scale
for quantiles, absolute for error rates)::

    regression     lo > t           the slowdown exceeds the tolerance, with confidence: FAIL
    inconclusive   hi > t           the samples cannot rule such a slowdown out (or are too few)
    improvement    hi < -t          faster by more than the tolerance, with confidence
    changed        0 outside [lo, hi], within tolerance
    unchanged      otherwise

Many comparisons at once are corrected with :func:`holm`. Only ``regression`` fails a gate, so
noise widens intervals into ``inconclusive`` instead of
raising false alarms; a small true slowdown can never be reported as an ``improvement``.

So that a gate never passes for lack of data, :func:`with_power` gives every comparison its
minimum detectable effect: the smallest slowdown it would have reported as a regression,
``t`` plus ``z`` standard errors, with ``z`` the one-sided quantile that a lone regression
must clear under Holm's correction (``1 - alpha / m`` for ``m`` comparisons). A true slowdown
of that size fails the gate about half the time; larger ones more often. A comparison is
*underpowered* when its noise margin ``z * se`` exceeds the tolerance itself (its minimum
detectable effect is above about twice the tolerance), or when it has no interval at all.

    >>> import numpy as np
    >>> a = Dist.from_samples_us(np.full(1000, 50_000.0))
    >>> round(a.quantile(0.95) / 1000)
    50
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.results import histograms as hdr
from harness.units import ms_to_us, us_to_ms

Method = Literal["analytic", "bootstrap"]
METHODS: tuple[Method, ...] = ("analytic", "bootstrap")
QUANTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}
METRICS = (*QUANTILES, "error_rate")

# Relative resolution of the histograms (3 significant figures): no change smaller than this
# can be measured, so it is the floor of every quantile's standard error on the log scale.
RESOLUTION = 0.001
# Default tolerances: how much slower a quantile may get before it counts as a regression.
# Tails are noisier than the median and are given more room; error rates are compared as an
# absolute difference (0.005 = half a percentage point).
DEFAULT_TOLERANCE: dict[str, float] = {
    "p50": 0.10,
    "p90": 0.10,
    "p95": 0.10,
    "p99": 0.20,
    "p999": 0.30,
    "error_rate": 0.005,
}
# Below a millisecond, a relative change says more about the runner than about the code
# (timer, scheduler and interpreter noise): a slowdown must also exceed this many ms.
DEFAULT_MIN_EFFECT_MS = 1.0
# Fewer requests than this under one name, and nothing is concluded about it: a handful of
# requests from a few users are neither independent nor representative of the name.
MIN_COUNT = 50
BOOTSTRAP_SAMPLES = 2000
VERDICTS = ("regression", "inconclusive", "improvement", "changed", "unchanged")


@dataclass(frozen=True)
class Dist:
    """A latency distribution as histogram buckets: ascending distinct ``values_us`` and
    their ``counts`` (int64)."""

    values_us: np.ndarray
    counts: np.ndarray
    _cumulative: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cumulative", np.cumsum(self.counts))

    @property
    def n(self) -> int:
        return int(self._cumulative[-1]) if len(self._cumulative) else 0

    @classmethod
    def from_hdr(cls, histogram: HdrHistogram) -> Dist:
        counts = np.ctypeslib.as_array(histogram.counts)[: histogram.counts_len]
        nonzero = np.flatnonzero(counts)
        _, highest = hdr.bucket_values_us(histogram.counts_len)
        return cls(highest[nonzero], counts[nonzero].astype(np.int64))

    @classmethod
    def from_samples_us(cls, samples_us: np.ndarray) -> Dist:
        """Samples (µs) quantised exactly as an HDR histogram of the telemetry would keep them."""
        lowest, highest = hdr.bucket_values_us(hdr.new_histogram().counts_len)
        clipped = np.clip(np.rint(samples_us), hdr.LOWEST_US, hdr.HIGHEST_US)
        index = np.searchsorted(lowest, clipped, side="right") - 1
        values, counts = np.unique(highest[index], return_counts=True)
        return cls(values, counts.astype(np.int64))

    def value_at_rank(self, rank: int) -> float:
        """The ``rank``-th smallest value (1-based)."""
        index = int(np.searchsorted(self._cumulative, rank, side="left"))
        return float(self.values_us[min(index, len(self.values_us) - 1)])

    def quantile(self, p: float) -> float:
        """HdrHistogram's rule: the value whose cumulative count first reaches ``p n``."""
        return self.value_at_rank(_rank(p, self.n))

    def bootstrap_quantiles(self, p: float, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``samples`` quantiles of bootstrap resamples of the histogram, drawn exactly.

        A resample is ``X[ceil(n U_i)]`` for ``n`` uniforms ``U_i``, so its ``r``-th smallest
        value is ``X[ceil(n U_(r))]`` with ``U_(r) ~ Beta(r, n - r + 1)``: one beta draw per
        resample instead of ``n`` draws (the same distribution as multinomial resampling).
        """
        n = self.n
        rank = _rank(p, n)
        u = rng.beta(rank, n - rank + 1, size=samples)
        ranks = np.maximum(np.ceil(u * n), 1)
        index = np.searchsorted(self._cumulative, ranks, side="left")
        return np.asarray(self.values_us[np.minimum(index, len(self.values_us) - 1)])


def merge(dists: Sequence[Dist]) -> Dist:
    """The union of several distributions (exact, as ``HdrHistogram.add``)."""
    values = np.concatenate([d.values_us for d in dists])
    counts = np.concatenate([d.counts for d in dists])
    unique, inverse = np.unique(values, return_inverse=True)
    return Dist(unique, np.bincount(inverse, weights=counts).astype(np.int64))


def _rank(p: float, n: int) -> int:
    return max(int(p * n + 0.5), 1)


def _z(confidence: float) -> float:
    """Each bound of an interval holds with ``confidence`` (one-sided), because each bound
    decides alone: the lower one whether to fail, the upper one whether all is well."""
    return NormalDist().inv_cdf(confidence)


@dataclass(frozen=True, kw_only=True)
class Policy:
    """How a comparison decides (the ``[gate]`` section of a campaign)."""

    confidence: float = 0.95
    method: Method = "analytic"
    tolerance: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCE))
    min_effect_ms: float = DEFAULT_MIN_EFFECT_MS
    metrics: tuple[str, ...] = ("p50", "p95", "p99", "error_rate")
    bootstrap_samples: int = BOOTSTRAP_SAMPLES
    seed: int = 0
    fail_on_inconclusive: bool = False
    require_power: bool = False  # an underpowered verdict fails (exit 5) instead of passing


@dataclass(frozen=True, kw_only=True)
class Change:
    """One metric of one request name, baseline vs candidate.

    Quantiles: ``baseline``/``candidate`` in ms, ``change``/``low``/``high`` relative
    (0.2 = 20 % slower). Error rates: fractions, and an absolute difference.
    """

    metric: str
    baseline: float
    candidate: float
    change: float
    low: float | None
    high: float | None
    tolerance: float
    verdict: str
    note: str = ""
    # One-sided p-value of "the change is within tolerance"; small means a regression. It is
    # what :func:`holm` corrects when a gate makes many comparisons at once.
    p_value: float | None = None
    # Standard error the decision used: of the log ratio (quantiles), of the difference
    # (error rates); None without an interval.
    se: float | None = None
    # Minimum detectable effect (:func:`with_power`): relative for quantiles (0.25 = +25 %),
    # absolute for error rates; None when nothing could be detected.
    mde: float | None = None
    underpowered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "change": self.change,
            "ci_low": self.low,
            "ci_high": self.high,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
            "note": self.note,
            "p_value": self.p_value,
            "mde": self.mde,
            "underpowered": self.underpowered,
        }


def decide(low: float | None, high: float | None, tolerance: float) -> str:
    """A verdict from an interval of the change and a (positive) tolerance; see the module."""
    if low is None or high is None:
        return "inconclusive"
    if low > tolerance:
        return "regression"
    if high > tolerance:
        return "inconclusive"
    if high < -tolerance:
        return "improvement"
    if low > 0 or high < 0:
        return "changed"
    return "unchanged"


def _log_se(d: Dist, p: float, z: float) -> float | None:
    """Standard error of ``log(quantile)`` from the order-statistic interval; None if the
    histogram holds too few values beyond the quantile to bound it."""
    n = d.n
    spread = z * math.sqrt(n * p * (1 - p))
    lo, hi = math.floor(n * p - spread), math.ceil(n * p + spread) + 1
    if lo < 1 or hi > n:
        return None
    v_lo, v_hi = d.value_at_rank(lo), d.value_at_rank(hi)
    return math.hypot((math.log(v_hi) - math.log(v_lo)) / (2 * z), RESOLUTION)


def _between_rounds_se(rounds: Sequence[tuple[Dist, Dist]], p: float) -> float | None:
    """Standard error of the mean per-round log ratio (interleaved A/B runs, >= 3 rounds)."""
    logs = [
        math.log(c.quantile(p) / b.quantile(p))
        for b, c in rounds
        if b.n >= MIN_COUNT and c.n >= MIN_COUNT
    ]
    if len(logs) < 3:
        return None
    return float(np.std(logs, ddof=1) / math.sqrt(len(logs)))


def compare_quantile(
    metric: str,
    base: Dist,
    cand: Dist,
    policy: Policy,
    rounds: Sequence[tuple[Dist, Dist]] = (),
) -> Change:
    """The change of one quantile, candidate vs baseline (see the module docstring)."""
    p = QUANTILES[metric]
    z = _z(policy.confidence)
    if base.n < MIN_COUNT or cand.n < MIN_COUNT:
        b = us_to_ms(base.quantile(p)) if base.n else 0.0
        c = us_to_ms(cand.quantile(p)) if cand.n else 0.0
        return Change(
            metric=metric,
            baseline=b,
            candidate=c,
            change=(c / b - 1) if b else 0.0,
            low=None,
            high=None,
            tolerance=policy.tolerance.get(metric, 0.0),
            verdict="inconclusive",
            note=f"too few requests ({base.n} vs {cand.n}; need {MIN_COUNT})",
        )
    b_us, c_us = base.quantile(p), cand.quantile(p)
    rel_tol = max(
        policy.tolerance.get(metric, DEFAULT_TOLERANCE["p95"]),
        ms_to_us(policy.min_effect_ms) / b_us,
    )
    log_tol = math.log1p(rel_tol)
    center = math.log(c_us / b_us)
    se_b, se_c = _log_se(base, p, z), _log_se(cand, p, z)
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    used_se: float | None = None
    note = ""
    if se_b is None or se_c is None:
        note = f"too few requests beyond {metric} ({base.n} vs {cand.n})"
    else:
        se = math.hypot(se_b, se_c)
        between = _between_rounds_se(rounds, p)
        if policy.method == "bootstrap":
            rng = np.random.default_rng(policy.seed)
            ratios = np.log(
                cand.bootstrap_quantiles(p, policy.bootstrap_samples, rng)
                / base.bootstrap_quantiles(p, policy.bootstrap_samples, rng)
            )
            # The bootstrap's standard error of the log ratio (a sample quantile's bootstrap
            # distribution is lumpy, so its spread is steadier than its percentiles).
            se = max(float(np.std(ratios, ddof=1)), RESOLUTION)
            if between is not None and between > se:
                se = between
            low, high = center - z * se, center + z * se
            p_value = _upper_p(center - log_tol, se)
        else:
            if between is not None:
                se = max(se, between)
                note = "interval widened by the spread between rounds" if se == between else ""
            low, high = center - z * se, center + z * se
            p_value = _upper_p(center - log_tol, se)
        used_se = se
    verdict = decide(low, high, log_tol)
    return Change(
        metric=metric,
        baseline=us_to_ms(b_us),
        candidate=us_to_ms(c_us),
        change=math.expm1(center),
        low=None if low is None else math.expm1(low),
        high=None if high is None else math.expm1(high),
        tolerance=rel_tol,
        verdict=verdict,
        note=note,
        p_value=p_value,
        se=used_se,
    )


def _upper_p(excess: float, se: float) -> float:
    """P(Z > excess / se): how likely so large an excess over the tolerance is by chance."""
    if se <= 0:
        return 0.0 if excess > 0 else 1.0
    return 1.0 - NormalDist().cdf(excess / se)


def holm(changes: Sequence[Change], confidence: float) -> list[Change]:
    """Holm's step-down correction over every comparison of one gate.

    A gate compares a few metrics of dozens of request names; at 95 % each, one of them would
    cross its tolerance by chance in most A/A runs. A regression stands only if its p-value
    passes Holm's threshold among all the comparisons that had an interval (family-wise
    error at ``1 - confidence``); the others become ``inconclusive``.
    """
    alpha = 1 - confidence
    tested = sorted((c.p_value, i) for i, c in enumerate(changes) if c.p_value is not None)
    m = len(tested)
    significant: set[int] = set()
    for rank, (p, i) in enumerate(tested):
        if p > alpha / (m - rank):
            break
        significant.add(i)
    out = []
    for i, c in enumerate(changes):
        if c.verdict == "regression" and i not in significant:
            note = f"not significant among {m} comparisons (Holm)"
            c = replace(c, verdict="inconclusive", note=f"{c.note}; {note}" if c.note else note)
        out.append(c)
    return out


def _wilson(failures: int, n: int, z: float) -> tuple[float, float]:
    p = failures / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def compare_error_rate(
    base_failures: int, base_n: int, cand_failures: int, cand_n: int, policy: Policy
) -> Change:
    """The change of the error rate as an absolute difference, with Newcombe's hybrid score
    interval (Wilson intervals of each rate combined)."""
    tol = policy.tolerance.get("error_rate", DEFAULT_TOLERANCE["error_rate"])
    if base_n < MIN_COUNT or cand_n < MIN_COUNT:
        b = base_failures / base_n if base_n else 0.0
        c = cand_failures / cand_n if cand_n else 0.0
        return Change(
            metric="error_rate",
            baseline=b,
            candidate=c,
            change=c - b,
            low=None,
            high=None,
            tolerance=tol,
            verdict="inconclusive",
            note=f"too few requests ({base_n} vs {cand_n}; need {MIN_COUNT})",
        )
    z = _z(policy.confidence)
    p1, p2 = base_failures / base_n, cand_failures / cand_n
    l1, u1 = _wilson(base_failures, base_n, z)
    l2, u2 = _wilson(cand_failures, cand_n, z)
    diff = p2 - p1
    low = diff - math.hypot(p2 - l2, u1 - p1)
    high = diff + math.hypot(u2 - p2, p1 - l1)
    return Change(
        metric="error_rate",
        baseline=p1,
        candidate=p2,
        change=diff,
        low=low,
        high=high,
        tolerance=tol,
        verdict=decide(low, high, tol),
        p_value=_upper_p(diff - tol, (diff - low) / z) if diff > low else None,
        se=(diff - low) / z if diff > low else None,
    )


def holm_z(confidence: float, comparisons: int) -> float:
    """The one-sided quantile a lone regression must clear among ``comparisons`` under Holm's
    correction: ``1 - (1 - confidence) / m``."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / max(1, comparisons))


def with_power(changes: Sequence[Change], confidence: float) -> list[Change]:
    """Each change with its minimum detectable effect and whether it is underpowered (see the
    module docstring), over the family of comparisons that Holm's correction sees."""
    z = holm_z(confidence, sum(1 for c in changes if c.p_value is not None))
    out = []
    for c in changes:
        if c.se is None:
            out.append(replace(c, mde=None, underpowered=True))
            continue
        margin = z * c.se
        if c.metric == "error_rate":
            mde, scale = c.tolerance + margin, c.tolerance
        else:
            scale = math.log1p(c.tolerance)
            mde = math.expm1(scale + margin)
        out.append(replace(c, mde=mde, underpowered=margin > scale))
    return out
