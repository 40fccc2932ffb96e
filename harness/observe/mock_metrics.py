"""The embedded mock's own latency, per route, kept in the results folder.

At the end of a run the harness scrapes the mock's ``/metrics`` once (all its workers in one
scrape) and writes ``mock-metrics.json`` beside the generator's results, so the report reads
only the run's folder and can put, route by route, the generator's latency beside the
portal's own. ::

    {"schema": 1, "source": "http://127.0.0.1:8123/metrics", "scraped_unix_s": 1700000000.0,
     "routes": [{"route": "/api/v1/services/{code}", "method": "GET", "count": 812,
                 "sum_s": 1.93, "buckets": [[0.0005, 3], ..., [Infinity, 812]],
                 "statuses": {"200": 800, "500": 12}}]}

``buckets`` are the cumulative counts of ``portal_http_request_duration_seconds`` by upper
bound in seconds (the last one ``+Inf``, written as ``Infinity``); operations routes
(``/metrics``, ``/healthz``, ``/admin/*``) are left out: they are not load.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from harness.observe.livestats import quantile
from harness.results.folder import atomic_write
from mock_portal.routes import OPERATIONS_ROUTES, UNMATCHED

MOCK_METRICS = "mock-metrics.json"
SCHEMA = 1
SCRAPE_TIMEOUT_S = 5.0
_DURATION = "portal_http_request_duration_seconds"


@dataclass
class RouteLatency:
    """The mock's duration histogram of one route and method."""

    route: str
    method: str
    count: float = 0.0
    sum_s: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound s -> cumulative
    statuses: dict[str, float] = field(default_factory=dict)

    @property
    def mean_s(self) -> float:
        return self.sum_s / self.count if self.count else math.nan

    def quantile_s(self, q: float) -> float:
        """``histogram_quantile``: interpolated within the bucket, so exact to its width."""
        return quantile(q, tuple(sorted(self.buckets.items())))

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "method": self.method,
            "count": self.count,
            "sum_s": self.sum_s,
            "buckets": [[le, c] for le, c in sorted(self.buckets.items())],
            "statuses": dict(sorted(self.statuses.items())),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RouteLatency:
        return cls(
            route=str(raw["route"]),
            method=str(raw["method"]),
            count=float(raw["count"]),
            sum_s=float(raw["sum_s"]),
            buckets={float(le): float(c) for le, c in raw["buckets"]},
            statuses={str(k): float(v) for k, v in (raw.get("statuses") or {}).items()},
        )


def parse(text: str) -> list[RouteLatency]:
    """Every load route's histogram in a ``/metrics`` exposition of the mock."""
    routes: dict[tuple[str, str], RouteLatency] = {}

    def of(labels: dict[str, str]) -> RouteLatency | None:
        route, method = labels.get("route", ""), labels.get("method", "")
        if not route or route in OPERATIONS_ROUTES or route == UNMATCHED:
            return None
        key = (route, method)
        if key not in routes:
            routes[key] = RouteLatency(route, method)
        return routes[key]

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "portal_http_requests_total":
                entry = of(s.labels)
                if entry is not None:
                    status = s.labels.get("status", "")
                    entry.statuses[status] = entry.statuses.get(status, 0.0) + s.value
                continue
            if not s.name.startswith(_DURATION):
                continue
            entry = of(s.labels)
            if entry is None:
                continue
            if s.name == f"{_DURATION}_bucket":
                le = float(s.labels["le"])
                entry.buckets[le] = entry.buckets.get(le, 0.0) + s.value
            elif s.name == f"{_DURATION}_count":
                entry.count += s.value
            elif s.name == f"{_DURATION}_sum":
                entry.sum_s += s.value
    return sorted(routes.values(), key=lambda r: (r.route, r.method))


def save_mock_metrics(base_url: str, run_dir: Path) -> Path | None:
    """Scrape the mock's ``/metrics`` and write ``mock-metrics.json``; None if it does not
    answer (the run's results stand without it)."""
    url = f"{base_url.rstrip('/')}/metrics"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=SCRAPE_TIMEOUT_S) as resp:
            text = resp.read().decode("utf-8")
    except OSError:
        return None
    document = {
        "schema": SCHEMA,
        "source": url,
        "scraped_unix_s": time.time(),
        "routes": [r.as_dict() for r in parse(text)],
    }
    path = run_dir / MOCK_METRICS
    atomic_write(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def read_mock_metrics(run_dir: Path) -> list[RouteLatency] | None:
    """The mock's routes as the run left them; None when the run has no such file (a target
    other than the embedded mock) or it is unreadable."""
    try:
        document = json.loads((run_dir / MOCK_METRICS).read_text(encoding="utf-8"))
        if document.get("schema") != SCHEMA:
            return None
        return [RouteLatency.from_dict(raw) for raw in document["routes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
