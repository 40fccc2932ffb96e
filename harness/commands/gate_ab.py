"""``portal-load gate-ab``: interleaved A/B runs in one job, then the gate on B against A.

    portal-load gate-ab [CAMPAIGN] --a TARGET --b TARGET [--rounds 2] [--order abba]

A target is a URL (a deployment of the baseline or of the candidate) or a mock config file
(the embedded mock with that config: how the project's CI injects a regression). The same
campaign is run against both, alternately (:func:`harness.gate.abtest.schedule`), each run
through :func:`harness.run.command.run_campaign`, whose outcome names its folder; every run's
histograms are merged per side and B is judged against A.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.campaign import Campaign, Override, check_url, load_campaign
from harness.campaign.loader import project_defaults
from harness.commands.flags import Flag, add_flags, overrides
from harness.commands.gate import add_gate_options, gate_config, gate_overrides, publish
from harness.errors import ExitCode, UsageError
from harness.gate.abtest import ORDERS, merge_runs, schedule
from harness.gate.baseline import RunData, load_run
from harness.gate.judge import judge
from harness.results.folder import GATE_DIR
from harness.run.command import run_campaign

AB_FLAGS = (
    Flag("--duration", "campaign.duration", "run time of each run, e.g. 10s"),
    Flag("--users", "load.users", "concurrent users (closed model)"),
    Flag("--think-scale", "load.think_scale", "multiplier of think times"),
    Flag("--workers", "workers.count", "Locust worker processes (0: one per core)"),
    Flag("--seed", "campaign.seed", "seed of the runs' random choices"),
)


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


def _gate_ab(args: argparse.Namespace) -> int:
    given: list[Override] = [*overrides(args, AB_FLAGS), *gate_overrides(args)]
    campaign = load_campaign(args.campaign, given, defaults=project_defaults(Path.cwd()))
    config = gate_config(campaign, args)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    job_dir = Path(args.out) / f"ab-{stamp}-{campaign.name}"
    sides = {"A": target_campaign(campaign, args.a, "A", job_dir),
             "B": target_campaign(campaign, args.b, "B", job_dir)}  # fmt: skip
    runs: dict[str, list[RunData]] = {"A": [], "B": []}
    notes = []
    order = schedule(args.rounds, args.order)
    for i, side in enumerate(order, 1):
        print(f"portal-load gate-ab: run {i}/{len(order)}: {side}", flush=True)
        outcome = run_campaign(sides[side], tty=False)
        if outcome.exit_code == ExitCode.PARTIAL:
            print("portal-load gate-ab: interrupted; no verdict", flush=True)
            return ExitCode.PARTIAL
        if outcome.exit_code != ExitCode.OK:
            notes.append(
                f"run {outcome.run_id} is {outcome.status} (exit code {int(outcome.exit_code)})"
            )
        runs[side].append(load_run(outcome.run_dir))
    a = merge_runs(runs["A"], f"A: {args.a} ({len(runs['A'])} runs)")
    b = merge_runs(runs["B"], f"B: {args.b} ({len(runs['B'])} runs)")
    verdict = judge(b, config, a, force=args.force, mode="ab",
                    rounds=list(zip(runs["A"], runs["B"], strict=True)))  # fmt: skip
    if notes:
        verdict = replace(verdict, notes=(*verdict.notes, *notes))
    return publish(verdict, job_dir / GATE_DIR, args, sys.stdout)


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
    add_flags(ab, AB_FLAGS)
    ab.add_argument("--out", default="results", help="results folder")
    add_gate_options(ab, with_baseline=False)
    ab.set_defaults(func=_gate_ab)
