"""Live figures of a running campaign, read from the load generator's ``/metrics``.

Prometheus is the live path and ``results/`` the durable one: the terminal view reads the
same exporter Prometheus scrapes, and quantiles come from the interval's histogram deltas, as
``histogram_quantile(rate(...))`` would compute them.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

SCRAPE_TIMEOUT_S = 2.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Sample:
    """One scrape, summed over request names."""

    at: float
    requests: float = 0.0
    failures: float = 0.0
    latency_sum_s: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound s, cumulative count)
    # The open model's twins corrected for coordinated omission (empty in a closed model).
    corrected_buckets: tuple[tuple[float, float], ...] = ()
    users: float = 0.0
    workers: float = 0.0
    target_rps: float = 0.0
    dropped: float = 0.0
    late: float = 0.0
    reported_s: float = 0.0  # Unix time the latest merged worker report ends at (0: none yet)
    worker_cpu: dict[str, float] = field(default_factory=dict)


def scrape(url: str, clock: Callable[[], float] = time.monotonic) -> Sample | None:
    """One scrape stamped by ``clock``, or None if it does not answer: the load generator's
    ``/live`` (its totals as JSON, :func:`from_live`) or any ``/metrics`` exposition."""
    try:
        with _NO_PROXY.open(url, timeout=SCRAPE_TIMEOUT_S) as resp:
            kind = resp.headers.get_content_type()
            body = resp.read()
    except OSError:
        return None
    if kind == "application/json":
        try:
            return from_live(json.loads(body), clock())
        except (ValueError, TypeError, KeyError):
            return None
    return parse(body.decode("utf-8"), clock())


def from_live(totals: dict[str, Any], at: float) -> Sample:
    """A :class:`Sample` from the totals the master serves on ``/live``: the same figures
    :func:`parse` sums from the full exposition, summed by the master."""

    def buckets(rows: list[list[Any]]) -> tuple[tuple[float, float], ...]:
        return tuple((float(le), float(count)) for le, count in rows)

    return Sample(
        at=at,
        requests=float(totals["requests"]),
        failures=float(totals["failures"]),
        latency_sum_s=float(totals["latency_sum_s"]),
        buckets=buckets(totals["buckets"]),
        corrected_buckets=buckets(totals["corrected_buckets"]),
        users=float(totals["users"]),
        workers=float(totals["workers"]),
        target_rps=float(totals["target_rps"]),
        dropped=float(totals["dropped"]),
        late=float(totals["late"]),
        reported_s=float(totals["reported_s"]),
        worker_cpu={str(k): float(v) for k, v in totals["worker_cpu"].items()},
    )


def parse(text: str, at: float) -> Sample:
    values: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    corrected: dict[float, float] = defaultdict(float)
    cpu: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "loadgen_response_time_seconds_bucket":
                buckets[float(s.labels["le"])] += s.value
            elif s.name == "loadgen_corrected_response_time_seconds_bucket":
                corrected[float(s.labels["le"])] += s.value
            elif s.name == "loadgen_worker_cpu_percent":
                cpu[s.labels.get("worker", "?")] = s.value
            else:
                values[s.name] += s.value
    return Sample(
        at=at,
        requests=values["loadgen_requests_total"],
        failures=values["loadgen_failures_total"],
        latency_sum_s=values["loadgen_response_time_seconds_sum"],
        buckets=tuple(sorted(buckets.items())),
        corrected_buckets=tuple(sorted(corrected.items())),
        users=values["loadgen_users"],
        workers=values["loadgen_workers"],
        target_rps=values["loadgen_target_rps"],
        dropped=values["loadgen_dropped_starts_total"],
        late=values["loadgen_late_starts_total"],
        reported_s=values["loadgen_reported_until_timestamp_seconds"],
        worker_cpu=cpu,
    )


def quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float:
    """``histogram_quantile``: linear interpolation within the bucket; NaN when empty."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


@dataclass(frozen=True)
class Interval:
    """Figures between two scrapes."""

    seconds: float
    rps: float
    failures_per_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    total: Sample
    # Corrected for coordinated omission (open model); NaN when there are no twins.
    p50_co_s: float = math.nan
    p99_co_s: float = math.nan


def interval(prev: Sample | None, cur: Sample) -> Interval:
    """Figures between two scrapes: rates over the time the workers' reports cover when the
    exporter says (``reported_s``), else over the time between the scrapes."""
    if prev is None or cur.at <= prev.at or cur.requests < prev.requests:
        # No earlier scrape of this test: percentiles of everything so far, no rates.
        prev, dt = None, 0.0
    elif prev.reported_s > 0 and cur.reported_s > prev.reported_s:
        dt = cur.reported_s - prev.reported_s
    else:
        dt = cur.at - prev.at
    delta = _delta(prev.buckets if prev is not None else (), cur.buckets)
    delta_co = _delta(prev.corrected_buckets if prev is not None else (), cur.corrected_buckets)
    return Interval(
        seconds=dt,
        rps=(cur.requests - prev.requests) / dt if prev is not None else 0.0,
        failures_per_s=(cur.failures - prev.failures) / dt if prev is not None else 0.0,
        p50_s=quantile(0.50, delta),
        p95_s=quantile(0.95, delta),
        p99_s=quantile(0.99, delta),
        total=cur,
        p50_co_s=quantile(0.50, delta_co),
        p99_co_s=quantile(0.99, delta_co),
    )


def _delta(
    before: tuple[tuple[float, float], ...], now: tuple[tuple[float, float], ...]
) -> tuple[tuple[float, float], ...]:
    """The histogram of the interval: cumulative bucket counts now minus before."""
    earlier = dict(before)
    return tuple((le, max(0.0, c - earlier.get(le, 0.0))) for le, c in now)


class LiveRates:
    """Turns successive scrapes into the figures of the latest reported interval.

    Workers report every couple of seconds; a view that scrapes at its own pace would see one
    report in some intervals and two in others, and show rates that alternate between half
    and double the truth. Here a scrape that brings no new report shows the previous figures
    (with the current gauges: users, workers, totals), and rates are taken over the time the
    new reports cover. When no report comes for ``stale_after_s``, the figures fall back to
    the time between scrapes, so a load generator that stopped reporting shows 0 req/s.
    """

    def __init__(self, stale_after_s: float = 6.0) -> None:
        self.stale_after_s = stale_after_s
        self._base: Sample | None = None
        self._last: Interval | None = None

    def update(self, cur: Sample) -> Interval:
        base, last = self._base, self._last
        if (
            base is not None
            and last is not None
            and cur.reported_s > 0
            and cur.reported_s == base.reported_s
            and cur.requests >= base.requests
            and cur.at - base.at < self.stale_after_s
        ):
            return replace(last, total=cur)
        iv = interval(base, cur)
        self._base, self._last = cur, iv
        return iv
