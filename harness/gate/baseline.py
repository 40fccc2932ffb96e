"""Runs and baselines as the gate reads them, and ``portal-load baseline save RUN NAME``.

A baseline is one compact file, ``results/baselines/NAME/baseline.json``, meant to be committed:
the run's request counts and failures, its HDR histograms (base64, a few kB per request name),
the campaign as run and where it came from. The gate reads a run folder and a baseline the
same way, as a :class:`RunData`, and refuses to compare two runs whose campaigns differ in
anything that shapes the load (:data:`SHAPE_KEYS`) unless told to (``--force``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.errors import ResultsError, UsageError
from harness.results import histograms as hdr
from harness.results.folder import (
    CAMPAIGN,
    HISTOGRAMS,
    PROVENANCE,
    read_summary,
    resolve_run,
    write_json,
)

BASELINE_FILE = "baseline.json"
BASELINE_KIND = "portal-load-baseline"
BASELINE_SCHEMA = 1
BASELINES_DIR = "baselines"
# Campaign keys that make two runs comparable: the same journeys at the same load for the
# same time. Host, seed, output and the mock's config may differ (they are what is compared).
SHAPE_KEYS: tuple[tuple[str, str], ...] = (
    ("campaign", "name"),
    ("campaign", "duration"),
    ("load", "users"),
    ("load", "spawn_rate"),
    ("load", "shape"),
    ("load", "arrival_rate"),
    ("load", "think_scale"),
    ("load", "user_classes"),
    ("load", "locustfile"),
    ("load", "shape_params"),
    ("workers", "count"),
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True, kw_only=True)
class Series:
    """One request key of a run: counts and its latency histogram (µs)."""

    name: str
    method: str
    section: str
    count: int
    failures: int
    histogram: HdrHistogram

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"


@dataclass(frozen=True, kw_only=True)
class RunData:
    """What the gate needs of a run or a baseline."""

    run_id: str
    source: str
    status: str
    duration_s: float
    campaign: dict[str, Any]
    series: dict[str, Series]
    total: Series
    git: dict[str, Any] = field(default_factory=dict)

    def section(self, section: str) -> list[Series]:
        return [s for s in self.series.values() if s.section == section]

    def shape(self) -> dict[str, Any]:
        return {f"{sec}.{key}": self.campaign.get(sec, {}).get(key) for sec, key in SHAPE_KEYS}


def shape_differences(a: RunData, b: RunData) -> list[str]:
    """Campaign keys that differ between two runs, as ``key: a != b``."""
    sa, sb = a.shape(), b.shape()
    return [f"{k}: {sa[k]!r} != {sb[k]!r}" for k in sa if sa[k] != sb[k]]


def _int(row: dict[str, Any], key: str) -> int:
    value = row.get(key, 0)
    return int(value) if isinstance(value, int | float) else 0


def load_run(run_dir: Path) -> RunData:
    """A run folder's summary, histograms and campaign."""
    summary = read_summary(run_dir)
    path = run_dir / HISTOGRAMS
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document["histograms"]
        total_hist = hdr.decode(document["total"])
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing (the load generator wrote no results)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResultsError(f"{path}: unreadable: {exc}") from None
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    for section in ("requests", "journeys", "corrected"):
        for row in summary.get(section) or []:
            counts[(row["name"], row["method"])] = row
    series = {}
    for entry in entries.values():
        row = counts.get((entry["name"], entry["method"]), {})
        s = Series(
            name=entry["name"],
            method=entry["method"],
            section=entry.get("section", "requests"),
            count=_int(row, "count"),
            failures=_int(row, "failures"),
            histogram=hdr.decode(entry["hdr"]),
        )
        series[s.key] = s
    total_row = summary.get("total") or {}
    total = Series(
        name="total",
        method="ALL",
        section="total",
        count=_int(total_row, "count"),
        failures=_int(total_row, "failures"),
        histogram=total_hist,
    )
    git: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        git = json.loads((run_dir / PROVENANCE).read_text(encoding="utf-8")).get("git") or {}
    return RunData(
        run_id=str(summary.get("run_id") or run_dir.name),
        source=str(run_dir),
        status=str(summary.get("status", "?")),
        duration_s=float(summary.get("duration_s") or 0.0),
        campaign=_campaign(run_dir / CAMPAIGN),
        series=series,
        total=total,
        git=git,
    )


