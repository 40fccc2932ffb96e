"""The results folder of one run, ``results/<run-id>/``: writing and reading it.

The Locust master (or the single local process) writes, each atomically (a temporary file in
the same folder, ``fsync``, ``os.replace``), in this order, ``summary.json`` last:

- ``histograms.json``: every request key's cumulative HDR histogram (base64, mergeable);
- ``timeseries.csv``: one row per interval (HTTP requests only);
- ``failures.csv``: failure counts per request key and reason;
- ``summary.json``: schema-versioned statistics and the run's status.

They are written when a test starts, after every interval the workers report while it runs,
on every report near its end (so a killed master still leaves complete, parseable files,
marked ``partial``, that lack a second or two), and when it ends. ``covers_until_unix_s``
says up to when the files hold every worker's reports; a summary written while the test
runs ends there (``end_unix_s``, ``duration_s``) and claims nothing after it.
``docs/results-format.md`` describes every field.

Pure (no Locust, no gevent): the harness imports :func:`read_summary`,
:func:`read_histograms` and :func:`read_csv` to read a run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from scenarios.telemetry import hdr
from scenarios.telemetry.aggregate import RunAggregator
from scenarios.telemetry.recorder import section_of

__all__ = [
    "FAILURES_CSV",
    "FAILURES_FIELDS",
    "HISTOGRAMS_JSON",
    "METRICS_PORT_FILE",
    "SCHEMA_VERSION",
    "SUMMARY_JSON",
    "TIMESERIES_CSV",
    "TIMESERIES_FIELDS",
    "atomic_write",
    "build_histograms",
    "build_summary",
    "read_csv",
    "read_histograms",
    "read_summary",
    "write_results",
]

SCHEMA_VERSION = 1
SUMMARY_JSON = "summary.json"
HISTOGRAMS_JSON = "histograms.json"
TIMESERIES_CSV = "timeseries.csv"
FAILURES_CSV = "failures.csv"
METRICS_PORT_FILE = "metrics_port"
# mkstemp creates files only their owner can read; results are for the whole team.
FILE_MODE = 0o644

TIMESERIES_FIELDS = (
    "interval_start_unix_s",
    "duration_s",
    "requests",
    "failures",
    "rps",
    "failures_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "users",
    "workers",
    "p50_co_ms",
    "p95_co_ms",
    "p99_co_ms",
)
FAILURES_FIELDS = ("section", "name", "method", "reason", "count")


# -- atomic files ----------------------------------------------------------------------------
def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never half.

    The bytes go to a temporary file in the same folder (same file system, so ``os.replace``
    is atomic), are flushed and ``fsync``-ed, then renamed over ``path``; the folder is
    ``fsync``-ed so the rename itself survives a crash.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _csv_bytes(fields: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


# -- summary.json ----------------------------------------------------------------------------
def _iso(unix_s: float | None) -> str | None:
    if unix_s is None:
        return None
    return datetime.fromtimestamp(unix_s, tz=UTC).isoformat(timespec="milliseconds")


def _row(
    name: str,
    method: str,
    histogram: HdrHistogram,
    failures: dict[str, int],
    duration_s: float,
) -> dict[str, Any]:
    stats = hdr.summarise(histogram)
    failed = sum(failures.values())
    return {
        "name": name,
        "method": method,
        **stats.as_dict(),
        "failures": failed,
        "failures_by_reason": failures,
        "failure_ratio": round(failed / stats.count, 6) if stats.count else 0.0,
        "rps": round(stats.count / duration_s, 3) if duration_s > 0 else 0.0,
    }


def _section(agg: RunAggregator, section: str, duration_s: float) -> list[dict[str, Any]]:
    return [
        _row(name, method, agg.histograms[(name, method)], agg.failures_of((name, method)),
             duration_s)
        for name, method in agg.section_keys(section)
    ]  # fmt: skip


def build_summary(
    agg: RunAggregator,
    *,
    run_id: str,
    final: bool,
    written_s: float | None = None,
    locust_stats: dict[str, int] | None = None,
) -> dict[str, Any]:
    """``summary.json`` as a dict (see ``docs/results-format.md``)."""
    written_s = time.time() if written_s is None else written_s
    covers_s = agg.covered_to_s()
    end_s = agg.end_s()
    if agg.stop_s is None and covers_s is not None:
        end_s = covers_s  # written while the test runs: no claim beyond the merged reports
    duration_s = max(end_s - agg.start_s, 0.0) if end_s is not None and agg.start_s else 0.0
    requests = _section(agg, "requests", duration_s)
    total_failures: dict[str, int] = {}
    for row in requests:
        for reason, count in row["failures_by_reason"].items():
            total_failures[reason] = total_failures.get(reason, 0) + count
    total = _row("total", "ALL", agg.total_histogram("requests"), total_failures, duration_s)
    corrected = _section(agg, "corrected", duration_s)
    # The open model's HTTP twins together: the total's latency as citizens arriving on
    # schedule would have seen it (failures are the service-time rows').
    corrected_total = (
        _row("total", "ALL+CO", agg.total_histogram("corrected"), {}, duration_s)
        if corrected
        else None
    )
    workers = [
        {
            "id": w.id,
            "index": w.index,
            "state": w.state,
            "reports": w.reports,
            "requests": w.requests,
            "users_last": w.users,
            "cpu_percent_max": round(w.cpu_max, 1),
            "cpu_percent_mean": round(w.cpu_mean, 1),
            "cpu_high": w.cpu_high,
            "loop_lag_max_s": round(w.loop_lag_max_s, 4),
            "first_report_unix_s": w.first_report_s,
            "last_report_unix_s": w.last_report_s,
        }
        for w in sorted(agg.workers.values(), key=lambda w: (w.index is None, w.index, w.id))
    ]
    flags = []
    if agg.cpu_high():
        flags.append("loadgen_cpu_high")
    if agg.degraded:
        flags.append("worker_lost")
    if agg.rejected_reports:
        flags.append("reports_rejected")
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "status": agg.status(),
        "final": final,
        "interrupted": agg.interrupted,
        "mode": agg.mode,
        "start_unix_s": agg.start_s,
        "end_unix_s": end_s,
        "start_time": _iso(agg.start_s),
        "end_time": _iso(end_s),
        "duration_s": round(duration_s, 3),
        "written_unix_s": written_s,
        "covers_until_unix_s": covers_s,
        "interval_s": agg.interval_s,
        "users": {"max": agg.users_max, "last": agg.users_last},
        "workers": {
            "count": agg.workers_max,
            "last": agg.workers_last,
            "reported": len(agg.workers),
            "per_worker": workers,
        },
        "master": {"cpu_percent_max": round(agg.master_cpu_max, 1)},
        "degraded": [
            {"worker": e.worker, "index": e.index, "at_unix_s": e.at_s, "reason": e.reason}
            for e in agg.degraded
        ],
        "flags": flags,
        "histogram": {
            "unit": "us",
            "lowest_us": hdr.LOWEST_US,
            "highest_us": hdr.HIGHEST_US,
            "significant_figures": hdr.SIGNIFICANT_FIGURES,
        },
        "requests": requests,
        "total": total,
        "journeys": _section(agg, "journeys", duration_s),
        "corrected": corrected,
        "corrected_total": corrected_total,
        "open_model": agg.open_model(),
        "locust_stats": locust_stats,
        "rejected_reports": agg.rejected_reports,
    }


# -- the other files ---------------------------------------------------------------------------
def build_histograms(agg: RunAggregator) -> dict[str, Any]:
    """``histograms.json``: ``"METHOD name"`` -> ``{name, method, section, hdr}``."""
    entries = {
        f"{method} {name}": {
            "name": name,
            "method": method,
            "section": section_of(method),
            "hdr": hdr.encode(histogram),
        }
        for (name, method), histogram in sorted(agg.histograms.items())
    }
    return {
        "schema": SCHEMA_VERSION,
        "unit": "us",
        "lowest_us": hdr.LOWEST_US,
        "highest_us": hdr.HIGHEST_US,
        "significant_figures": hdr.SIGNIFICANT_FIGURES,
        "total": hdr.encode(agg.total_histogram("requests")),
        "histograms": entries,
    }


def _timeseries_rows(agg: RunAggregator) -> list[dict[str, Any]]:
    rows = []
    for _, row in sorted(agg.rows.items()):
        p50, p95, p99 = row.percentiles_ms()
        corrected = row.corrected_percentiles_ms()
        duration = row.duration_s
        rows.append(
            {
                "interval_start_unix_s": round(row.start_s, 3),
                "duration_s": round(duration, 3),
                "requests": row.requests,
                "failures": row.failures,
                "rps": round(row.requests / duration, 3),
                "failures_per_s": round(row.failures / duration, 3),
                "p50_ms": round(p50, 3),
                "p95_ms": round(p95, 3),
                "p99_ms": round(p99, 3),
                "users": "" if row.users is None else row.users,
                "workers": "" if row.workers is None else row.workers,
                **{
                    f"p{q}_co_ms": "" if corrected is None else round(value, 3)
                    for q, value in zip((50, 95, 99), corrected or (0, 0, 0), strict=True)
                },
            }
        )
    return rows


def _failure_rows(agg: RunAggregator) -> list[dict[str, Any]]:
    return [
        {"section": section_of(method), "name": name, "method": method, "reason": reason,
         "count": count}
        for (name, method, reason), count in sorted(agg.failures.items())
    ]  # fmt: skip


def write_results(
    directory: Path,
    agg: RunAggregator,
    *,
    final: bool,
    locust_stats: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Write all four files into ``directory`` (created if needed); returns the summary."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / HISTOGRAMS_JSON, _json_bytes(build_histograms(agg)))
    atomic_write(directory / TIMESERIES_CSV, _csv_bytes(TIMESERIES_FIELDS, _timeseries_rows(agg)))
    atomic_write(directory / FAILURES_CSV, _csv_bytes(FAILURES_FIELDS, _failure_rows(agg)))
    summary = build_summary(
        agg, run_id=directory.resolve().name, final=final, locust_stats=locust_stats
    )
    atomic_write(directory / SUMMARY_JSON, _json_bytes(summary))
    return summary


# -- reading -----------------------------------------------------------------------------------
def read_summary(directory: Path) -> dict[str, Any]:
    """``summary.json``; ``ValueError`` if its schema is not one this code understands."""
    summary: dict[str, Any] = json.loads((Path(directory) / SUMMARY_JSON).read_text())
    if summary.get("schema") != SCHEMA_VERSION:
        raise ValueError(
            f"{directory}/{SUMMARY_JSON} has schema {summary.get('schema')!r}; "
            f"this reader understands schema {SCHEMA_VERSION}"
        )
    return summary


def read_histograms(directory: Path) -> dict[tuple[str, str], HdrHistogram]:
    """``histograms.json`` decoded: ``(name, method)`` -> histogram (values in µs)."""
    document = json.loads((Path(directory) / HISTOGRAMS_JSON).read_text())
    if document.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"{directory}/{HISTOGRAMS_JSON} has schema {document.get('schema')!r}")
    return {
        (entry["name"], entry["method"]): hdr.decode(entry["hdr"])
        for entry in document["histograms"].values()
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))
