"""``portal-load stack up|down|status``: a standing Prometheus with the committed configuration.

``portal-load run --prometheus`` keeps a Prometheus for one run. The stack is for everything
else: a mock started with ``make mock``, a campaign run with a fixed ``--metrics-port``, a
Grafana on a machine that has one. ``up`` starts Debian's ``prometheus`` on loopback with
``dashboards/prometheus/`` (rules included), detached so that it outlives the command, and
records it in ``<state-dir>/state.json`` (default ``var/stack/``, beside its rendered
configuration, log and TSDB)::

    portal-load stack up --mock http://127.0.0.1:8080 --loadgen 127.0.0.1:9646
    portal-load stack status      # running or not, and each target's health
    portal-load stack down        # stop it (the TSDB is kept)

``up`` on a running stack rewrites its targets instead of starting another (file-based
discovery rereads them within seconds). Exit codes: 0 done (``status``: running),
3 ``status``: not running, 1 a harness error, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import HarnessError, ProcessFailed, UsageError
from harness.observe.prometheus import (
    PrometheusClient,
    PrometheusConfig,
    PrometheusError,
    PrometheusServer,
    process_exited,
    stop_process,
    write_targets,
)

__all__ = ["DEFAULT_STATE_DIR", "StackState", "add_parser", "read_state", "stack_down", "stack_up"]

#: Where the stack keeps its state, configuration, log and TSDB (``/var/`` is git-ignored).
DEFAULT_STATE_DIR = Path("var") / "stack"
STATE_FILE = "state.json"
#: Scrape jobs of dashboards/prometheus/prometheus.yml.
MOCK_JOB = "mock_portal"
LOADGEN_JOB = "loadgen"
#: ``make mock`` serves the mock here; the stack scrapes it unless told otherwise.
DEFAULT_MOCK_URL = "http://127.0.0.1:8080"
#: Exit code of ``status`` when nothing runs (as an init script's ``status``).
EXIT_NOT_RUNNING = 3


class StackState(dict[str, Any]):
    """``state.json``: pid, port, url, work_dir, data_dir, targets, started_unix_s."""

    @property
    def pid(self) -> int:
        return int(self["pid"])

    @property
    def url(self) -> str:
        return str(self["url"])


def _state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> StackState | None:
    """The recorded stack, or None when none was recorded (or the record is unreadable)."""
    try:
        raw = json.loads(_state_path(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("pid"), int):
        return None
    return StackState(raw)


def _write_state(state_dir: Path, state: StackState) -> None:
    path = _state_path(state_dir)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _is_our_prometheus(state: StackState) -> bool:
    """Whether the recorded pid still runs *this* Prometheus (pids are reused)."""
    if process_exited(state.pid):
        return False
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    config = f"--config.file={Path(state['work_dir']) / 'prometheus.yml'}".encode()
    return config in cmdline


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


def stack_up(
    state_dir: Path,
    targets: dict[str, list[str]],
    *,
    scrape_interval_s: float = 2.0,
    port: int = 0,
) -> tuple[StackState, bool]:
    """Start the stack, or retarget the running one; returns (state, started)."""
    state = read_state(state_dir)
    if state is not None and _is_our_prometheus(state):
        for job, job_targets in targets.items():
            write_targets(Path(state["work_dir"]), job, job_targets)
        state["targets"] = targets
        _write_state(state_dir, state)
        return state, False
    state_dir.mkdir(parents=True, exist_ok=True)
    work_dir = (state_dir / "prometheus").resolve()
    config = PrometheusConfig(
        targets=targets,
        scrape_interval_s=scrape_interval_s,
        work_dir=work_dir,
        data_dir=work_dir / "data",
        port=port,
        detach=True,
    )
    server = PrometheusServer(config)
    try:
        server.start()
    except PrometheusError as exc:
        raise ProcessFailed(f"Prometheus did not start: {exc}") from exc
    state = StackState(
        pid=server.pid,
        port=server.port,
        url=server.url,
        work_dir=str(work_dir),
        data_dir=str(work_dir / "data"),
        log=str(server.log_path),
        scrape_interval_s=scrape_interval_s,
        targets=targets,
        started_unix_s=round(time.time(), 3),
    )
    server.detach()
    _write_state(state_dir, state)
    return state, True


def stack_down(state_dir: Path) -> StackState | None:
    """Stop the recorded stack; returns what was stopped, None when nothing ran."""
    state = read_state(state_dir)
    if state is None:
        return None
    running = _is_our_prometheus(state)
    if running and not stop_process(state.pid):
        raise ProcessFailed(f"Prometheus (pid {state.pid}) did not stop")
    _state_path(state_dir).unlink(missing_ok=True)
    return state if running else None


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
    return 0


def _status(args: argparse.Namespace) -> int:
    state = read_state(Path(args.state_dir))
    if state is None or not _is_our_prometheus(state):
        print("Prometheus: not running")
        return EXIT_NOT_RUNNING
    client = PrometheusClient(state.url)
    ready = "ready" if client.ready() else "not ready"
    print(f"Prometheus: running at {state.url} (pid {state.pid}, {ready})")
    try:
        targets = client.targets()
    except PrometheusError as exc:
        print(f"  targets: unknown ({exc})")
        return 0
    for job in sorted(state["targets"]):
        found = [t for t in targets if t.job == job]
        if not found:
            print(f"  {job}: no targets" if not state["targets"][job] else f"  {job}: pending")
        for t in sorted(found, key=lambda t: t.scrape_url):
            error = f"  {t.last_error}" if t.last_error else ""
            print(f"  {job}: {t.scrape_url} {t.health}{error}")
    return 0


def _down(args: argparse.Namespace) -> int:
    state = stack_down(Path(args.state_dir))
    print("Prometheus stopped" if state is not None else "Prometheus: not running")
    return 0


def _positive_seconds(text: str) -> float:
    from harness.run.campaign import parse_duration

    try:
        return parse_duration(text, "--scrape-interval")
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
