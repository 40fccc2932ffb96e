"""A capacity run: how much load a deployment holds within its SLO, and how many instances
the national peak needs (``portal-load capacity``).

Method (docs/capacity.md): arrival-rate steps with the open model, each held until steady
(:mod:`harness.capacity.search`), stopped after the SLO is breached or throughput stops growing;
then the analysis of :mod:`harness.capacity.analysis` (maximum throughput, capacity within the
SLO, knee, USL and latency fits, M/M/c theory for the embedded mock, fleet projection), written
to ``results/<run-id>/capacity.json`` with ``capacity.prom`` (:mod:`harness.capacity.export`)
and ``report.html``.

Options come from the campaign file's ``[capacity]`` table, then from flags::

    [capacity]
    slo = ["p95 < 300ms", "error_rate < 1%"]   # or "p95<300ms,errors<1%"
    start_rps = 100          # first step
    step_rps = 100           # added per step
    max_rps = 5000           # never offer more
    max_steps = 30
    settle = "2s"            # ignored at the start of each step
    window = 3               # 2 s intervals that must agree (and are measured)
    max_hold = "20s"         # a step that is not steady by then is measured anyway
    after_breach = 1         # steps after the first SLO breach (to see the plateau)
    probe_path = "/api/v1/services"
    mode = "rate"            # or "users": steps of concurrent request loops (closed model)
    peak_rps = 7000          # the projection's target
    headroom = 0.3
    cores_per_instance = 1

Exit codes: 0 done, 4 done but the load generator may have been the bottleneck, 3
interrupted (whatever was measured is still analysed and written), 1/2 errors.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from harness.campaign import Campaign, check_target
from harness.capacity import analysis as capacity_model
from harness.capacity.export import write_textfile
from harness.capacity.search import StepController, describe, search, start_probe
from harness.errors import ExitCode, UsageError
from harness.results.folder import (
    CAMPAIGN,
    CAPACITY,
    PROVENANCE,
    atomic_write,
    new_run_dir,
    provenance,
    write_json,
)

CPU_HIGH_PERCENT = 90.0  # a generator process above this measures itself, not the target
LATE_SHARE_HIGH = 0.05  # more late starts than this: the schedule was not kept
STOP_WAIT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class CapacityOutcome:
    """What a capacity run left: its folder, ``capacity.json``'s content (None when no step
    was measured) and the exit code."""

    run_dir: Path
    capacity: dict[str, Any] | None
    exit_code: ExitCode


def generator_flags(steps: list[dict[str, Any]]) -> list[str]:
    """Signs that the load generator, not the target, limited a step before the SLO broke."""
    flags = []
    for s in steps:
        if not s.get("within_slo"):
            break
        cpu = float(s.get("worker_cpu_max", math.nan))
        if math.isfinite(cpu) and cpu > CPU_HIGH_PERCENT:
            flags.append(f"at {describe(s)} a load generator worker was at {cpu:.0f} % CPU")
        requests = float(s.get("requests", 0)) or 1.0
        if float(s.get("late", 0)) / requests > LATE_SHARE_HIGH or float(s.get("dropped", 0)):
            flags.append(
                f"at {describe(s)} the generator started requests late or dropped "
                "them: the offered rate was not kept"
            )
    return flags


def _print_step(step: dict[str, Any], out: IO[str]) -> None:
    print(
        f"  {describe(step):>14}  served {step['throughput_rps']:8.1f} req/s  "
        f"mean {step['mean_ms']:8.1f} ms  p95 {step['p95_ms']:8.1f} ms  "
        f"errors {step['error_ratio'] * 100:5.2f} %  "
        f"{'steady' if step['steady'] else 'unsteady'}  "
        f"{'within SLO' if step['within_slo'] else 'SLO BREACHED'}",
        file=out,
        flush=True,
    )


def run_capacity(campaign: Campaign, *, out: IO[str] | None = None) -> CapacityOutcome:
    """Search, analyse, write ``capacity.json``; see the module docstring."""
    out = out or sys.stdout
    check_target(campaign.host, campaign.allow_remote)
    if campaign.remote_workers or campaign.master_only:
        raise UsageError(
            "workers.remote: a capacity search steps its load on local workers only "
            "(remote workers are for portal-load run)"
        )
    options = campaign.capacity
    slo = options.slo
    plan = options.plan
    run_id, run_dir = new_run_dir(Path(campaign.results_dir), campaign.name)
    atomic_write(run_dir / CAMPAIGN, campaign.to_toml())
    write_json(run_dir / PROVENANCE, provenance(campaign.seed))
    print(f"portal-load: capacity run {run_id} -> {run_dir}", file=out, flush=True)
    print(f"portal-load: SLO {', '.join(t.text for t in slo)}; GET {plan.probe_path}", file=out)
    max_run_s = plan.max_steps * (plan.settle_s + plan.max_hold_s + 6.0) + 60.0
    procs = start_probe(
        run_dir,
        host=campaign.host,
        mock_config=campaign.mock_config,
        mock_workers=campaign.mock_workers,
        workers=campaign.worker_count(),
        plan=plan,
        control_path=run_dir / "probe-control.json",
        max_run_s=max_run_s,
        seed=campaign.seed,
        allow_remote=campaign.allow_remote,
    )
    assert procs.master is not None
    controller = StepController(run_dir / "probe-control.json", procs.metrics_url, plan)
    steps: list[dict[str, Any]] = []  # kept as they come, so an interruption loses none

    def on_step(step: dict[str, Any]) -> None:
        steps.append(step)
        _print_step(step, out)

    interrupted = False
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        _, reason = search(
            controller, plan, lambda s: capacity_model.within(slo, s), procs.master.alive, on_step
        )
    except KeyboardInterrupt:
        interrupted, reason = True, "interrupted"
    finally:
        signal.signal(signal.SIGTERM, previous)
        controller.set_load(0.0, stop=True)
        procs.master.wait(STOP_WAIT_S)
        procs.stop()
    if not steps:
        print("portal-load: no step was measured", file=out)
        code = ExitCode.PARTIAL if interrupted else ExitCode.ERROR
        return CapacityOutcome(run_dir=run_dir, capacity=None, exit_code=code)
    pool = (
        capacity_model.mock_pool(campaign.mock_config, plan.probe_path, campaign.mock_workers)
        if campaign.embedded
        else None
    )
    analysis = capacity_model.analyse(
        steps,
        slo=slo,
        peak_rps=options.peak_rps,
        headroom=options.headroom,
        cores_per_instance=options.cores_per_instance,
        pool=pool,
        mode=plan.mode,
    )
    flags = generator_flags(steps)
    capacity = {
        "schema": capacity_model.SCHEMA,
        "run_id": run_id,
        "kind": "capacity",
        "target": procs.host if not campaign.embedded else "embedded mock",
        "finished_unix_s": time.time(),
        "plan": dataclasses.asdict(plan),
        "stop_reason": reason,
        "steps": steps,
        "flags": flags,
        **analysis,
    }
    write_json(run_dir / CAPACITY, _clean(capacity))
    write_textfile(run_dir, capacity)
    code = ExitCode.DEGRADED if flags else ExitCode.OK
    return CapacityOutcome(
        run_dir=run_dir, capacity=capacity, exit_code=ExitCode.PARTIAL if interrupted else code
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the search as Ctrl-C does: children stopped, what was measured kept."""
    raise KeyboardInterrupt


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
