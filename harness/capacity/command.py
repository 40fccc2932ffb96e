"""``portal-load capacity``: how much load a deployment holds within its SLO, and how many
instances the national peak needs.

    portal-load capacity [CAMPAIGN] --slo "p95<300ms,errors<1%" --start 100 --step 100

Method (docs/capacity.md): arrival-rate steps with the open model, each held until steady
(:mod:`harness.capacity.search`), stopped after the SLO is breached or throughput stops growing;
then the analysis of :mod:`harness.capacity.analysis` (maximum throughput, capacity within the
SLO, knee, USL and latency fits, M/M/c theory for the embedded mock, fleet projection), written
to ``results/<run-id>/capacity.json`` with ``capacity.prom`` (:mod:`harness.capacity.export`)
and ``report.html``.

Options come from the campaign file's ``[capacity]`` table, then from flags::

    [capacity]
    slo = "p95<300ms,errors<1%"
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

import argparse
import dataclasses
import math
import signal
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import IO, Any

from harness.capacity import analysis as capacity_model
from harness.capacity.export import write_textfile
from harness.capacity.search import SearchPlan, StepController, describe, search, start_probe
from harness.errors import UsageError
from harness.report.run_report import try_write_report
from harness.results.folder import (
    CAMPAIGN,
    PROVENANCE,
    atomic_write,
    new_run_dir,
    provenance,
    write_json,
)
from harness.run.campaign import Campaign, check_target, convert, load_campaign

EXIT_PARTIAL = 3
EXIT_DEGRADED = 4
DEFAULT_SLO = "p95<300ms,errors<1%"
CPU_HIGH_PERCENT = 90.0  # a generator process above this measures itself, not the target
LATE_SHARE_HIGH = 0.05  # more late starts than this: the schedule was not kept
STOP_WAIT_S = 30.0

# [capacity] key -> (SearchPlan field or option, converter of harness.run.campaign)
_KEYS: dict[str, tuple[str, str]] = {
    "slo": ("slo", "str"),
    "start_rps": ("start_rps", "posfloat"),
    "step_rps": ("step_rps", "posfloat"),
    "max_rps": ("max_rps", "posfloat"),
    "max_steps": ("max_steps", "posint"),
    "settle": ("settle_s", "duration"),
    "window": ("window", "posint"),
    "max_hold": ("max_hold_s", "duration"),
    "after_breach": ("after_breach", "nonnegint"),
    "probe_path": ("probe_path", "str"),
    "peak_rps": ("peak_rps", "posfloat"),
    "headroom": ("headroom", "nonnegfloat"),
    "cores_per_instance": ("cores_per_instance", "posfloat"),
    "mode": ("mode", "mode"),
}
MODES = ("rate", "users")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CapacityOptions:
    plan: SearchPlan
    slo: str = DEFAULT_SLO
    peak_rps: float = capacity_model.DEFAULT_PEAK_RPS
    headroom: float = capacity_model.DEFAULT_HEADROOM
    cores_per_instance: float = 1.0


def _file_section(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # load_campaign reports the file's problems
    table = raw.get("capacity", {})
    if not isinstance(table, Mapping):
        raise UsageError(f"{path}: capacity: expected a table [capacity]")
    values = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise UsageError(
                f"{path}: capacity.{key}: unknown key; expected one of {', '.join(sorted(_KEYS))}"
            )
        field, kind = _KEYS[key]
        values[field] = _convert(kind, value, f"{path}: capacity.{key}")
    return values


def _convert(kind: str, value: Any, where: str) -> Any:
    if kind == "mode":
        if value not in MODES:
            raise UsageError(f"{where}: expected one of {', '.join(MODES)}, got {value!r}")
        return value
    return convert(kind, value, where)


def resolve_options(path: str | None, flags: Mapping[str, Any]) -> CapacityOptions:
    values = _file_section(path)
    for key, value in flags.items():
        if value is None:
            continue
        field, kind = _KEYS[key]
        values[field] = _convert(kind, value, f"--{key.replace('_', '-')}")
    plan_fields = {f.name for f in dataclasses.fields(SearchPlan)}
    plan = SearchPlan(**{k: v for k, v in values.items() if k in plan_fields})
    rest = {k: v for k, v in values.items() if k not in plan_fields}
    options = CapacityOptions(plan=plan, **rest)
    capacity_model.parse_slo(options.slo)
    if not 0 <= options.headroom < 1:
        raise UsageError("headroom: a share of capacity kept free, 0 <= headroom < 1 (e.g. 0.3)")
    if not options.plan.probe_path.startswith("/"):
        raise UsageError(
            f"probe_path: expected a path like /api/v1/services, got {plan.probe_path!r}"
        )
    return options


def _options_toml(o: CapacityOptions) -> str:
    p = o.plan
    return (
        "\n[capacity]\n"
        f'slo = "{o.slo}"\nstart_rps = {p.start_rps!r}\nstep_rps = {p.step_rps!r}\n'
        f'max_rps = {p.max_rps!r}\nmax_steps = {p.max_steps}\nsettle = "{p.settle_s:g}s"\n'
        f'window = {p.window}\nmax_hold = "{p.max_hold_s:g}s"\nafter_breach = {p.after_breach}\n'
        f'probe_path = "{p.probe_path}"\nmode = "{p.mode}"\n'
        f"peak_rps = {o.peak_rps!r}\nheadroom = {o.headroom!r}\n"
        f"cores_per_instance = {o.cores_per_instance!r}\n"
    )


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


def run_capacity(
    campaign: Campaign, options: CapacityOptions, *, out: IO[str] | None = None
) -> int:
    """Search, analyse, write; returns the exit code (see the module docstring)."""
    out = out or sys.stdout
    check_target(campaign)
    slo = capacity_model.parse_slo(options.slo)
    plan = options.plan
    run_id, run_dir = new_run_dir(Path(campaign.results_dir), campaign.name)
    atomic_write(run_dir / CAMPAIGN, campaign.to_toml() + _options_toml(options))
    write_json(run_dir / PROVENANCE, provenance(campaign.seed))
    print(f"portal-load: capacity run {run_id} -> {run_dir}", file=out, flush=True)
    print(f"portal-load: SLO {', '.join(t.text() for t in slo)}; GET {plan.probe_path}", file=out)
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
        return EXIT_PARTIAL if interrupted else 1
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
    write_json(run_dir / "capacity.json", _clean(capacity))
    write_textfile(run_dir, capacity)
    report = try_write_report(run_dir, warn=lambda m: print(m, file=out))
    _print_result(capacity, run_dir, report, out)
    if interrupted:
        return EXIT_PARTIAL
    return EXIT_DEGRADED if flags else 0


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


def _print_result(cap: dict[str, Any], run_dir: Path, report: Path | None, out: IO[str]) -> None:
    def rps(v: Any) -> str:
        return f"{v:,.0f} req/s" if isinstance(v, int | float) else "-"

    proj = cap["projection"]
    knee = cap["knee"]
    lines = [
        f"stopped: {cap['stop_reason']}",
        f"maximum throughput:   {rps(cap['max_rps'])}",
        f"capacity within SLO:  {rps(cap['slo_rps'])}",
        f"knee:                 {rps(knee.get('throughput_rps'))}",
    ]
    theory = cap.get("theory") or {}
    if theory.get("capacity_rps"):
        lines.append(
            f"theory (mock pool):   {rps(theory['capacity_rps'])} "
            f"(measured/theory {cap['max_rps'] / theory['capacity_rps']:.3f})"
        )
    usl = cap.get("usl")
    if usl:
        lines.append(
            f"USL: sigma {usl['sigma']:.4g} "
            f"[{usl['sigma_ci95'][0]:.3g}, {usl['sigma_ci95'][1]:.3g}]"
            f", kappa {usl['kappa']:.3g} [{usl['kappa_ci95'][0]:.3g}, {usl['kappa_ci95'][1]:.3g}]"
            f", R² {usl['r2']:.3f}"
        )
    if proj.get("instances"):
        lines.append(
            f"for {proj['target_rps']:,.0f} req/s with {proj['headroom']:.0%} headroom: "
            f"{proj['instances']} instances ({proj['cores']:g} cores), utilisation at the peak "
            f"{proj['utilisation_at_peak']:.0%}"
        )
    lines += [f"flag: {f}" for f in cap.get("flags") or []]
    lines.append(f"results: {run_dir / 'capacity.json'}")
    if report is not None:
        lines.append(f"report:  {report}")
    print("\n".join(lines), file=out, flush=True)


def _command(args: argparse.Namespace) -> int:
    campaign = load_campaign(
        args.campaign,
        host=args.host,
        allow_remote=True if args.allow_remote else None,
        workers=args.workers,
        mock_workers=args.mock_workers,
        results_dir=args.out,
        seed=args.seed,
        name=args.name,
    )
    if args.mock_config is not None:
        campaign = dataclasses.replace(campaign, mock_config=args.mock_config)
    if campaign.name == "default":
        campaign = dataclasses.replace(campaign, name="capacity")
    flags = {key: getattr(args, key) for key in _KEYS}
    for key in ("settle", "max_hold"):
        if flags[key] is not None:
            flags[key] = str(flags[key])
    options = resolve_options(args.campaign, flags)
    return run_capacity(campaign, options)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "capacity",
        help="find the capacity within an SLO with arrival-rate steps, fit it, size the fleet",
    )
    p.add_argument("campaign", nargs="?", help="campaign file (TOML, with a [capacity] table)")
    p.add_argument("--slo", help=f'objectives, e.g. "{DEFAULT_SLO}"')
    p.add_argument(
        "--mode",
        choices=MODES,
        help="rate: arrival-rate steps, open model (default); users: concurrent-user steps",
    )
    p.add_argument("--start", dest="start_rps", type=float, help="first rate (req/s) or users")
    p.add_argument("--step", dest="step_rps", type=float, help="added per step (req/s or users)")
    p.add_argument("--max-rate", dest="max_rps", type=float, help="highest rate to offer")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="most steps")
    p.add_argument("--settle", help="time ignored at the start of each step (e.g. 2s)")
    p.add_argument("--window", type=int, help="2 s intervals that must agree, and are measured")
    p.add_argument("--max-hold", dest="max_hold", help="longest hold of one step (e.g. 20s)")
    p.add_argument("--after-breach", dest="after_breach", type=int, help="steps after a breach")
    p.add_argument("--probe-path", dest="probe_path", help="GET path of each arrival")
    p.add_argument("--peak", dest="peak_rps", type=float, help="target peak, req/s (7000)")
    p.add_argument("--headroom", type=float, help="share of SLO capacity kept free (0.3)")
    p.add_argument("--cores-per-instance", dest="cores_per_instance", type=float)
    p.add_argument("--host", help="target base URL; default: the embedded mock portal")
    p.add_argument("--allow-remote", action="store_true", help="allow a target off loopback")
    p.add_argument("--mock-config", dest="mock_config", help="config file of the embedded mock")
    p.add_argument("--workers", type=int, help="Locust worker processes (0: one per core)")
    p.add_argument("--mock-workers", type=int, help="processes of the embedded mock")
    p.add_argument("--out", help="results folder (default: results)")
    p.add_argument("--seed", type=int, help="seed recorded with the run")
    p.add_argument("--name", help="run name (part of the run id; default capacity)")
    p.set_defaults(func=_command)
