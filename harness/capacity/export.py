"""Measured capacity for Prometheus: the capacity dashboard's ``loadgen_capacity_*`` series.

A capacity search ends once, but the dashboard compares its result with live load for as long
as the deployment runs. So the figures of ``capacity.json`` are published two ways, both
plain text in Prometheus' exposition format:

- ``results/<run-id>/capacity.prom``, written with ``capacity.json`` (node_exporter's
  textfile-collector format: copy or link it into its directory);
- ``portal-load capacity-exporter``: a small HTTP server on loopback whose ``/metrics``
  re-reads the latest ``capacity.json`` under the results folder on every scrape, so a new
  capacity run shows up without a restart. Add it as a scrape job::

      - job_name: loadgen_capacity
        static_configs: [{targets: ["127.0.0.1:9478"]}]

Series (gauges; labels ``run_id`` and ``probe``): ``loadgen_capacity_max_rps``,
``loadgen_capacity_slo_rps``, ``loadgen_capacity_knee_rps``, ``loadgen_capacity_target_rps``,
``loadgen_capacity_instances_needed``, ``loadgen_capacity_usl_sigma``,
``loadgen_capacity_usl_kappa``, and ``loadgen_capacity_measured_timestamp_seconds``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.results.folder import CAPACITY, atomic_write, list_runs

TEXTFILE = "capacity.prom"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PORT = 9478

_SERIES: tuple[tuple[str, str, Callable[[Mapping[str, Any]], Any]], ...] = (
    (
        "loadgen_capacity_max_rps",
        "Highest throughput the capacity search measured (req/s).",
        lambda c: c.get("max_rps"),
    ),
    (
        "loadgen_capacity_slo_rps",
        "Highest throughput measured within the SLO (req/s).",
        lambda c: c.get("slo_rps"),
    ),
    (
        "loadgen_capacity_knee_rps",
        "Throughput at the knee of the latency curve (req/s).",
        lambda c: (c.get("knee") or {}).get("throughput_rps"),
    ),
    (
        "loadgen_capacity_target_rps",
        "Target peak the projection sizes for (req/s).",
        lambda c: (c.get("projection") or {}).get("target_rps"),
    ),
    (
        "loadgen_capacity_instances_needed",
        "Instances needed for the target peak with headroom.",
        lambda c: (c.get("projection") or {}).get("instances"),
    ),
    (
        "loadgen_capacity_usl_sigma",
        "USL contention coefficient sigma.",
        lambda c: (c.get("usl") or {}).get("sigma"),
    ),
    (
        "loadgen_capacity_usl_kappa",
        "USL coherency coefficient kappa.",
        lambda c: (c.get("usl") or {}).get("kappa"),
    ),
    (
        "loadgen_capacity_measured_timestamp_seconds",
        "When the capacity search ended (Unix s).",
        lambda c: c.get("finished_unix_s"),
    ),
)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(capacity: Mapping[str, Any] | None) -> str:
    """The exposition text of one ``capacity.json`` (empty families when there is none)."""
    lines = []
    labels = ""
    if capacity is not None:
        probe = (capacity.get("plan") or {}).get("probe_path", "")
        labels = f'{{run_id="{_label(capacity.get("run_id", ""))}",probe="{_label(probe)}"}}'
    for name, help_text, get in _SERIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        if capacity is None:
            continue
        value = get(capacity)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            lines.append(f"{name}{labels} {float(value)!r}")
    return "\n".join(lines) + "\n"


def write_textfile(run_dir: Path, capacity: Mapping[str, Any]) -> Path:
    path = run_dir / TEXTFILE
    atomic_write(path, metrics_text(capacity))
    return path


def latest_capacity(root: Path) -> dict[str, Any] | None:
    """The newest run under ``root`` with a readable ``capacity.json``."""
    for run_dir in reversed(list_runs(root)):
        try:
            value = json.loads((run_dir / CAPACITY).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(value, dict):
            return value
    return None


def make_server(root: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server whose ``/metrics`` serves :func:`metrics_text` of the latest run."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics here")
                return
            body = metrics_text(latest_capacity(root)).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)
