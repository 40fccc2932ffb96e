"""Interleaved A/B runs (``portal-load gate-ab``): their order, and each side's runs merged.

Why interleave: a shared CI runner drifts (noisy neighbours, thermal limits, caches), so a run
now and a baseline recorded last week differ by more than any code change of interest.
Alternating A and B in one job exposes both sides to the same drift; ``abba`` order (A B B A
A B ...) also cancels a drift that is linear in time, which plain ``abab`` leaves on B. With
three rounds or more, the spread of the per-round changes also widens the interval (see
:func:`harness.gate.compare.compare_quantile`), so run-to-run noise cannot pass for a regression.
"""

from __future__ import annotations

from dataclasses import replace

from harness.errors import UsageError
from harness.gate.baseline import RunData, Series
from harness.results import histograms as hdr

ORDERS = ("abba", "abab")


def schedule(rounds: int, order: str) -> list[str]:
    """The sequence of sides: ``abab`` -> A B A B ..., ``abba`` -> A B B A A B ..."""
    if order not in ORDERS:
        raise UsageError(f"--order: expected one of {', '.join(ORDERS)}")
    if rounds < 1:
        raise UsageError("--rounds: at least 1")
    pairs = [("A", "B") if order == "abab" or i % 2 == 0 else ("B", "A") for i in range(rounds)]
    return [side for pair in pairs for side in pair]


def merge_runs(runs: list[RunData], label: str) -> RunData:
    """One side's runs as one: counts summed, histograms merged exactly."""
    series: dict[str, Series] = {}
    for run in runs:
        for key, s in run.series.items():
            if key in series:
                merged = series[key]
                merged.histogram.add(s.histogram)
                series[key] = replace(merged, count=merged.count + s.count,
                                      failures=merged.failures + s.failures)  # fmt: skip
            else:
                h = hdr.new_histogram()
                h.add(s.histogram)
                series[key] = replace(s, histogram=h)
    total_h = hdr.new_histogram()
    for run in runs:
        total_h.add(run.total.histogram)
    total = replace(runs[0].total, histogram=total_h, count=sum(r.total.count for r in runs),
                    failures=sum(r.total.failures for r in runs))  # fmt: skip
    statuses = {r.status for r in runs}
    return RunData(
        run_id=label,
        source=", ".join(r.source for r in runs),
        status="complete" if statuses == {"complete"} else "/".join(sorted(statuses)),
        duration_s=sum(r.duration_s for r in runs),
        campaign=runs[0].campaign,
        series=series,
        total=total,
        git=runs[0].git,
    )