def _campaign(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _encode_series(s: Series) -> dict[str, Any]:
    return {
        "name": s.name,
        "method": s.method,
        "section": s.section,
        "count": s.count,
        "failures": s.failures,
        "hdr": hdr.encode(s.histogram),
    }


def _decode_series(raw: dict[str, Any]) -> Series:
    return Series(
        name=raw["name"],
        method=raw["method"],
        section=raw["section"],
        count=int(raw["count"]),
        failures=int(raw["failures"]),
        histogram=hdr.decode(raw["hdr"]),
    )


def baseline_document(run: RunData, name: str, campaign_toml: str) -> dict[str, Any]:
    """The compact baseline of a run: HTTP requests, journeys and the HTTP requests' corrected
    twins (``GET+CO``, open model); the journeys' corrected twins are left."""
    return {
        "kind": BASELINE_KIND,
        "schema": BASELINE_SCHEMA,
        "name": name,
        "saved_from": run.run_id,
        "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": run.status,
        "duration_s": run.duration_s,
        "git": run.git,
        "campaign": run.campaign,
        "campaign_toml": campaign_toml,
        "histogram": {
            "unit": "us",
            "lowest_us": hdr.LOWEST_US,
            "highest_us": hdr.HIGHEST_US,
            "significant_figures": hdr.SIGNIFICANT_FIGURES,
        },
        "total": _encode_series(run.total),
        "series": [
            _encode_series(s)
            for s in sorted(run.series.values(), key=lambda s: (s.section, s.name, s.method))
            if s.section in ("requests", "journeys")
            or (s.section == "corrected" and not s.method.startswith(("JOURNEY", "FUNNEL")))
        ],
    }


def load_baseline_file(path: Path) -> RunData:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such baseline") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != BASELINE_KIND:
        raise ResultsError(f"{path}: not a portal-load baseline")
    if doc.get("schema") != BASELINE_SCHEMA:
        raise ResultsError(f"{path}: baseline schema {doc.get('schema')!r}; expected 1")
    try:
        series = [_decode_series(raw) for raw in doc["series"]]
        total = _decode_series(doc["total"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: damaged baseline: {exc}") from None
    return RunData(
        run_id=f"baseline {doc.get('name')} (from {doc.get('saved_from')})",
        source=str(path),
        status=str(doc.get("status", "?")),
        duration_s=float(doc.get("duration_s") or 0.0),
        campaign=dict(doc.get("campaign") or {}),
        series={s.key: s for s in series},
        total=total,
        git=dict(doc.get("git") or {}),
    )


def resolve(ref: str, results_root: Path) -> RunData:
    """A run or a baseline from a run id, prefix, ``latest``, run folder, baseline file,
    baseline folder, or baseline name (``results/baselines/NAME``)."""
    path = Path(ref)
    if path.is_file():
        return load_baseline_file(path)
    if path.is_dir() and (path / BASELINE_FILE).is_file():
        return load_baseline_file(path / BASELINE_FILE)
    named = results_root / BASELINES_DIR / ref / BASELINE_FILE
    if _NAME.match(ref) and named.is_file():
        return load_baseline_file(named)
    return load_run(resolve_run(results_root, ref))


def save_baseline(run_dir: Path, name: str, results_root: Path, *, force: bool = False) -> Path:
    """Write ``results_root/baselines/NAME/baseline.json`` from a run; returns its path.

    Only a complete run makes a baseline: a partial or degraded one is refused unless
    ``force``, since every later run would be judged against figures in doubt."""
    if not _NAME.match(name):
        raise UsageError(
            f"baseline name {name!r}: use letters, digits, '.', '_' and '-' (up to 100)"
        )
    run = load_run(run_dir)
    if run.status != "complete" and not force:
        raise UsageError(
            f"run {run.run_id} is {run.status}: a baseline must come from a complete run "
            "(--force to save it anyway)"
        )
    try:
        toml_text = (run_dir / CAMPAIGN).read_text(encoding="utf-8")
    except OSError:
        toml_text = ""
    path = results_root / BASELINES_DIR / name / BASELINE_FILE
    write_json(path, baseline_document(run, name, toml_text))
    return path
