"""The gate's judgement of a run: its SLOs, and its change against a baseline, for CI.

Exit codes (:class:`harness.errors.ExitCode`): 0 pass (or underpowered without
``require_power``), 1 an SLO breached or a regression established, 5 underpowered with
``require_power`` (``--require-power``: the run was too small to detect the tolerance on some
comparison), 2 a usage error (bad flags, a malformed threshold, missing runs, runs of
different campaigns without ``force``). The verdict is written as ``verdict.json``,
``junit.xml`` and ``summary.md`` in ``RUN/gate/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.errors import ExitCode, HarnessError, ResultsError, UsageError
from harness.gate.baseline import RunData, Series, load_run, resolve, shape_differences
from harness.gate.compare import (
    Change,
    Dist,
    Policy,
    compare_error_rate,
    compare_quantile,
    holm,
    with_power,
)
from harness.gate.policy import GateConfig
from harness.gate.slo import Objective, abort_reason, evaluate, is_corrected_http
from harness.gate.verdict import Comparison, Verdict, render_json, render_junit, render_markdown
from harness.results import histograms as hdr
from harness.results.folder import SUMMARY, VERDICT, atomic_write


def exit_code(verdict: Verdict) -> ExitCode:
    """1 on a breach or a regression; 5 when underpowered and the policy requires power."""
    if verdict.outcome == "fail":
        return ExitCode.GATE_FAILED
    if verdict.outcome == "underpowered" and verdict.policy.require_power:
        return ExitCode.UNDERPOWERED
    return ExitCode.OK


def load_ref(ref: str, root: Path) -> RunData:
    """A run or baseline named on the command line; a wrong one is a usage error (exit 2)."""
    try:
        return resolve(ref, root)
    except ResultsError as exc:
        raise UsageError(str(exc)) from None


# The key of the corrected total: every HTTP request's +CO twin merged (open model).
CORRECTED_TOTAL = "total+CO"


def _keys(run: RunData) -> set[str]:
    """Request keys the gate compares: HTTP requests and their corrected twins."""
    return {s.key for s in run.section("requests")} | {
        s.key for s in run.section("corrected") if is_corrected_http(s.method)
    }


def compare_runs(
    base: RunData,
    cand: RunData,
    policy: Policy,
    rounds: Sequence[tuple[RunData, RunData]] = (),
) -> tuple[list[Comparison], dict[str, list[str]]]:
    """Per request key present in both runs (and the total), every metric of the policy; in
    the open model each key's corrected twin (``GET+CO name``) and ``total+CO`` too."""
    base_keys, cand_keys = _keys(base), _keys(cand)
    totals = ["total"]
    if _has(base, CORRECTED_TOTAL) and _has(cand, CORRECTED_TOTAL):
        totals.append(CORRECTED_TOTAL)
    comparisons = []
    for key in [*totals, *sorted(base_keys & cand_keys)]:
        b, c = _series(base, key), _series(cand, key)
        b_dist, c_dist = Dist.from_hdr(b.histogram), Dist.from_hdr(c.histogram)
        pairs = [
            (Dist.from_hdr(_series(rb, key).histogram), Dist.from_hdr(_series(rc, key).histogram))
            for rb, rc in rounds
            if _has(rb, key) and _has(rc, key)
        ]
        changes: list[Change] = []
        for metric in policy.metrics:
            if metric == "error_rate" and b.section == "corrected":
                continue  # a twin fails with its request: its error rate is the request's
            if metric == "error_rate":
                changes.append(compare_error_rate(b.failures, b.count, c.failures, c.count, policy))
            else:
                changes.append(compare_quantile(metric, b_dist, c_dist, policy, pairs))
        comparisons.append(
            Comparison(
                key=key, baseline_count=b.count, candidate_count=c.count, changes=tuple(changes)
            )
        )
    # Dozens of comparisons at once: correct them together (Holm), or one would fail by chance;
    # then say what each could have detected at that corrected level.
    flat = holm([ch for c in comparisons for ch in c.changes], policy.confidence)
    corrected = iter(with_power(flat, policy.confidence))
    comparisons = [
        replace(c, changes=tuple(next(corrected) for _ in c.changes)) for c in comparisons
    ]
    unmatched = {
        "baseline": sorted(base_keys - cand_keys),
        "candidate": sorted(cand_keys - base_keys),
    }
    return comparisons, unmatched


def _has(run: RunData, key: str) -> bool:
    if key == CORRECTED_TOTAL:
        return any(is_corrected_http(s.method) for s in run.section("corrected"))
    return key == "total" or key in run.series


def _series(run: RunData, key: str) -> Series:
    if key == "total":
        return run.total
    if key == CORRECTED_TOTAL:
        twins = [s for s in run.section("corrected") if is_corrected_http(s.method)]
        merged = hdr.new_histogram()
        for s in twins:
            merged.add(s.histogram)
        return Series(
            name="total",
            method="ALL+CO",
            section="corrected",
            count=sum(s.count for s in twins),
            failures=sum(s.failures for s in twins),
            histogram=merged,
        )
    return run.series[key]


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
        "json": Path(json_path) if json_path else directory / VERDICT,
        "junit": Path(junit_path) if junit_path else directory / "junit.xml",
        "markdown": Path(markdown_path) if markdown_path else directory / "summary.md",
    }
    atomic_write(paths["json"], render_json(verdict))
    atomic_write(paths["junit"], render_junit(verdict))
    atomic_write(paths["markdown"], render_markdown(verdict))
    return paths


def with_abort_on_fail(objectives: Sequence[Objective]) -> tuple[Objective, ...]:
    """Every objective marked ``abort_on_fail`` (``run --abort-on-fail``)."""
    return tuple(replace(o, threshold=replace(o.threshold, abort_on_fail=True)) for o in objectives)


class LiveAbort:
    """Called with the run's folder while it runs: the reason to stop it, or None.

    Reads the results the master rewrites every ~5 s (only when ``summary.json`` changed) and
    checks the ``abort_on_fail`` objectives (all objectives with ``--abort-on-fail``).
    """

    def __init__(self, objectives: Sequence[Objective]) -> None:
        self.objectives = list(objectives)
        self._seen: float | None = None

    def __call__(self, run_dir: Path) -> str | None:
        try:
            mtime = (run_dir / SUMMARY).stat().st_mtime
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
