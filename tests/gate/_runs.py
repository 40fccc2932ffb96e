"""Synthetic run folders and latency samples for the gate's tests (no load generator)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scenarios.telemetry import hdr

CAMPAIGN = """[campaign]
name = "{name}"
host = ""
duration = "60s"
seed = 1

[load]
users = {users}
spawn_rate = 20.0
think_scale = 1.0

[workers]
count = 1
mock_workers = 1
{extra}"""


def latency_ms(
    rng: np.random.Generator,
    n: int,
    *,
    median_ms: float = 40.0,
    slow_share: float = 0.03,
    scale: float = 1.0,
) -> np.ndarray:
    """A realistic request latency: a lognormal body and a slow lognormal tail."""
    body = rng.lognormal(np.log(median_ms), 0.35, n)
    tail = rng.lognormal(np.log(median_ms * 4.5), 0.6, n)
    return np.where(rng.random(n) < slow_share, tail, body) * scale


def write_run(
    path: Path,
    series: dict[tuple[str, str], np.ndarray],
    *,
    failures: dict[tuple[str, str], int] | None = None,
    journeys: dict[tuple[str, str], np.ndarray] | None = None,
    corrected: dict[tuple[str, str], np.ndarray] | None = None,
    name: str = "ci",
    users: int = 10,
    extra: str = "",
    status: str = "complete",
    duration_s: float = 60.0,
) -> Path:
    """A results folder with summary.json, histograms.json and campaign.toml."""
    failures = failures or {}
    path.mkdir(parents=True)
    total = hdr.new_histogram()
    entries: dict = {}
    rows: list = []
    jrows: list = []
    crows: list = []
    total_failures = 0
    sections = (("requests", series), ("journeys", journeys or {}), ("corrected", corrected or {}))
    for section, data in sections:
        for (rname, method), samples in data.items():
            h = hdr.new_histogram()
            for v in samples:
                hdr.record_ms(h, float(v))
            if section == "requests":
                total.add(h)
            entries[f"{method} {rname}"] = {
                "name": rname,
                "method": method,
                "section": section,
                "hdr": hdr.encode(h),
            }
            f = failures.get((rname, method), 0)
            total_failures += f if section == "requests" else 0
            row = {
                "name": rname,
                "method": method,
                "count": len(samples),
                "failures": f,
                **hdr.summarise(h).as_dict(),
            }
            {"requests": rows, "journeys": jrows, "corrected": crows}[section].append(row)
    count = sum(len(s) for s in series.values())
    summary = {
        "schema": 1,
        "run_id": path.name,
        "status": status,
        "final": True,
        "duration_s": duration_s,
        "requests": rows,
        "journeys": jrows,
        "corrected": crows,
        "total": {
            "name": "total",
            "method": "ALL",
            "count": count,
            "failures": total_failures,
            **hdr.summarise(total).as_dict(),
        },
    }
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "histograms.json").write_text(
        json.dumps({"schema": 1, "total": hdr.encode(total), "histograms": entries})
    )
    (path / "campaign.toml").write_text(CAMPAIGN.format(name=name, users=users, extra=extra))
    return path
