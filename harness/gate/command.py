"""``portal-load gate``: a run against absolute SLOs and against a baseline, for CI.

    portal-load gate RUN [--baseline RUN|FILE|NAME] [--slo FILE] [--force]
    portal-load run CAMPAIGN --gate [--baseline ...] [--slo FILE] [--abort-on-fail]

SLOs come from ``--slo FILE`` or the run's campaign (``[slo]``, see :mod:`harness.gate.slo`); the
comparison's policy from the campaign's ``[gate]`` table, then flags::

    [gate]
    baseline = "main"          # default --baseline (a name under results/baselines/)
    confidence = 0.95          # each bound of an interval
    method = "analytic"        # or "bootstrap"
    tolerance = { p50 = "10%", p95 = "10%", p99 = "20%", error_rate = "0.5%" }
    min_effect = "1ms"         # a slowdown must also exceed this
    metrics = ["p50", "p95", "p99", "error_rate"]
    fail_on_inconclusive = false

Exit codes: 0 pass, 1 an SLO breached or a regression established, 2 a usage error (bad
flags, a malformed threshold, missing runs, runs of different campaigns without ``--force``).
The verdict is written as ``verdict.json``, ``junit.xml`` and ``summary.md`` in
``RUN/gate/`` (or where ``--json``/``--junit``/``--markdown`` say).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, ResultsError, UsageError
from harness.gate.baseline import RunData, load_run, resolve, shape_differences
from harness.gate.compare import (
    DEFAULT_TOLERANCE,
    METHODS,
    METRICS,
    Change,
    Dist,
    Policy,
    compare_error_rate,
    compare_quantile,
    holm,
)
from harness.gate.slo import Objective, abort_reason, evaluate, load_slo_file, parse_slo, read_toml
from harness.gate.verdict import (
    Comparison,
    Verdict,
    render_json,
    render_junit,
    render_markdown,
    render_text,
)
from harness.results.folder import CAMPAIGN, atomic_write, resolve_run
from harness.run.campaign import parse_duration

EXIT_PASS = 0
EXIT_FAIL = 1
GATE_DIR = "gate"


# -- configuration ---------------------------------------------------------------------------
def _fraction(value: Any, where: str) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            pass
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise UsageError(f"{where}: expected a fraction or a percentage like '10%', got {value!r}")


def parse_policy(table: Any, where: str, **overrides: Any) -> Policy:
    """The ``[gate]`` table as a :class:`Policy`; ``overrides`` (flags) win when not None."""
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: expected a table [gate]")
    known = {
        "baseline",
        "confidence",
        "method",
        "tolerance",
        "min_effect",
        "metrics",
        "fail_on_inconclusive",
        "bootstrap_samples",
        "seed",
    }
    unknown = set(table) - known
    if unknown:
        raise UsageError(
            f"{where}: unknown keys {', '.join(sorted(unknown))}; expected one of "
            f"{', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    if "confidence" in table:
        values["confidence"] = _fraction(table["confidence"], f"{where}.confidence")
    if "method" in table:
        values["method"] = table["method"]
    if "tolerance" in table:
        tol = table["tolerance"]
        if not isinstance(tol, Mapping):
            raise UsageError(f"{where}.tolerance: expected a table like {{ p95 = '10%' }}")
        merged = dict(DEFAULT_TOLERANCE)
        for metric, value in tol.items():
            if metric not in METRICS:
                raise UsageError(
                    f"{where}.tolerance.{metric}: unknown metric; expected one of "
                    f"{', '.join(METRICS)}"
                )
            at = f"{where}.tolerance.{metric}"
            merged[metric] = _fraction(value, at)
            if merged[metric] < 0:
                raise UsageError(f"{at}: must be >= 0")
            if not isinstance(value, str) and merged[metric] > 1:
                # 5 as "5 %" is the usual slip; it would be a gate that never fails
                raise UsageError(
                    f"{at}: {value!r} is {merged[metric] * 100:g} %; write a fraction up to 1, "
                    f"or a percentage like '{value:g}%'"
                )
            if metric == "error_rate" and merged[metric] > 1:
                raise UsageError(f"{at}: an error rate cannot grow by more than 100 points")
        values["tolerance"] = merged
    if "min_effect" in table:
        values["min_effect_ms"] = parse_duration(table["min_effect"], f"{where}.min_effect") * 1000
    if "metrics" in table:
        metrics = table["metrics"]
        if not isinstance(metrics, list) or not all(m in METRICS for m in metrics) or not metrics:
            raise UsageError(f"{where}.metrics: expected a list of {', '.join(METRICS)}")
        values["metrics"] = tuple(metrics)
    for key in ("fail_on_inconclusive",):
        if key in table:
            if not isinstance(table[key], bool):
                raise UsageError(f"{where}.{key}: expected true or false")
            values[key] = table[key]
    for key in ("bootstrap_samples", "seed"):
        if key in table:
            if not isinstance(table[key], int) or isinstance(table[key], bool) or table[key] < 0:
                raise UsageError(f"{where}.{key}: expected a non-negative integer")
            values[key] = table[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("method", "analytic") not in METHODS:
        raise UsageError(f"{where}.method: expected one of {', '.join(METHODS)}")
    confidence = values.get("confidence", 0.95)
    if not 0.5 <= confidence < 1:
        raise UsageError(f"{where}.confidence: must be within [0.5, 1), e.g. 0.95")
    if values.get("bootstrap_samples", 100) < 100:
        raise UsageError(f"{where}.bootstrap_samples: at least 100")
    return Policy(**values)


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    """What to check: objectives, the comparison policy and the default baseline."""

    objectives: list[Objective] = field(default_factory=list)
    policy: Policy = field(default_factory=Policy)
    baseline: str | None = None


def gate_config(
    campaign: Mapping[str, Any], source: str, slo_file: str | None, **overrides: Any
) -> GateConfig:
    """SLOs from ``slo_file`` or the campaign's ``[slo]``; the policy from its ``[gate]``."""
    gate_table = campaign.get("gate", {})
    policy = parse_policy(gate_table, f"{source}: gate", **overrides)
    if slo_file:
        objectives = load_slo_file(Path(slo_file))
    elif "slo" in campaign:
        objectives = parse_slo(campaign["slo"], f"{source}: slo")
    else:
        objectives = []
    baseline = gate_table.get("baseline") if isinstance(gate_table, Mapping) else None
    if baseline is not None and not isinstance(baseline, str):
        raise UsageError(f"{source}: gate.baseline: expected a baseline name or path")
    return GateConfig(objectives=objectives, policy=policy, baseline=baseline)


