"""``portal-load capacity`` and ``portal-load capacity-exporter``: the capacity search of a
deployment within its SLO (:mod:`harness.capacity.run`), and its figures for Prometheus
(:mod:`harness.capacity.export`)."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import IO, Any

from harness.campaign import Override, load_campaign
from harness.campaign.loader import project_defaults
from harness.capacity.export import DEFAULT_PORT, latest_capacity, make_server, metrics_text
from harness.capacity.run import run_capacity
from harness.commands.flags import Flag, add_flags, overrides
from harness.errors import ExitCode
from harness.report.run_report import try_write_report

CAPACITY_FLAGS = (
    Flag("--slo", "capacity.slo", 'the steps\' SLO, e.g. "p95 < 300ms, error_rate < 1%%"'),
    Flag(
        "--mode",
        "capacity.mode",
        "rate: arrival-rate steps, open model (default); users: concurrent-user steps",
    ),
    Flag("--start", "capacity.start_rps", "first rate (req/s) or users"),
    Flag("--step", "capacity.step_rps", "added per step (req/s or users)"),
    Flag("--max-rate", "capacity.max_rps", "highest rate to offer"),
    Flag("--max-steps", "capacity.max_steps", "most steps"),
    Flag("--settle", "capacity.settle", "time ignored at the start of each step (e.g. 2s)"),
    Flag("--window", "capacity.window", "2 s intervals that must agree, and are measured"),
    Flag("--max-hold", "capacity.max_hold", "longest hold of one step (e.g. 20s)"),
    Flag("--after-breach", "capacity.after_breach", "steps after a breach"),
    Flag("--probe-path", "capacity.probe_path", "GET path of each arrival"),
    Flag("--peak", "capacity.peak_rps", "target peak, req/s (the portal's 7,000)"),
    Flag("--headroom", "capacity.headroom", "share of SLO capacity kept free (0.3)"),
    Flag("--cores-per-instance", "capacity.cores_per_instance", "cores of one instance"),
    Flag("--host", "campaign.host", "target base URL; default: the embedded mock portal"),
    Flag("--allow-remote", "campaign.allow_remote", "allow a target off loopback", "switch"),
    Flag("--mock-config", "workers.mock_config", "config file of the embedded mock"),
    Flag("--workers", "workers.count", "Locust worker processes (0: one per core)"),
    Flag("--mock-workers", "workers.mock_workers", "processes of the embedded mock"),
    Flag("--out", "output.dir", "results folder (default: results)"),
    Flag("--seed", "campaign.seed", "seed recorded with the run"),
    Flag("--name", "campaign.name", "run name (part of the run id; default capacity)"),
)


def _capacity(args: argparse.Namespace) -> int:
    given = overrides(args, CAPACITY_FLAGS)
    defaults = project_defaults(Path.cwd())
    campaign = load_campaign(args.campaign, given, defaults=defaults)
    if campaign.name == "default":
        named = [*given, Override("campaign.name", "capacity", "")]
        campaign = load_campaign(args.campaign, named, defaults=defaults)
    outcome = run_capacity(campaign)
    if outcome.capacity is not None:
        report = try_write_report(outcome.run_dir, warn=lambda m: print(m, file=sys.stderr))
        _print_result(outcome.capacity, outcome.run_dir, report, sys.stdout)
    return outcome.exit_code


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


def _exporter(args: argparse.Namespace) -> int:
    root = Path(args.out)
    if args.once:
        print(metrics_text(latest_capacity(root)), end="")
        return ExitCode.OK
    server = make_server(root, args.host, args.port)
    print(
        f"portal-load: capacity figures of {root} at http://{args.host}:"
        f"{server.server_address[1]}/metrics (Ctrl-C stops)",
        flush=True,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "capacity",
        help="find the capacity within an SLO with arrival-rate steps, fit it, size the fleet",
    )
    p.add_argument("campaign", nargs="?", help="campaign file (TOML, with a [capacity] table)")
    add_flags(p, CAPACITY_FLAGS)
    p.set_defaults(func=_capacity)

    e = sub.add_parser(
        "capacity-exporter",
        help="serve the latest capacity run's figures to Prometheus (loadgen_capacity_*)",
    )
    e.add_argument("--out", default="results", help="results folder")
    e.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    e.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    e.add_argument("--once", action="store_true", help="print the exposition text and exit")
    e.set_defaults(func=_exporter)
