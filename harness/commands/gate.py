"""``portal-load gate`` and ``portal-load baseline save``: a run judged for CI, and a run kept
as the baseline later runs are judged against.

    portal-load gate RUN [--baseline RUN|FILE|NAME] [--slo FILE] [--force]
    portal-load baseline save RUN NAME [--force]

SLOs come from ``--slo FILE`` or the run's campaign (``[slo]``), the comparison's policy from
its ``[gate]`` table, then the flags (:mod:`harness.gate.judge`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from harness.campaign import Campaign, Override, load_campaign
from harness.errors import ExitCode, ResultsError, UsageError
from harness.gate.baseline import save_baseline
from harness.gate.compare import METHODS
from harness.gate.judge import exit_code, judge, load_ref, write_outputs
from harness.gate.policy import GateConfig
from harness.gate.slo import load_slo_file
from harness.gate.verdict import Verdict, render_text
from harness.results.folder import CAMPAIGN, GATE_DIR, resolve_run


def add_gate_options(parser: argparse.ArgumentParser, *, with_baseline: bool = True) -> None:
    """The options every gating command shares (``gate``, ``gate-ab``, ``run --gate``)."""
    if with_baseline:
        parser.add_argument("--baseline", help="run id/folder, baseline file, or baseline name")
    parser.add_argument("--slo", help="SLO file (TOML: [slo] target = ['p95 < 300ms', ...])")
    parser.add_argument(
        "--force", action="store_true", help="compare runs of different campaigns anyway"
    )
    parser.add_argument("--confidence", type=float, help="of each interval bound (0.95)")
    parser.add_argument("--method", choices=METHODS, help="interval method (analytic)")
    parser.add_argument(
        "--fail-on-inconclusive", action="store_true", help="an inconclusive comparison fails too"
    )
    parser.add_argument(
        "--require-power",
        action="store_true",
        help="an underpowered verdict (the run too small to detect the tolerance) fails, exit 5",
    )
    parser.add_argument("--json", help="verdict JSON path (default: RUN/gate/verdict.json)")
    parser.add_argument("--junit", help="JUnit XML path (default: RUN/gate/junit.xml)")
    parser.add_argument("--markdown", help="Markdown path (default: RUN/gate/summary.md)")


def gate_overrides(args: argparse.Namespace) -> list[Override]:
    """The gate's flags as overrides of the campaign's ``[gate]`` table."""
    return [
        Override("gate.confidence", args.confidence, "--confidence"),
        Override("gate.method", args.method, "--method"),
        Override(
            "gate.fail_on_inconclusive",
            True if args.fail_on_inconclusive else None,
            "--fail-on-inconclusive",
        ),
        Override("gate.require_power", True if args.require_power else None, "--require-power"),
    ]


def gate_config(campaign: Campaign, args: argparse.Namespace) -> GateConfig:
    """The campaign's gate, with the SLOs of ``--slo FILE`` in place of its own if given."""
    config = campaign.gate
    if args.slo:
        config = replace(config, objectives=tuple(load_slo_file(Path(args.slo))))
    return config


def publish(verdict: Verdict, directory: Path, args: argparse.Namespace, out: IO[str]) -> int:
    """Write the verdict's files, print it, and return the gate's exit code."""
    paths = write_outputs(
        verdict, directory, json_path=args.json, junit_path=args.junit, markdown_path=args.markdown
    )
    out.write(render_text(verdict))
    out.write(f"gate: verdict in {paths['json']}, {paths['junit']}, {paths['markdown']}\n")
    out.flush()
    return exit_code(verdict)


def gate_run_folder(
    run_dir: Path,
    config: GateConfig,
    args: argparse.Namespace,
    root: Path,
    out: IO[str] | None = None,
) -> int:
    """Judge one run folder with ``config`` (baseline: ``--baseline`` or the campaign's),
    write the verdict into ``RUN/gate/`` and return the gate's exit code."""
    cand = load_ref(str(run_dir), root)
    baseline_ref = args.baseline or config.baseline
    if baseline_ref is None and not config.objectives:
        raise UsageError(
            "nothing to gate on: give --baseline RUN|FILE|NAME or --slo FILE "
            "(or [slo] / [gate] baseline in the campaign)"
        )
    base = load_ref(baseline_ref, root) if baseline_ref else None
    verdict = judge(cand, config, base, force=args.force)
    return publish(verdict, run_dir / GATE_DIR, args, out or sys.stdout)


def _gate(args: argparse.Namespace) -> int:
    root = Path(args.out)
    try:
        run_dir = resolve_run(root, args.run)
    except ResultsError as exc:
        raise UsageError(str(exc)) from None
    path = run_dir / CAMPAIGN
    campaign = load_campaign(path if path.is_file() else None, gate_overrides(args))
    return gate_run_folder(run_dir, gate_config(campaign, args), args, root)


def _save(args: argparse.Namespace) -> int:
    root = Path(args.out)
    run_dir = resolve_run(root, args.run)
    path = save_baseline(run_dir, args.name, root, force=args.force)
    size_kib = path.stat().st_size / 1024
    print(f"baseline {args.name} <- {run_dir.name}: {path} ({size_kib:.0f} KiB); commit it")
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    gate = sub.add_parser("gate", help="gate a run on SLOs and against a baseline (CI)")
    gate.add_argument("run", help="run id, a unique prefix of it, latest, or a path")
    gate.add_argument("--out", default="results", help="results folder")
    add_gate_options(gate)
    gate.set_defaults(func=_gate)

    parser = sub.add_parser("baseline", help="store a run as a baseline for the gate")
    actions = parser.add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    save = actions.add_parser("save", help="save RUN as results/baselines/NAME/baseline.json")
    save.add_argument("run", help="run id, a unique prefix of it, latest, or a path")
    save.add_argument("name", help="baseline name (letters, digits, '.', '_', '-')")
    save.add_argument("--out", default="results", help="results folder")
    save.add_argument(
        "--force", action="store_true", help="save a run that is not complete (partial, degraded)"
    )
    save.set_defaults(func=_save)
