"""The durable path: ``results/<run-id>/`` folders, written atomically, read back by every
later stage (summary, gate, capacity, report). See ``docs/results-format.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import socket
from pathlib import Path
from typing import Any

from harness.errors import ResultsError
from scenarios.hosts import git_revision, package_versions
from scenarios.telemetry.results import (
    FAILURES_CSV,
    HISTOGRAMS_JSON,
    SUMMARY_JSON,
    TIMESERIES_CSV,
)
from scenarios.telemetry.results import atomic_write as write_bytes

# The files of a run folder: those the load generator writes, under its own names...
SUMMARY = SUMMARY_JSON
HISTOGRAMS = HISTOGRAMS_JSON
TIMESERIES = TIMESERIES_CSV
FAILURES = FAILURES_CSV
# ... and the harness's.
CAMPAIGN = "campaign.toml"
PROVENANCE = "provenance.json"
REPORT = "report.html"
CAPACITY = "capacity.json"
GATE_DIR = "gate"  # the gate's verdict.json, junit.xml and summary.md
VERDICT = "verdict.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file so that a reader sees the old or the new content, never a part: the load
    generator's own writer (fsync-ed temporary file, mode 0644, rename, folder fsync-ed), so
    every file of a run folder is written one way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def new_run_dir(root: Path, name: str) -> tuple[str, Path]:
    """A new folder ``<root>/<stamp>-<name>``, as an absolute path: the run's children work
    in the repository's folder, not in the folder the command was given in."""
    root = root.absolute()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{_SAFE.sub('-', name).strip('-') or 'run'}"
    for i in range(1000):
        run_id = base if i == 0 else f"{base}-{i}"
        path = root / run_id
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ResultsError(f"{root}: cannot create a run folder there: {exc.strerror}") from None
        return run_id, path
    raise ResultsError(f"cannot create a run folder under {root}")


def provenance(seed: int) -> dict[str, Any]:
    """Where and with what a run ran, so a figure can be traced and reproduced."""
    return {
        "git": git_revision(),
        "packages": package_versions(),
        "host": socket.gethostname(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": seed,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def resolve_run(root: Path, run: str) -> Path:
    """A run folder from an id, a unique id prefix, ``latest``, or a path."""
    path = Path(run)
    if path.is_dir():
        return path
    if run == "latest":
        runs = list_runs(root)
        if not runs:
            raise ResultsError(f"no runs under {root}")
        return runs[-1]
    matches = [p for p in list_runs(root) if p.name.startswith(run)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ResultsError(f"no run {run!r} under {root}")
    raise ResultsError(f"{run!r} matches {len(matches)} runs; give more of the id")


def list_runs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / CAMPAIGN).exists())


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SUMMARY
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing (the load generator wrote no results)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable: {exc}") from None
    if not isinstance(value, dict):
        raise ResultsError(f"{path}: not a JSON object")
    return value
