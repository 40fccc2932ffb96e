"""Report sections that set two measures of one latency side by side.

- :func:`corrected_section`: in the open model, each request's service time (from the moment
  it had a connection) beside the time corrected for coordinated omission (from the moment it
  was due: start lag and wait for a connection included), and the difference;
- :func:`distribution_section`: the run's percentile spectrum, service time and corrected;
- :func:`routes_section`: per API route and method, the generator's latency (its request
  names mapped to route templates, :mod:`scenarios.routes`), the embedded mock's own (its
  ``/metrics`` at the run's end, ``mock-metrics.json``) and the difference: network,
  connection queues and the client itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from harness.observe.mock_metrics import MOCK_METRICS, read_mock_metrics
from harness.report.markup import PERCENTILE_NINES, Markup, table
from harness.report.svg import Axes, Series, line_chart
from harness.results import histograms as hdr
from harness.results.folder import HISTOGRAMS
from harness.results.latency import corrected_pairs, is_corrected_http, route_histograms
from harness.units import s_to_ms, us_to_ms
from scenarios.telemetry import hdr as telemetry_hdr

QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def _diff(a: Any, b: Any) -> float:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) - float(b)
    return math.nan


def corrected_section(summary: Mapping[str, Any]) -> str:
    """Service time | corrected time per request (open model only; empty otherwise)."""
    pairs = corrected_pairs(summary)
    if not pairs:
        return ""
    headers = ["request", "count"]
    for label in ("p50", "p95", "p99", "max"):
        headers += [f"{label} ms", f"{label} +CO", "Δ"]
    rows = []
    for service, corrected in pairs:
        name = f"{service.get('method', '')} {service.get('name', '')}".strip()
        cells: list[Any] = [Markup("<b>total</b>") if name == "total" else name,
                            service.get("count")]  # fmt: skip
        for label in ("p50", "p95", "p99", "max"):
            s, c = service.get(f"{label}_ms"), corrected.get(f"{label}_ms")
            cells += [s, c, _diff(c, s)]
        rows.append(cells)
    return (
        "<h2>Service time and corrected time</h2><p class='meta'>Open model: each request "
        "timed from when it had a connection (service time) and from when it was due "
        "(<code>+CO</code>, corrected for coordinated omission: the start's lag and the wait "
        "for a connection included), in ms; Δ is the time requests spent waiting.</p>"
        + table(headers, rows)
    )


def routes_section(run_dir: Path) -> str:
    """Generator vs mock per route; a note instead when the run has no mock figures."""
    client = route_histograms(run_dir)
    if not client:
        return ""
    server = read_mock_metrics(run_dir)
    if server is None:
        return (
            "<h2>Client and server by route</h2><p class='muted'>No server figures: the "
            f"target was not the embedded mock (no <code>{MOCK_METRICS}</code>).</p>"
        )
    by_route = {(r.route, r.method): r for r in server}
    headers = ["route", "requests (client / server)", "mean ms client", "server", "Δ"]
    for label, _ in QUANTILES:
        headers += [f"{label} client", "server", "Δ"]
    rows = []
    for (route, method), (histogram, names) in sorted(client.items()):
        stats = hdr.stats_ms(histogram)
        mock = by_route.get((route, method))
        title = Markup(
            f"<code>{escape(method)} {escape(route)}</code><br><span class='muted'>"
            + escape(", ".join(sorted(names)))
            + "</span>"
        )
        count = f"{int(histogram.get_total_count()):,} / " + (
            f"{int(mock.count):,}" if mock else "-"
        )
        server_mean = s_to_ms(mock.mean_s) if mock else math.nan
        cells: list[Any] = [title, count, stats["mean_ms"], server_mean,
                            _diff(stats["mean_ms"], server_mean)]  # fmt: skip
        for _label, q in QUANTILES:
            c = us_to_ms(hdr.percentile_us(histogram, q * 100))
            s = s_to_ms(mock.quantile_s(q)) if mock else math.nan
            cells += [c, s, _diff(c, s)]
        rows.append(cells)
    return (
        "<h2>Client and server by route</h2><p class='meta'>Each API route with the request "
        "names that call it: the generator's latency (service time), the embedded mock's own "
        "(from its histogram, interpolated within buckets, so exact to a bucket's width) and "
        "the difference Δ = client - server, in ms: network, connection queues and the "
        "generator itself.</p>" + table(headers, rows)
    )


def distribution_section(run_dir: Path) -> str:
    """Percentile spectrum (service time, and corrected in the open model) and histogram of
    the run's merged HDR histogram."""
    try:
        doc = json.loads((run_dir / HISTOGRAMS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(doc, Mapping) or not doc.get("total"):
        return ""
    h = telemetry_hdr.decode(doc["total"])
    count = int(h.get_total_count())
    if count == 0:
        return ""
    pcts = [p for p in _spectrum_percentiles() if p < 100.0]
    values_ms = [us_to_ms(v) for v in telemetry_hdr.percentile_us(h, pcts)]
    xs = [100.0 / (100.0 - p) for p in pcts]
    spectra = [Series("service time", xs, values_ms)]
    corrected = telemetry_hdr.new_histogram()
    for entry in (doc.get("histograms") or {}).values():
        if is_corrected_http(str(entry.get("method", ""))):
            corrected.add(telemetry_hdr.decode(entry["hdr"]))
    if corrected.get_total_count():
        co_ms = [us_to_ms(v) for v in telemetry_hdr.percentile_us(corrected, pcts)]
        spectra.append(Series("corrected (+CO)", xs, co_ms, color="#8c564b", dash=True))
    spectrum = line_chart(
        "latency-spectrum",
        spectra,
        Axes(
            x_label="percentile",
            y_label="latency, ms",
            x_log=True,
            y_log=True,
            x_tick_labels={100.0 / (100.0 - p): f"{p:g}%" for p in PERCENTILE_NINES},
        ),
    )
    lo = max(1.0, float(h.get_min_value()))
    hi = max(lo * 10, float(h.get_max_value()))
    bins = 48
    edges = [lo * (hi / lo) ** (i / bins) for i in range(bins + 1)]
    cum = telemetry_hdr.counts_at_or_below(h, edges)
    below = [0, *cum[:-1]]
    density = [(c - b) for c, b in zip(cum, below, strict=True)][1:]
    centres = [us_to_ms(math.sqrt(edges[i] * edges[i + 1])) for i in range(bins)]
    histogram = line_chart(
        "latency-histogram",
        [Series("requests per bin", centres, density, color="#17becf", points=False)],
        Axes(x_label="latency, ms (log bins)", y_label="requests", x_log=True),
    )
    return (
        f"<h2>Latency distribution</h2><p class='meta'>all {count:,} requests, from the merged "
        "HDR histogram (values exact to 0.1 %)</p><h3>Percentile spectrum</h3>"
        + spectrum
        + "<h3>Histogram</h3>"
        + histogram
    )


def _spectrum_percentiles() -> list[float]:
    out = []
    for k in range(0, 60):
        p = 100.0 * (1.0 - 10 ** (-k / 12.0))
        out.append(round(p, 6))
    return sorted(set(out))