# -- comparison ------------------------------------------------------------------------------
def compare_runs(
    base: RunData,
    cand: RunData,
    policy: Policy,
    rounds: Sequence[tuple[RunData, RunData]] = (),
) -> tuple[list[Comparison], dict[str, list[str]]]:
    """Per request key present in both runs (and the total), every metric of the policy."""
    base_keys = {s.key for s in base.section("requests")}
    cand_keys = {s.key for s in cand.section("requests")}
    comparisons = []
    for key in ["total", *sorted(base_keys & cand_keys)]:
        b = base.total if key == "total" else base.series[key]
        c = cand.total if key == "total" else cand.series[key]
        b_dist, c_dist = Dist.from_hdr(b.histogram), Dist.from_hdr(c.histogram)
        pairs = [
            (Dist.from_hdr(_series(rb, key).histogram), Dist.from_hdr(_series(rc, key).histogram))
            for rb, rc in rounds
            if _has(rb, key) and _has(rc, key)
        ]
        changes: list[Change] = []
        for metric in policy.metrics:
            if metric == "error_rate":
                changes.append(compare_error_rate(b.failures, b.count, c.failures, c.count, policy))
            else:
                changes.append(compare_quantile(metric, b_dist, c_dist, policy, pairs))
        comparisons.append(
            Comparison(
                key=key, baseline_count=b.count, candidate_count=c.count, changes=tuple(changes)
            )
        )
    # Dozens of comparisons at once: correct them together (Holm), or one would fail by chance.
    corrected = iter(holm([ch for c in comparisons for ch in c.changes], policy.confidence))
    comparisons = [
        replace(c, changes=tuple(next(corrected) for _ in c.changes)) for c in comparisons
    ]
    unmatched = {
        "baseline": sorted(base_keys - cand_keys),
        "candidate": sorted(cand_keys - base_keys),
    }
    return comparisons, unmatched


