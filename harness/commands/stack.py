"""``portal-load stack up|status|down``: a standing Prometheus (:mod:`harness.observe.stack`).

Exit codes: 0 done (``status``: running), 3 ``status``: not running, 1 a harness error,
2 a usage error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ExitCode, HarnessError, PrometheusError, UsageError
from harness.observe.prometheus import LOADGEN_JOB, MOCK_JOB, PrometheusClient
from harness.observe.stack import (
    DEFAULT_MOCK_URL,
    DEFAULT_STATE_DIR,
    is_running,
    read_state,
    stack_down,
    stack_up,
)
from harness.units import parse_duration_s


def _mock_target(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise UsageError(f"--mock {url!r}: expected a URL like {DEFAULT_MOCK_URL}")
    if parts.path not in ("", "/"):
        raise UsageError(f"--mock {url!r}: give the mock's base URL; /metrics is scraped")
    return parts.netloc


def _loadgen_target(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--loadgen {address!r}: expected HOST:PORT, e.g. 127.0.0.1:9646")
    return address


def _targets(args: argparse.Namespace) -> dict[str, list[str]]:
    mocks = args.mock if args.mock is not None else [DEFAULT_MOCK_URL]
    return {
        MOCK_JOB: [_mock_target(url) for url in mocks if url],
        LOADGEN_JOB: [_loadgen_target(address) for address in args.loadgen or []],
    }


def _up(args: argparse.Namespace) -> int:
    state, started = stack_up(
        Path(args.state_dir),
        _targets(args),
        scrape_interval_s=args.scrape_interval,
        port=args.port,
    )
    verb = "started" if started else "already running, targets updated"
    print(f"Prometheus {verb}: {state.url}  (pid {state.pid}, data in {state['data_dir']})")
    for job, job_targets in sorted(state["targets"].items()):
        print(f"  {job}: {', '.join(job_targets) or '(none)'}")
    return ExitCode.OK


def _status(args: argparse.Namespace) -> int:
    state = read_state(Path(args.state_dir))
    if state is None or not is_running(state):
        print("Prometheus: not running")
        return ExitCode.NOT_RUNNING
    client = PrometheusClient(state.url)
    ready = "ready" if client.ready() else "not ready"
    print(f"Prometheus: running at {state.url} (pid {state.pid}, {ready})")
    try:
        targets = client.targets()
    except PrometheusError as exc:
        print(f"  targets: unknown ({exc})")
        return ExitCode.OK
    for job in sorted(state["targets"]):
        found = [t for t in targets if t.job == job]
        if not found:
            print(f"  {job}: no targets" if not state["targets"][job] else f"  {job}: pending")
        for t in sorted(found, key=lambda t: t.scrape_url):
            error = f"  {t.last_error}" if t.last_error else ""
            print(f"  {job}: {t.scrape_url} {t.health}{error}")
    return ExitCode.OK


def _down(args: argparse.Namespace) -> int:
    state = stack_down(Path(args.state_dir))
    print("Prometheus stopped" if state is not None else "Prometheus: not running")
    return ExitCode.OK


def _positive_seconds(text: str) -> float:
    try:
        return parse_duration_s(text, "--scrape-interval")
    except HarnessError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers: Any) -> None:
    """Register ``stack`` with its ``up``, ``status`` and ``down`` commands."""
    stack = subparsers.add_parser(
        "stack", help="a standing Prometheus (loopback) with the dashboards' configuration"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        default=str(DEFAULT_STATE_DIR),
        help=f"where its state, configuration and TSDB live (default {DEFAULT_STATE_DIR})",
    )
    sub = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", parents=[common], help="start Prometheus (or retarget it)")
    up.add_argument(
        "--mock",
        action="append",
        metavar="URL",
        help=f"a mock portal instance to scrape (repeatable; default {DEFAULT_MOCK_URL}; "
        "'' for none)",
    )
    up.add_argument(
        "--loadgen",
        action="append",
        metavar="HOST:PORT",
        help="a load generator's /metrics, e.g. portal-load run --metrics-port (repeatable)",
    )
    up.add_argument(
        "--scrape-interval",
        type=_positive_seconds,
        default=2.0,
        help="scrape and rule evaluation interval, e.g. 1s (default 2s)",
    )
    up.add_argument(
        "--port",
        type=int,
        default=0,
        help="loopback port to listen on; 0 (default) picks a free one; Grafana's provisioned "
        "datasource expects 9090",
    )
    up.set_defaults(func=_up)
    sub.add_parser("status", parents=[common], help="is it running; targets' health").set_defaults(
        func=_status
    )
    sub.add_parser("down", parents=[common], help="stop it (the TSDB is kept)").set_defaults(
        func=_down
    )
