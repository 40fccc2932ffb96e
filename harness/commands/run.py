"""``portal-load run [CAMPAIGN] [flags]``: one campaign end to end, gated with ``--gate``.

``run --gate`` is a run and then the gate, composed here by calls: the gate's live check
(``abort_on_fail`` objectives) is passed into :func:`harness.run.command.run_campaign`, and
its outcome's folder is judged with :func:`harness.commands.gate.gate_run_folder`; the
report is drawn again with the verdict in it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.campaign.loader import load_campaign, project_defaults
from harness.commands.flags import Flag, add_flags, overrides
from harness.commands.gate import add_gate_options, gate_config, gate_overrides, gate_run_folder
from harness.errors import ExitCode, UsageError
from harness.gate.judge import LiveAbort, with_abort_on_fail
from harness.report.run_report import try_write_report
from harness.run.command import run_campaign

RUN_FLAGS = (
    Flag("--host", "campaign.host", "target base URL; default: the embedded mock portal"),
    Flag(
        "--allow-remote",
        "campaign.allow_remote",
        "allow a target outside loopback (prints what goes where first)",
        "switch",
    ),
    Flag("--duration", "campaign.duration", "run time, e.g. 90s, 5m"),
    Flag("--seed", "campaign.seed", "seed of every random choice of the journeys"),
    Flag(
        "--max-failure-ratio",
        "campaign.max_failure_ratio",
        "share of failed requests above which the run is flagged, e.g. 0.05 or 5%% (default)",
    ),
    Flag("--name", "campaign.name", "campaign name (part of the run id)"),
    Flag("--users", "load.users", "concurrent users (closed model)"),
    Flag("--spawn-rate", "load.spawn_rate", "users started per second"),
    Flag("--shape", "load.shape", "load shape: ramp, step, spike, soak, diurnal"),
    Flag("--arrival-rate", "load.arrival_rate", "visits per second (open model; a profile's peak)"),
    Flag("--arrival-shape", "load.arrival_shape", "arrival profile: constant, ramp, diurnal"),
    Flag(
        "--arrival-poisson",
        "load.poisson",
        "Poisson arrivals (open model; default: evenly spaced)",
        "switch",
    ),
    Flag("--open-pool-size", "load.pool_size", "most visits in flight per worker (0: 1000)"),
    Flag(
        "--open-connections",
        "load.connections",
        "keep-alive connections per worker (open model; 0: as many as --open-pool-size)",
    ),
    Flag("--think-scale", "load.think_scale", "multiplier of think times (1: real pace)"),
    Flag("--user-class", "load.user_classes", "user class (repeatable)", "list", "CLASS"),
    Flag(
        "--locustfile",
        "load.locustfile",
        "a locustfile of your own (HttpUser, FastHttpUser, PortalUser), then the classes "
        "to run (default: all of its classes)",
        "path+names",
        "PATH",
    ),
    Flag("--mfa-code", "load.mfa_code", "the second factor's fixed code (a mock's mfa_code)"),
    Flag("--accounts", "load.accounts", "CSV of test accounts: login,password[,totp_secret]"),
    Flag("--workers", "workers.count", "Locust worker processes (0: one per core)"),
    Flag(
        "--remote-workers",
        "workers.remote",
        "worker processes joining from other hosts (portal-load worker --master HOST:PORT)",
    ),
    Flag("--master-only", "workers.master_only", "no local workers (needs remote ones)", "switch"),
    Flag(
        "--master-bind",
        "workers.master_bind",
        "HOST[:PORT] the master listens on (default: loopback; outside it only with remote "
        "workers)",
    ),
    Flag("--join-timeout", "workers.join_timeout", "how long remote workers have to join"),
    Flag("--mock-workers", "workers.mock_workers", "processes of the embedded mock"),
    Flag("--mock-config", "workers.mock_config", "config file of the embedded mock"),
    Flag("--out", "output.dir", "results folder (default: results)"),
    Flag("--metrics-port", "output.metrics_port", "port of the load generator's /metrics"),
    Flag(
        "--prometheus",
        "output.prometheus",
        "run a real Prometheus scraping the mock and the load generator",
        "switch",
    ),
    Flag("--web", "output.web", "keep Locust's web UI open (its address is printed)", "switch"),
)


def _run(args: argparse.Namespace) -> int:
    gated = bool(args.gate or args.baseline or args.slo or args.abort_on_fail)
    campaign = load_campaign(
        args.campaign,
        [*overrides(args, RUN_FLAGS), *(gate_overrides(args) if gated else [])],
        defaults=project_defaults(Path.cwd()),
    )
    if not gated:
        return run_campaign(campaign, tty=False if args.no_tty else None).exit_code
    config = gate_config(campaign, args)
    if not config.objectives and not (args.baseline or config.baseline):
        raise UsageError("--gate: no [slo] in the campaign, no --slo and no --baseline")
    objectives = with_abort_on_fail(config.objectives) if args.abort_on_fail else config.objectives
    outcome = run_campaign(
        campaign, tty=False if args.no_tty else None, abort_check=LiveAbort(objectives)
    )
    gated_code = gate_run_folder(outcome.run_dir, config, args, outcome.run_dir.parent)
    try_write_report(outcome.run_dir, warn=lambda message: print(message, file=sys.stderr))
    if gated_code in (ExitCode.GATE_FAILED, ExitCode.UNDERPOWERED):
        return gated_code
    return outcome.exit_code


def add_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="run a load campaign (default: a short one against the embedded mock portal)"
    )
    run.add_argument("campaign", nargs="?", help="campaign file (TOML); flags override it")
    add_flags(run, RUN_FLAGS)
    run.add_argument("--no-tty", action="store_true", help="a plain line per interval")
    run.add_argument("--gate", action="store_true", help="gate the run at its end")
    run.add_argument(
        "--abort-on-fail", action="store_true", help="stop the run as soon as any SLO is breached"
    )
    add_gate_options(run)
    run.set_defaults(func=_run)