def _has(run: RunData, key: str) -> bool:
    return key == "total" or key in run.series


def _series(run: RunData, key: str) -> Any:
    return run.total if key == "total" else run.series[key]


def judge(
    cand: RunData,
    config: GateConfig,
    base: RunData | None,
    *,
    force: bool = False,
    mode: str = "baseline",
    rounds: Sequence[tuple[RunData, RunData]] = (),
) -> Verdict:
    """The verdict on ``cand``: its SLOs, and its change against ``base`` if given."""
    notes = []
    if cand.status != "complete":
        notes.append(f"the run is {cand.status}: its figures may not be representative")
    comparisons: list[Comparison] = []
    unmatched: dict[str, list[str]] = {}
    if base is not None:
        diffs = shape_differences(base, cand)
        if diffs and not force:
            raise UsageError(
                "refusing to compare runs of different campaigns (use --force to compare "
                "anyway): " + "; ".join(diffs)
            )
        if diffs:
            notes.append("compared despite different campaigns: " + "; ".join(diffs))
        if base.status != "complete":
            notes.append(f"the baseline is {base.status}")
        comparisons, unmatched = compare_runs(base, cand, config.policy, rounds)
    return Verdict(
        mode=mode if base is not None else "slo",
        run=cand.run_id,
        baseline=base.run_id if base is not None else None,
        policy=config.policy,
        slo=tuple(evaluate(cand, config.objectives)),
        comparisons=tuple(comparisons),
        notes=tuple(notes),
        unmatched=unmatched,
    )


def write_outputs(
    verdict: Verdict,
    directory: Path,
    *,
    json_path: str | None = None,
    junit_path: str | None = None,
    markdown_path: str | None = None,
) -> dict[str, Path]:
    """``verdict.json``, ``junit.xml`` and ``summary.md`` (atomically); returns their paths."""
    paths = {
        "json": Path(json_path) if json_path else directory / "verdict.json",
        "junit": Path(junit_path) if junit_path else directory / "junit.xml",
        "markdown": Path(markdown_path) if markdown_path else directory / "summary.md",
    }
    atomic_write(paths["json"], render_json(verdict))
    atomic_write(paths["junit"], render_junit(verdict))
    atomic_write(paths["markdown"], render_markdown(verdict))
    return paths


def report(verdict: Verdict, directory: Path, args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    paths = write_outputs(
        verdict, directory, json_path=args.json, junit_path=args.junit, markdown_path=args.markdown
    )
    out.write(render_text(verdict))
    out.write(f"gate: verdict in {paths['json']}, {paths['junit']}, {paths['markdown']}\n")
    out.flush()
    return EXIT_PASS if verdict.passed else EXIT_FAIL


def _policy_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "confidence": args.confidence,
        "method": args.method,
        "fail_on_inconclusive": True if args.fail_on_inconclusive else None,
    }


def _load(ref: str, root: Path) -> RunData:
    try:
        return resolve(ref, root)
    except ResultsError as exc:  # a wrong argument, not a regression: exit 2
        raise UsageError(str(exc)) from None


def gate_run(
    run_dir: Path, args: argparse.Namespace, root: Path, campaign_file: str | None = None
) -> Verdict:
    """The verdict on one run folder, configured by its campaign and the flags."""
    cand = _load(str(run_dir), root)
    source = campaign_file or str(run_dir / CAMPAIGN)
    campaign = read_toml(Path(campaign_file)) if campaign_file else cand.campaign
    config = gate_config(campaign, source, args.slo, **_policy_flags(args))
    baseline_ref = args.baseline or config.baseline
    if baseline_ref is None and not config.objectives:
        raise UsageError(
            "nothing to gate on: give --baseline RUN|FILE|NAME or --slo FILE "
            "(or [slo] / [gate] baseline in the campaign)"
        )
    base = _load(baseline_ref, root) if baseline_ref else None
    return judge(cand, config, base, force=args.force)


