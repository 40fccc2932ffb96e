"""The gate's own quality on synthetic runs: false alarms, power, never a false improvement.

A synthetic run has four request names whose latencies are lognormal mixtures with a slow
tail (3 % of requests about 4.5 times slower), 10,000 requests each (a minute of CI load at
about 700 requests/s), and a 0.5 % error rate. A comparison runs the gate's decision on
every metric of every name (p50, p95, p99, error rate: 16 verdicts) and fails if any says
``regression``. ``drift_sd`` adds a run-level slowdown factor ``exp(N(0, drift_sd))`` shared
by all names of one run (a noisy shared runner); with ``rounds`` > 1, A and B are interleaved
and each round's A and B share one drift (what ``portal-load gate-ab`` does).

    python -m tests.gate._quality           # prints the table of docs/gating.md
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from harness.gate.compare import Dist, Policy, compare_error_rate, compare_quantile, holm, merge

from ._runs import latency_ms

MEDIANS_MS = (8.0, 40.0, 120.0, 300.0)
REQUESTS = 10_000
ERROR_RATE = 0.005
TARGET = 1  # the name that gets slower in the power runs


@dataclass
class Outcome:
    comparisons: int
    gate_failed: int
    target_p95: Counter[str]
    any_improvement_on_target: int
    p95_covered: int

    @property
    def fail_rate(self) -> float:
        return self.gate_failed / self.comparisons

    @property
    def p95_caught(self) -> float:
        return self.target_p95["regression"] / self.comparisons


def _side(rng: np.random.Generator, median: float, scale: float) -> tuple[Dist, int]:
    samples = latency_ms(rng, REQUESTS, median_ms=median, scale=scale) * 1000
    return Dist.from_samples_us(samples), int(rng.binomial(REQUESTS, ERROR_RATE))


def measure(
    *,
    comparisons: int,
    effect: float = 1.0,
    method: str = "analytic",
    drift_sd: float = 0.0,
    rounds: int = 1,
    seed: int = 0,
) -> Outcome:
    rng = np.random.default_rng(seed)
    policy = Policy(method=method)  # type: ignore[arg-type]
    failed = improved = covered = 0
    target_p95: Counter[str] = Counter()
    per_round = REQUESTS // rounds
    for _ in range(comparisons):
        drifts = [math.exp(rng.normal(0, drift_sd)) for _ in range(rounds)]
        # Sequential: the baseline ran at another time. Interleaved: each round's A and B
        # share the runner's state.
        drifts_b = [math.exp(rng.normal(0, drift_sd))] if rounds == 1 else drifts
        per_name = []
        for i, median in enumerate(MEDIANS_MS):
            scale = effect if i == TARGET else 1.0
            pairs = []
            fa = fb = 0
            for r in range(rounds):
                a = latency_ms(rng, per_round, median_ms=median, scale=drifts[r]) * 1000
                b = latency_ms(rng, per_round, median_ms=median, scale=drifts_b[r] * scale) * 1000
                pairs.append((Dist.from_samples_us(a), Dist.from_samples_us(b)))
                fa += int(rng.binomial(per_round, ERROR_RATE))
                fb += int(rng.binomial(per_round, ERROR_RATE))
            base, cand = merge([p[0] for p in pairs]), merge([p[1] for p in pairs])
            rounds_arg = pairs if rounds > 1 else ()
            per_name += [
                compare_quantile(m, base, cand, policy, rounds_arg) for m in ("p50", "p95", "p99")
            ]
            per_name.append(
                compare_error_rate(fa, per_round * rounds, fb, per_round * rounds, policy)
            )
        changes = holm(per_name, policy.confidence)  # as the gate does over a whole run
        regression = any(c.verdict == "regression" for c in changes)
        target = changes[4 * TARGET : 4 * TARGET + 4]
        target_p95[target[1].verdict] += 1
        improved += any(c.verdict == "improvement" for c in target)
        lo, hi = target[1].low, target[1].high
        covered += lo is not None and hi is not None and lo <= effect - 1 <= hi
        failed += regression
    return Outcome(comparisons, failed, target_p95, improved, covered)


def main() -> None:
    rows = [
        ("A/A", 1.0, "analytic", 0.0, 1),
        ("A/A", 1.0, "bootstrap", 0.0, 1),
        ("+20 %", 1.2, "analytic", 0.0, 1),
        ("+20 %", 1.2, "bootstrap", 0.0, 1),
        ("+5 %", 1.05, "analytic", 0.0, 1),
        ("A/A, 3 % drift, sequential", 1.0, "analytic", 0.03, 1),
        ("+20 %, 3 % drift, sequential", 1.2, "analytic", 0.03, 1),
        ("A/A, 3 % drift, interleaved x3", 1.0, "analytic", 0.03, 3),
        ("+20 %, 3 % drift, interleaved x3", 1.2, "analytic", 0.03, 3),
    ]
    print(
        "| case | method | comparisons | gate failed | p95 of the slowed name | "
        "improvement reported | p95 interval covers the truth |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, effect, method, drift, rounds in rows:
        o = measure(
            comparisons=200, effect=effect, method=method, drift_sd=drift, rounds=rounds, seed=1
        )
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(o.target_p95.items()))
        print(
            f"| {label} | {method} | {o.comparisons} | {o.gate_failed} ({o.fail_rate:.1%}) | "
            f"{verdicts} | {o.any_improvement_on_target} | "
            f"{o.p95_covered / o.comparisons:.0%} |"
        )


if __name__ == "__main__":
    main()
