"""Two views of a run's latency that cut across its summary rows.

- Service time beside the time corrected for coordinated omission (:func:`corrected_pairs`):
  the open model records each request twice, ``GET /x`` and its twin ``GET+CO /x``
  (``summary.json``'s ``requests`` and ``corrected`` sections); the terminal summary, the
  report and the gate put the two side by side.
- The generator's latency per API route (:func:`route_histograms`): request names mapped to
  the route templates they call (:mod:`scenarios.routes`), their HDR histograms merged, to be
  set beside the portal's own per route (:mod:`harness.observe.mock_metrics`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from scenarios.routes import route_of

from harness.results import histograms as hdr
from harness.results.folder import HISTOGRAMS

CORRECTED_SUFFIX = "+CO"  # the open model's twin of a request type (scenarios/client.py)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def is_corrected_http(method: str) -> bool:
    """Whether a request type is the corrected twin of an HTTP request (``GET+CO``), not of
    a journey (``JOURNEY+CO``)."""
    base = method.removesuffix(CORRECTED_SUFFIX)
    return base != method and base in HTTP_METHODS


def corrected_pairs(summary: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(service row, corrected row) of every request with a ``+CO`` twin, busiest first, and
    the total last (named ``total``); empty in a closed-model run."""
    twins = {(r.get("name"), r.get("method")): r for r in summary.get("corrected") or []}
    rows = sorted(summary.get("requests") or [], key=lambda r: -int(r.get("count", 0)))
    pairs = []
    for row in rows:
        twin = twins.get((row.get("name"), f"{row.get('method')}{CORRECTED_SUFFIX}"))
        if twin is not None:
            pairs.append((row, twin))
    total, corrected_total = summary.get("total"), summary.get("corrected_total")
    if pairs and total and corrected_total:
        pairs.append(({**total, "name": "total", "method": ""}, corrected_total))
    return pairs


def route_histograms(run_dir: Path) -> dict[tuple[str, str], tuple[HdrHistogram, list[str]]]:
    """(route template, method) -> the merged histogram (µs) of the HTTP request names that
    call it, and those names; names that call no API route are left out."""
    try:
        document = json.loads((run_dir / HISTOGRAMS).read_text(encoding="utf-8"))
        entries = list(document["histograms"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    merged: dict[tuple[str, str], tuple[HdrHistogram, list[str]]] = {}
    for entry in entries:
        name, method = str(entry.get("name", "")), str(entry.get("method", ""))
        route = route_of(name)
        if method not in HTTP_METHODS or route is None:
            continue
        key = (route, method)
        if key not in merged:
            merged[key] = (hdr.new_histogram(), [])
        histogram, names = merged[key]
        histogram.add(hdr.decode(entry["hdr"]))
        names.append(name)
    return merged