def _gate_cmd(args: argparse.Namespace) -> int:
    root = Path(args.out)
    try:
        run_dir = resolve_run(root, args.run)
    except ResultsError as exc:
        raise UsageError(str(exc)) from None
    verdict = gate_run(run_dir, args, root)
    return report(verdict, run_dir / GATE_DIR, args)


# -- portal-load run --gate ------------------------------------------------------------------
class LiveAbort:
    """Called with the run's folder while it runs: the reason to stop it, or None.

    Reads the results the master rewrites every ~5 s (only when ``summary.json`` changed) and
    checks the ``abort_on_fail`` objectives (all objectives with ``--abort-on-fail``).
    """

    def __init__(self, objectives: list[Objective]) -> None:
        self.objectives = objectives
        self.run_dir: Path | None = None
        self._seen: float | None = None

    def __call__(self, run_dir: Path) -> str | None:
        self.run_dir = run_dir
        try:
            mtime = (run_dir / "summary.json").stat().st_mtime
        except OSError:
            return None
        if mtime == self._seen:
            return None
        self._seen = mtime
        try:
            run = load_run(run_dir)
        except HarnessError:
            return None
        return abort_reason(run, self.objectives, run.duration_s)


def _with_abort(objectives: list[Objective], everything: bool) -> list[Objective]:
    if not everything:
        return objectives
    return [replace(o, threshold=replace(o.threshold, abort_on_fail=True)) for o in objectives]


@contextlib.contextmanager
def _abort_check(check: LiveAbort) -> Iterator[None]:
    from harness.run import command as run_module

    token = run_module.ABORT_CHECK.set(check)
    try:
        yield
    finally:
        run_module.ABORT_CHECK.reset(token)


def _wrap_run(original: Any) -> Any:
    def run_gated(args: argparse.Namespace) -> int:
        if not (args.gate or args.baseline or args.slo or args.abort_on_fail):
            return int(original(args))
        campaign = read_toml(Path(args.campaign)) if args.campaign else {}
        source = args.campaign or "<flags>"
        config = gate_config(campaign, source, args.slo, **_policy_flags(args))
        if not config.objectives and not (args.baseline or config.baseline):
            raise UsageError("--gate: no [slo] in the campaign, no --slo and no --baseline")
        check = LiveAbort(_with_abort(config.objectives, args.abort_on_fail))
        with _abort_check(check):
            code = int(original(args))
        if check.run_dir is None:
            return code
        root = check.run_dir.parent
        verdict = gate_run(check.run_dir, args, root, campaign_file=args.campaign)
        gated = report(verdict, check.run_dir / GATE_DIR, args)
        return EXIT_FAIL if gated == EXIT_FAIL else code

    return run_gated


# -- command line ----------------------------------------------------------------------------
def _add_gate_options(parser: argparse.ArgumentParser, *, with_baseline: bool = True) -> None:
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
    parser.add_argument("--json", help="verdict JSON path (default: RUN/gate/verdict.json)")
    parser.add_argument("--junit", help="JUnit XML path (default: RUN/gate/junit.xml)")
    parser.add_argument("--markdown", help="Markdown path (default: RUN/gate/summary.md)")


def add_parser(sub: Any) -> None:
    """``gate``, ``gate-ab``, ``baseline save``, and ``--gate`` on ``run``."""
    from harness.gate import abtest, baseline

    gate = sub.add_parser("gate", help="gate a run on SLOs and against a baseline (CI)")
    gate.add_argument("run", help="run id, a unique prefix of it, latest, or a path")
    gate.add_argument("--out", default="results", help="results folder")
    _add_gate_options(gate)
    gate.set_defaults(func=_gate_cmd)
    run = sub.choices.get("run")
    if run is not None:
        run.add_argument("--gate", action="store_true", help="gate the run at its end")
        run.add_argument(
            "--abort-on-fail",
            action="store_true",
            help="stop the run as soon as any SLO is breached",
        )
        _add_gate_options(run)
        run.set_defaults(func=_wrap_run(run.get_default("func")))
    abtest.add_parser(sub)
    baseline.add_parser(sub)
