"""``portal-load report RUN``: one self-contained HTML file per run, built from ``results/``.

The report reads only the run's files (``summary.json``, ``timeseries.csv``,
``histograms.json``, ``campaign.toml``, ``provenance.json``, and when present
``mock-metrics.json``, ``capacity.json`` and the gate's ``gate/verdict.json``) and writes
``report.html`` beside them: inline CSS, inline SVG charts (:mod:`harness.report.svg`), no
script, no font, no image and no link to fetch, so it opens offline, from a mail attachment
or a CI artefact, as it was on the day.

Sections: the run and its flags; the requests table; in the open model, service time beside
the time corrected for coordinated omission; client and server latency per API route; SLO
verdicts; time series of request rate and failures, users, and latency percentiles; the
latency distribution (percentile spectrum, the corrected one beside it, and histogram of the
run's merged HDR histogram; :mod:`harness.report.latency_sections`); the journeys and their
funnels; and for a capacity run (:mod:`harness.report.capacity_section`) the measured steps,
throughput against offered load and concurrency with the fitted USL, latency against
throughput with the fitted curve and the M/M/c theory, and the fleet projection.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from harness.errors import ResultsError
from harness.report.capacity_section import capacity_section
from harness.report.latency_sections import (
    corrected_section,
    distribution_section,
    routes_section,
)
from harness.report.markup import CSS, Markup, num, table, verdict
from harness.report.svg import Axes, Series, bar_chart, line_chart
from harness.results.folder import (
    CAMPAIGN,
    CAPACITY,
    GATE_DIR,
    PROVENANCE,
    REPORT,
    TIMESERIES,
    VERDICT,
    atomic_write,
    read_summary,
)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_timeseries(run_dir: Path) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    try:
        with open(run_dir / TIMESERIES, newline="", encoding="utf-8") as f:
            for raw in csv.DictReader(f):
                row = {}
                for k, v in raw.items():
                    try:
                        row[k] = float(v) if v not in ("", None) else math.nan
                    except ValueError:
                        row[k] = math.nan
                rows.append(row)
    except OSError:
        return []
    return rows


# -- sections -------------------------------------------------------------------------------
def _header(run_dir: Path, summary: Mapping[str, Any], provenance: Mapping[str, Any]) -> str:
    campaign: dict[str, Any] = {}
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
        campaign = tomllib.loads((run_dir / CAMPAIGN).read_text(encoding="utf-8"))
    name = campaign.get("campaign", {}).get("name", "")
    git = provenance.get("git") or {}
    rev = (git.get("revision") or "")[:12] + (" (modified)" if git.get("dirty") else "")
    total = summary.get("total") or {}
    parts = [
        f"<h1>Load test report: {escape(str(summary.get('run_id', run_dir.name)))}</h1>",
        '<p class="meta">'
        + " · ".join(
            escape(p)
            for p in (
                f"campaign {name}" if name else "",
                f"status {summary.get('status', '?')}",
                f"{summary.get('start_time', '')}",
                f"{float(summary.get('duration_s', 0) or 0):.0f} s",
                f"{total.get('count', 0):,} requests",
                f"{float(total.get('rps', 0) or 0):,.1f} req/s",
                f"revision {rev}" if rev else "",
                f"host {provenance.get('host', '')} ({provenance.get('cores', '?')} cores)",
            )
            if p
        )
        + "</p>",
    ]
    flags = list(summary.get("flags") or []) + list(
        (summary.get("checks") or {}).get("flags") or []
    )
    for event in summary.get("degraded") or []:
        where = f" on {event['host']}" if event.get("host") else ""
        flags.append(f"worker {event.get('worker')}{where} lost: {event.get('reason')}")
    parts += [f'<div class="flag">flag: {escape(str(f))}</div>' for f in flags]
    return "".join(parts)


ROW_COLS = ("count", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")


def _requests(summary: Mapping[str, Any]) -> str:
    rows = sorted(summary.get("requests") or [], key=lambda r: -int(r.get("count", 0)))
    total = summary.get("total")
    body = [
        [f"{r.get('method', '')} {r.get('name', '')}", *(r.get(c) for c in ROW_COLS)] for r in rows
    ]
    if total:
        body.append([Markup("<b>total</b>"), *(total.get(c) for c in ROW_COLS)])
    headers = [
        "request",
        "count",
        "failures",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
    ]
    return "<h2>Requests</h2>" + table(headers, body)


def _pct(v: Any) -> str:
    return f"{v * 100:+.1f} %" if isinstance(v, int | float) and math.isfinite(v) else "-"


def _gate(run_dir: Path) -> str:
    """The gate's verdict (``gate/verdict.json``, written by ``gate`` or ``run --gate``): every
    SLO, every comparison with its interval, and the verdict."""
    gate = _read_json(run_dir / GATE_DIR / VERDICT)
    if not isinstance(gate, Mapping):
        return ""
    passed = gate.get("passed")
    out = [f"<h2>Gate</h2><p>Verdict: {verdict(passed if isinstance(passed, bool) else None)}"]
    if gate.get("outcome") == "underpowered":
        out.append(" (<b>underpowered</b>: the run was too small to detect its tolerance)")
    if gate.get("baseline"):
        out.append(f" against <code>{escape(str(gate['baseline']))}</code>")
    out.append("</p>")
    notes = [str(n) for n in gate.get("notes") or []]
    if notes:
        out.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    slo_rows = [
        [str(r.get("target", "")), str(r.get("threshold", "")), str(r.get("message", "")),
         verdict(r.get("passed") if isinstance(r.get("passed"), bool) else None)]
        for r in gate.get("slo") or [] if isinstance(r, Mapping)
    ]  # fmt: skip
    if slo_rows:
        out += ["<h3>SLOs</h3>", table(["target", "objective", "observed", "verdict"], slo_rows)]
    cmp_rows = []
    for c in gate.get("comparisons") or []:
        for ch in c.get("changes") or [] if isinstance(c, Mapping) else []:
            cmp_rows.append(
                [str(c.get("key", "")), str(ch.get("metric", "")), num(ch.get("baseline")),
                 num(ch.get("candidate")), _pct(ch.get("change")),
                 f"[{_pct(ch.get('ci_low'))}, {_pct(ch.get('ci_high'))}]",
                 _pct(ch.get("tolerance")), str(ch.get("verdict", ""))]
            )  # fmt: skip
    if cmp_rows:
        headers = ["request", "metric", "baseline", "candidate", "change", "interval",
                   "tolerance", "verdict"]  # fmt: skip
        out += ["<h3>Against the baseline</h3>", table(headers, cmp_rows)]
    return "".join(out)


def _timeseries(run_dir: Path, summary: Mapping[str, Any]) -> str:
    ts = read_timeseries(run_dir)
    if not ts:
        return "<h2>Over time</h2><p class='muted'>no time series recorded</p>"
    t0 = ts[0].get("interval_start_unix_s", 0.0)
    t = [r.get("interval_start_unix_s", 0.0) - t0 for r in ts]
    rate = line_chart(
        "rate",
        [
            Series("requests/s", t, [r.get("rps", math.nan) for r in ts]),
            Series(
                "failures/s", t, [r.get("failures_per_s", math.nan) for r in ts], color="#d62728"
            ),
        ],
        Axes(x_label="seconds since start", y_label="per second"),
    )
    users = line_chart(
        "users",
        [
            Series("users", t, [r.get("users", math.nan) for r in ts], color="#2ca02c"),
            Series(
                "workers", t, [r.get("workers", math.nan) for r in ts], color="#9467bd", dash=True
            ),
        ],
        Axes(x_label="seconds since start", y_label="count"),
        height=220,
    )
    lat = line_chart(
        "percentiles",
        [
            Series("p50", t, [r.get("p50_ms", math.nan) for r in ts]),
            Series("p95", t, [r.get("p95_ms", math.nan) for r in ts], color="#ff7f0e"),
            Series("p99", t, [r.get("p99_ms", math.nan) for r in ts], color="#d62728"),
            *(
                [
                    Series(
                        "p99 +CO",
                        t,
                        [r.get("p99_co_ms", math.nan) for r in ts],
                        color="#8c564b",
                        dash=True,
                    )
                ]
                if any(math.isfinite(r.get("p99_co_ms", math.nan)) for r in ts)
                else []
            ),
        ],
        Axes(x_label="seconds since start", y_label="latency, ms"),
    )
    return (
        "<h2>Over time</h2><h3>Request rate and failures</h3>"
        + rate
        + "<h3>Users</h3>"
        + users
        + "<h3>Latency percentiles per interval</h3>"
        + lat
    )


def _journeys(summary: Mapping[str, Any]) -> str:
    rows = summary.get("journeys") or []
    journeys = [r for r in rows if r.get("method") == "JOURNEY"]
    funnel_rows = [r for r in rows if r.get("method") == "FUNNEL"]
    if not journeys and not funnel_rows:
        return ""
    out = ["<h2>Journeys</h2>"]
    out.append(
        table(
            ["journey", "started", "failed", "p50 ms", "p95 ms", "p99 ms"],
            [
                [
                    r.get("name"),
                    r.get("count"),
                    r.get("failures"),
                    r.get("p50_ms"),
                    r.get("p95_ms"),
                    r.get("p99_ms"),
                ]
                for r in sorted(journeys, key=lambda r: -int(r.get("count", 0)))
            ],
        )
    )
    by_journey: dict[str, list[tuple[int, str, int]]] = {}
    for r in funnel_rows:
        name = str(r.get("name", ""))
        journey, _, step = name.partition("/")
        num, _, label = step.partition(" ")
        try:
            order = int(num)
        except ValueError:
            order = 999
        by_journey.setdefault(journey, []).append((order, label or step, int(r.get("count", 0))))
    started = {str(r.get("name")): int(r.get("count", 0)) for r in journeys}
    if by_journey:
        out.append(
            "<p class='meta'>Step 0 counts journeys that ran to their end (or failed); journeys "
            "still under way when the run stopped can make a later step pass 100 %.</p>"
        )
    for journey in sorted(by_journey, key=lambda j: -started.get(j, 0)):
        steps = sorted(by_journey[journey])
        labels = ["0 started"] + [f"{o} {lab}" for o, lab, _ in steps]
        values = [float(started.get(journey, steps[0][2]))] + [float(c) for _, _, c in steps]
        out.append(f"<h3>Funnel: {escape(journey)}</h3>")
        out.append(bar_chart(f"funnel-{journey}", labels, values, unit="journeys"))
    return "".join(out)


def _footer(provenance: Mapping[str, Any]) -> str:
    pkgs = provenance.get("packages") or {}
    text = ", ".join(f"{k} {v}" for k, v in sorted(pkgs.items()))
    return (
        f"<h2>Provenance</h2><p class='meta'>python {escape(str(provenance.get('python', '')))}"
        f" · {escape(str(provenance.get('platform', '')))}"
        f" · seed {escape(str(provenance.get('seed', '')))}"
        f"<br>{escape(text)}</p>"
    )


def render_report(run_dir: Path) -> str:
    """The report of one run folder, as one HTML document."""
    summary = read_summary(run_dir)
    provenance = _read_json(run_dir / PROVENANCE) or {}
    sections: list[str] = [_header(run_dir, summary, provenance)]
    capacity = _read_json(run_dir / CAPACITY)
    capacity_html = ""
    if isinstance(capacity, Mapping):
        capacity_html = capacity_section(capacity)
    sections += [
        capacity_html,
        _requests(summary),
        corrected_section(summary),
        routes_section(run_dir),
        _gate(run_dir),
        _timeseries(run_dir, summary),
        distribution_section(run_dir),
        _journeys(summary),
        _footer(provenance),
    ]
    title = escape(f"portal-load report {summary.get('run_id', run_dir.name)}")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{title}</title><style>{CSS}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )


def write_report(run_dir: Path) -> Path:
    """Render and write ``report.html`` into the run folder; returns its path."""
    path = run_dir / REPORT
    atomic_write(path, render_report(run_dir))
    return path


def try_write_report(run_dir: Path, warn: Callable[[str], None] | None = None) -> Path | None:
    """As :func:`write_report`, but a run's results stand even if its report cannot be drawn."""
    try:
        return write_report(run_dir)
    except (ResultsError, OSError, ValueError, KeyError, TypeError) as exc:
        if warn is not None:
            warn(f"portal-load: no report for {run_dir}: {type(exc).__name__}: {exc}")
        return None
