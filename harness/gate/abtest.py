"""``portal-load gate-ab``: interleaved A/B runs in one job, then the gate on B against A.

    portal-load gate-ab [CAMPAIGN] --a TARGET --b TARGET [--rounds 2] [--order abba]

A target is a URL (a deployment of the baseline or of the candidate) or a mock config file
(the embedded mock with that config: how the project's CI injects a regression). The same
campaign is run against both, alternately, and every run's histograms are merged per side.

Why interleave: a shared CI runner drifts (noisy neighbours, thermal limits, caches), so a run
now and a baseline recorded last week differ by more than any code change of interest.
Alternating A and B in one job exposes both sides to the same drift; ``abba`` order (A B B A
A B ...) also cancels a drift that is linear in time, which plain ``abab`` leaves on B. With
three rounds or more, the spread of the per-round changes also widens the interval (see
:func:`harness.gate.compare.compare_quantile`), so run-to-run noise cannot pass for a regression.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.gate.baseline import RunData, Series, load_run
from harness.gate.command import (
    GATE_DIR,
    _add_gate_options,
    _policy_flags,
    gate_config,
    judge,
    report,
)
from harness.gate.slo import read_toml
from harness.results import histograms as hdr
from harness.results.folder import list_runs
from harness.run.campaign import Campaign, check_url, load_campaign

ORDERS = ("abba", "abab")
EXIT_PARTIAL = 3


def schedule(rounds: int, order: str) -> list[str]:
    """The sequence of sides: ``abab`` -> A B A B ..., ``abba`` -> A B B A A B ..."""
    if order not in ORDERS:
        raise UsageError(f"--order: expected one of {', '.join(ORDERS)}")
    if rounds < 1:
        raise UsageError("--rounds: at least 1")
    pairs = [("A", "B") if order == "abab" or i % 2 == 0 else ("B", "A") for i in range(rounds)]
    return [side for pair in pairs for side in pair]


def target_campaign(campaign: Campaign, target: str, side: str, results_dir: Path) -> Campaign:
    """The campaign aimed at one side's target (a URL, or a mock config for the embedded mock)."""
    out = str(results_dir)
    if target.startswith(("http://", "https://")):
        check_url(target, f"--{side.lower()}")
        return replace(campaign, host=target, mock_config="", results_dir=out)
    if target in ("", "embedded"):
        return replace(campaign, host="", results_dir=out)
    if not Path(target).is_file():
        raise UsageError(f"--{side.lower()}: {target!r} is neither a URL nor a mock config file")
    return replace(campaign, host="", mock_config=str(Path(target).resolve()), results_dir=out)


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


def _ab_cmd(args: argparse.Namespace) -> int:
    campaign = load_campaign(
        args.campaign,
        duration_s=args.duration,
        users=args.users,
        think_scale=args.think_scale,
        workers=args.workers,
        seed=args.seed,
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    job_dir = Path(args.out) / f"ab-{stamp}-{campaign.name}"
    sides = {"A": target_campaign(campaign, args.a, "A", job_dir),
             "B": target_campaign(campaign, args.b, "B", job_dir)}  # fmt: skip
    raw = read_toml(Path(args.campaign)) if args.campaign else {}
    config = gate_config(raw, args.campaign or "<flags>", args.slo, **_policy_flags(args))
    from harness.run.command import run_campaign

    runs: dict[str, list[RunData]] = {"A": [], "B": []}
    notes = []
    order = schedule(args.rounds, args.order)
    for i, side in enumerate(order, 1):
        print(f"portal-load gate-ab: run {i}/{len(order)}: {side}", flush=True)
        before = set(list_runs(job_dir))
        code = run_campaign(sides[side], tty=False)
        new = sorted(set(list_runs(job_dir)) - before)
        if code == EXIT_PARTIAL or not new:
            print("portal-load gate-ab: interrupted; no verdict", flush=True)
            return EXIT_PARTIAL
        if code != 0:
            notes.append(f"run {new[-1].name} ended with exit code {code}")
        runs[side].append(load_run(new[-1]))
    a = merge_runs(runs["A"], f"A: {args.a} ({len(runs['A'])} runs)")
    b = merge_runs(runs["B"], f"B: {args.b} ({len(runs['B'])} runs)")
    verdict = judge(b, config, a, force=args.force, mode="ab",
                    rounds=list(zip(runs["A"], runs["B"], strict=True)))  # fmt: skip
    if notes:
        verdict = replace(verdict, notes=(*verdict.notes, *notes))
    return report(verdict, job_dir / GATE_DIR, args)


def add_parser(sub: Any) -> None:
    ab = sub.add_parser(
        "gate-ab",
        help="run baseline (A) and candidate (B) alternately in one job and gate B against A",
    )
    ab.add_argument("campaign", nargs="?", help="campaign file (TOML), the same for both sides")
    ab.add_argument("--a", required=True, help="baseline target: URL, mock config, or embedded")
    ab.add_argument("--b", required=True, help="candidate target: URL, mock config, or embedded")
    ab.add_argument("--rounds", type=int, default=2, help="A/B pairs (default 2)")
    ab.add_argument("--order", choices=ORDERS, default="abba", help="interleaving (abba)")
    ab.add_argument("--duration", help="run time of each run, e.g. 10s")
    ab.add_argument("--users", type=int, help="concurrent users (closed model)")
    ab.add_argument("--think-scale", type=float, help="multiplier of think times")
    ab.add_argument("--workers", type=int, help="Locust worker processes (0: one per core)")
    ab.add_argument("--seed", type=int, help="seed recorded with the runs")
    ab.add_argument("--out", default="results", help="results folder")
    _add_gate_options(ab, with_baseline=False)
    ab.set_defaults(func=_ab_cmd)
