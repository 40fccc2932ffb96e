"""``portal-load``: the command line of the harness.

Each subcommand lives in its own module and registers itself here; the CLI catches only
:class:`~harness.errors.HarnessError`, prints ``Type: message`` and exits with its code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from harness import package
from harness.errors import HarnessError

Command = Callable[[argparse.Namespace], int]

# Modules that add their own subcommands: each has ``add_parser(subparsers)`` and sets
# ``func`` on its parser (one concept, one module: the gate, capacity, reports, the stack).
EXTENSIONS: tuple[str, ...] = (
    "harness.capacity.command",
    "harness.capacity.export",
    "harness.gate.command",
    "harness.report.run_report",
    "harness.observe.stack",
    "harness.scaffold.command",
)


def _mock(args: argparse.Namespace) -> int:
    """Serve the mock portal in this process's place (it runs asyncio; the harness does not)."""
    argv = [sys.executable, "-m", "mock_portal", *args.mock_args]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process, no shell
    return 0  # pragma: no cover


def _run(args: argparse.Namespace) -> int:
    from harness.run.campaign import load_campaign
    from harness.run.command import run_campaign

    campaign = load_campaign(
        args.campaign,
        host=args.host,
        allow_remote=True if args.allow_remote else None,
        duration_s=args.duration,
        users=args.users,
        spawn_rate=args.spawn_rate,
        shape=args.shape,
        arrival_rate=args.arrival_rate,
        arrival_poisson=True if args.arrival_poisson else None,
        open_pool_size=args.open_pool_size,
        open_connections=args.open_connections,
        think_scale=args.think_scale,
        user_classes=args.user_class or None,
        workers=args.workers,
        mock_workers=args.mock_workers,
        results_dir=args.out,
        metrics_port=args.metrics_port,
        prometheus=True if args.prometheus else None,
        web=True if args.web else None,
        seed=args.seed,
        name=args.name,
    )
    return run_campaign(campaign, tty=False if args.no_tty else None)


def _worker(args: argparse.Namespace) -> int:
    """Join a master on another machine with Locust's own protocol (this process is replaced)."""
    from harness.run.processes import LOCUSTFILE

    host, _, port = args.master.partition(":")
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--worker",
        "--master-host",
        host,
        "--master-port",
        port or "5557",
    ]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process, no shell
    return 0  # pragma: no cover


def _runs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.errors import ResultsError
    from harness.results.folder import list_runs, read_summary

    for run_dir in list_runs(Path(args.out)):
        try:
            s = read_summary(run_dir)
        except ResultsError:
            print(f"{run_dir.name}  (no summary)")
            continue
        total = s.get("total") or {}
        print(
            f"{run_dir.name}  {s.get('status', '?'):9}  {s.get('duration_s', 0):6.0f} s  "
            f"{total.get('count', 0):>9} req  {total.get('rps', 0):8.1f} req/s  "
            f"p95 {total.get('p95_ms', 0):8.1f} ms  failures {total.get('failures', 0)}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.results.folder import read_summary, resolve_run
    from harness.run.summary import print_summary

    run_dir = resolve_run(Path(args.out), args.run)
    print_summary(read_summary(run_dir), run_dir, out=sys.stdout)
    return 0


def _add_run_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="run a load campaign (default: a short one against the embedded mock portal)"
    )
    run.add_argument("campaign", nargs="?", help="campaign file (TOML); flags override it")
    run.add_argument("--host", help="target base URL; default: the embedded mock portal")
    run.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a target outside loopback (prints what goes where first)",
    )
    run.add_argument("--duration", help="run time, e.g. 90s, 5m")
    run.add_argument("--users", type=int, help="concurrent users (closed model)")
    run.add_argument("--spawn-rate", type=float, help="users started per second")
    run.add_argument("--shape", help="load shape: ramp, step, spike, soak, diurnal")
    run.add_argument("--arrival-rate", type=float, help="visits per second (open model)")
    run.add_argument(
        "--arrival-poisson",
        action="store_true",
        help="Poisson arrivals (open model; default: evenly spaced)",
    )
    run.add_argument(
        "--open-pool-size",
        type=int,
        help="most visits in flight per worker (open model; 0: 1000)",
    )
    run.add_argument(
        "--open-connections",
        type=int,
        help="keep-alive connections per worker (open model; 0: as many as --open-pool-size)",
    )
    run.add_argument("--think-scale", type=float, help="multiplier of think times")
    run.add_argument("--user-class", action="append", help="user class (repeatable)")
    run.add_argument("--workers", type=int, help="Locust worker processes (0: one per core)")
    run.add_argument("--mock-workers", type=int, help="processes of the embedded mock")
    run.add_argument("--out", help="results folder (default: results)")
    run.add_argument("--metrics-port", type=int, help="port of the load generator's /metrics")
    run.add_argument(
        "--prometheus",
        action="store_true",
        help="run a real Prometheus scraping the mock and the load generator",
    )
    run.add_argument("--web", action="store_true", help="keep Locust's web UI open")
    run.add_argument("--seed", type=int, help="seed recorded with the run")
    run.add_argument("--name", help="campaign name (part of the run id)")
    run.add_argument("--no-tty", action="store_true", help="a plain line per interval")
    run.set_defaults(func=_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portal-load",
        description="Load-testing and performance harness for the public-services portal.",
    )
    parser.add_argument("--version", action="version", version=f"portal-load {package.version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mock = sub.add_parser(
        "mock",
        help="serve the mock portal (flags as python -m mock_portal --help)",
        add_help=False,
    )
    mock.add_argument("mock_args", nargs=argparse.REMAINDER)
    mock.set_defaults(func=_mock)
    _add_run_parser(sub)
    worker = sub.add_parser("worker", help="join a remote master with a Locust worker")
    worker.add_argument("--master", required=True, help="HOST[:PORT] of the master (port 5557)")
    worker.set_defaults(func=_worker)
    runs = sub.add_parser("runs", help="list past runs")
    runs.add_argument("--out", default="results", help="results folder")
    runs.set_defaults(func=_runs)
    show = sub.add_parser("show", help="print one run's summary")
    show.add_argument("run", help="run id, a unique prefix of it, latest, or a path")
    show.add_argument("--out", default="results", help="results folder")
    show.set_defaults(func=_show)
    for name in EXTENSIONS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "mock":
        args.mock_args = [*extra, *args.mock_args]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    func: Command = args.func
    try:
        return func(args)
    except HarnessError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
