"""A standing Prometheus with the committed configuration.

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
discovery rereads them within seconds.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from harness.errors import ProcessFailed, PrometheusError
from harness.observe.prometheus import PrometheusConfig, PrometheusServer, write_targets
from harness.system import process_exited, stop_process

__all__ = [
    "DEFAULT_STATE_DIR",
    "StackState",
    "is_running",
    "read_state",
    "stack_down",
    "stack_up",
]

#: Where the stack keeps its state, configuration, log and TSDB (``/var/`` is git-ignored).
DEFAULT_STATE_DIR = Path("var") / "stack"
STATE_FILE = "state.json"
#: ``make mock`` serves the mock here; the stack scrapes it unless told otherwise.
DEFAULT_MOCK_URL = "http://127.0.0.1:8080"


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


def is_running(state: StackState) -> bool:
    """Whether the recorded pid still runs *this* Prometheus (pids are reused)."""
    if process_exited(state.pid):
        return False
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    config = f"--config.file={Path(state['work_dir']) / 'prometheus.yml'}".encode()
    return config in cmdline


def stack_up(
    state_dir: Path,
    targets: dict[str, list[str]],
    *,
    scrape_interval_s: float = 2.0,
    port: int = 0,
) -> tuple[StackState, bool]:
    """Start the stack, or retarget the running one; returns (state, started)."""
    state = read_state(state_dir)
    if state is not None and is_running(state):
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
    running = is_running(state)
    if running and not stop_process(state.pid):
        raise ProcessFailed(f"Prometheus (pid {state.pid}) did not stop")
    _state_path(state_dir).unlink(missing_ok=True)
    return state if running else None
